//! `kai rollback`: back to an earlier release still on the servers, the same rolling
//! path as a deploy.

use super::globals::Globals;
use crate::error::CliError;
use crate::ops::prepare::SyncWish;
use crate::ops::rollback::RollbackRequest;
use crate::settings::Settings;

/// Put an application back on the release before the current one (or the one given
/// with --to), server by server behind the load balancer, as a deploy would. Only
/// releases still on the servers can be rolled back to; nothing is downloaded. A
/// release staged after the current one (by a deploy stopped or put back before it
/// switched that server) never ran there and is not chosen.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// The application (a file in apps/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: String,
    /// The release to go back to (default: the one staged before the current one).
    #[arg(long, value_name = "VERSION", add = clap_complete::ArgValueCompleter::new(crate::complete::releases_on_servers))]
    pub to: Option<String>,
    /// Print what the rollback would do and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: every command, per host, in order, exactly as kai sends it.
    #[arg(long, requires = "dry_run")]
    pub commands: bool,
    /// Do not ask for confirmation on protected environments.
    #[arg(long)]
    pub yes: bool,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Do not update the configuration repository first (see `kai deploy --help`).
    #[arg(long)]
    pub no_sync: bool,
    /// Roll back on a protected environment even though the configuration has
    /// uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Wait up to DURATION (`30s`, `5m`) for a deploy lock someone else holds, trying
    /// again every 2 s: who holds it is shown, then a line every 30 s; once it is released
    /// the run goes on as usual. Past DURATION: exit 3, as without it. A stale lock (its
    /// kai is gone) is not waited for: `kai unlock` breaks it.
    #[arg(long, value_name = "DURATION", value_parser = super::args::parse_lock_wait, conflicts_with = "dry_run")]
    pub lock_wait: Option<std::time::Duration>,
}

pub async fn run(globals: &Globals, args: RollbackArgs, settings: &Settings) -> Result<u8, CliError> {
    let request = RollbackRequest {
        env: args.env,
        app: args.app,
        to: args.to,
        only: args.only,
        dry_run: args.dry_run,
        commands: args.commands,
        yes: args.yes,
        sync: SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty },
        lock_wait: args.lock_wait,
    };
    match crate::ops::rollback::rollback(&globals.config, globals.look, globals.json, request, settings).await? {
        Some(ran) => ran.finish(globals.json, "rollback", settings).await,
        None => Ok(0),
    }
}
