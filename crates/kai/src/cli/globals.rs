//! The options every command shares (`--config`, `--json`, and how progress looks),
//! read once from the command line.

use std::path::PathBuf;

use crate::progress::Look;

/// The options given before (or after) the command that the commands share.
#[derive(Clone, Debug)]
pub struct Globals {
    pub config: Option<PathBuf>,
    pub json: bool,
    pub look: Look,
}
