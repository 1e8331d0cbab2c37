//! `kai man` (hidden): the manual pages, generated from the same definitions as `--help`.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::error::CliError;

/// Print the manual page kai(1)
///
/// In roff, for `kai man | man -l -`; with --dir, write kai.1 and one kai-<command>.1
/// per command into a folder instead (a man1 folder on the MANPATH).
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write kai.1 and kai-<command>.1 into this folder instead.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    dir: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> Result<u8, CliError> {
    let command = super::Cli::command();
    let failed = |e: std::io::Error| CliError::Failed(e.into());
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| CliError::Failed(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(command, &dir)
                .map_err(|e| CliError::Failed(anyhow::anyhow!("cannot write into {}: {e}", dir.display())))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page).map_err(failed)?;
            std::io::stdout().write_all(&page).map_err(failed)?;
        }
    }
    Ok(0)
}
