//! Arguments several commands share.

use std::time::Duration;

use crate::error::CliError;
use crate::resolve;

/// The longest `--lock-wait`: a deploy that waits longer is better started again later.
const LOCK_WAIT_MAX: Duration = Duration::from_secs(24 * 3600);

/// `--lock-wait DURATION`: a duration kai parses everywhere (`30s`, `5m`, `1h 30m`),
/// from 1 s to 24 h.
pub fn parse_lock_wait(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration ({e}); like \"30s\" or \"5m\""))?;
    if d < Duration::from_secs(1) {
        return Err(format!("{text:?}: at least 1s (without --lock-wait, a held lock is not waited for)"));
    }
    if d > LOCK_WAIT_MAX {
        return Err(format!("{text:?}: at most 24h"));
    }
    Ok(d)
}

/// What a local build's file name does not say.
#[derive(Debug, Default, clap::Args)]
pub struct LocalArgs {
    /// With a local build: the app it is a build of, when its file name does not say.
    #[arg(long = "app", value_name = "APP", add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: Option<String>,
    /// With a local build: its version, when its file name does not say.
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<String>,
}

impl LocalArgs {
    pub fn wish(&self) -> resolve::LocalWish {
        resolve::LocalWish { app: self.app.clone(), version: self.version.clone() }
    }
}

/// `--all` stands for every app of the environment: naming apps beside it is a mistake,
/// refused before anything is read.
pub fn all_alone(command: &str, env: &str, all: bool, apps: &[String]) -> Result<(), CliError> {
    if !all || apps.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(
        format!("--all means every app placed in {env}, and this also names {}; nothing was done", apps.join(" ")),
        Some(format!("name the apps (kai {command} {env} {}) or give --all alone (kai {command} {env} --all)", apps.join(" "))),
    ))
}
