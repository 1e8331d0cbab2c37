//! `kai lock` shows the deploy lock of an app on each host; `kai unlock` breaks it
//! (after confirmation) and records that it did in each host's history.

use std::path::PathBuf;
use std::time::SystemTime;

use kai_core::status;

use crate::error::CliError;
use crate::ops::lock::UnlockRequest;
use crate::settings::Settings;

/// Show who holds the deploy lock of an application on each host, since when and with
/// which command. The exit status is 1 when a host could not be read.
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

pub async fn show(config: &Option<PathBuf>, args: LockArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    let app = crate::config_files::app_in(&config, &args.env, &args.app)?;
    let mut statuses = crate::fleet::read_env(settings, &config, environment, &[app], false).await;
    crate::fleet::judge_locks(&mut statuses, &settings.machine);
    let now = SystemTime::now();
    if args.json {
        crate::output::emit_json(&status::lock_views(&statuses, now))?;
    } else {
        crate::output::emit(&status::render_locks(&statuses, now));
    }
    Ok(u8::from(statuses.iter().any(|s| !s.is_reachable())))
}

pub async fn unlock(config: &Option<PathBuf>, quiet: bool, args: UnlockArgs, settings: &Settings) -> Result<u8, CliError> {
    let request = UnlockRequest { env: args.env, app: args.app, yes: args.yes, json: args.json };
    crate::ops::lock::unlock(config, quiet, request, settings).await
}
