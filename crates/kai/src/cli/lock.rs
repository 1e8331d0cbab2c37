//! `kai lock` shows the deploy lock of an app on each host, or with `--hold` takes it by
//! hand (a freeze); `kai unlock` breaks it (after confirmation). Both record what they
//! did in each host's history.

use std::path::PathBuf;

use crate::error::CliError;
use crate::ops::lock::{HoldRequest, UnlockRequest};
use crate::settings::Settings;

/// Show who holds the deploy lock of an application on each host, since when and with
/// which command (and the message of a lock held by hand). The exit status is 1 when a
/// host could not be read.
///
/// With --hold --message TEXT: hold the lock by hand on every host of the application (a
/// freeze during an incident), or on none when a host is locked already (exit 3) or
/// cannot be locked (exit 1). Each host's history records the hold. A deploy, rollback
/// or promotion that meets it stops with exit 3 (or waits, with --lock-wait) and shows
/// the message; a lock held by hand is never stale. `kai unlock` releases it.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    env: String,
    /// The application.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    app: String,
    /// Print one JSON document: per host, the lock (or null) and its age in seconds.
    #[arg(long)]
    pub(super) json: bool,
    /// Hold the lock by hand on every host of the application, until `kai unlock`.
    #[arg(long, requires = "message")]
    hold: bool,
    /// With --hold: why, shown to whoever meets the lock (one line, at most 200 characters).
    #[arg(long, value_name = "TEXT", requires = "hold")]
    message: Option<String>,
}

/// Break the deploy lock of an application on every host that has one, and record
/// the unlock in each one's history. A deploy that failed while a server was out of
/// rotation keeps its lock on purpose: look at the hosts first (`kai status ENV APP`).
///
/// Asks you to type the application name, unless --yes.
#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    env: String,
    /// The application.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    app: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// Print one JSON document: per locked host, the lock broken and whether that worked.
    #[arg(long)]
    pub(super) json: bool,
}

pub async fn show(config: &Option<PathBuf>, quiet: bool, args: LockArgs, settings: &Settings) -> Result<u8, CliError> {
    if let Some(message) = args.message.filter(|_| args.hold) {
        let request = HoldRequest { env: args.env, app: args.app, message, json: args.json };
        return crate::ops::lock::hold(config, quiet, request, settings).await;
    }
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    let app = crate::config_files::app_in(&config, &args.env, &args.app)?;
    let read = crate::ops::lock::show(&config, environment, app, args.json, settings).await?;
    Ok(u8::from(!read))
}

pub async fn unlock(config: &Option<PathBuf>, quiet: bool, args: UnlockArgs, settings: &Settings) -> Result<u8, CliError> {
    let request = UnlockRequest { env: args.env, app: args.app, yes: args.yes, json: args.json };
    crate::ops::lock::unlock(config, quiet, request, settings).await
}
