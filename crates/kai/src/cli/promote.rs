//! `kai promote <from> <to>`: deploy to one environment exactly what another runs.

use super::globals::Globals;
use crate::error::CliError;
use crate::ops::plan::PlanRequest;
use crate::ops::prepare::SyncWish;
use crate::ops::promote::PromoteRequest;
use crate::settings::Settings;

/// Deploy to TO exactly the release FROM runs: for each application (default: every
/// application placed in both), the version and artifact its active servers in FROM
/// run, the same checksum as recorded there, fetched from the repository and checked
/// against it. Then the usual rolling deploy of TO.
///
/// Refused (exit 2, nothing touched) when, for any application, FROM's active servers
/// could not be read, disagree on version or artifact, fail their health check, run a
/// SNAPSHOT or a local build, or the repository's artifact of that version is not the
/// one they run. On a protected TO the confirmation shows `kai diff FROM TO`. History
/// and notices say "promoted from FROM".
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// Where the release runs (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub from: String,
    /// Where it goes.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub to: String,
    /// Only these applications (default: every application placed in both).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub apps: Vec<String>,
    /// Print the plan (as `kai plan TO --from FROM` does) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: every command, per host, in order, exactly as kai sends it.
    #[arg(long, requires = "dry_run")]
    pub commands: bool,
    /// Do not ask for confirmation when TO is protected.
    #[arg(long)]
    pub yes: bool,
    /// Applications deployed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Do not update the configuration repository first (see `kai deploy --help`).
    #[arg(long)]
    pub no_sync: bool,
    /// Promote to a protected environment even though the configuration has
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

pub async fn run(globals: &Globals, args: PromoteArgs, settings: &Settings) -> Result<u8, CliError> {
    if args.dry_run {
        let plan = PlanRequest {
            env: args.to,
            apps: args.apps,
            all: false,
            from: Some(args.from),
            local: crate::resolve::LocalWish::default(),
            only: Vec::new(),
            force: false,
            sync: SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty },
            commands: args.commands,
            out: None,
        };
        return crate::ops::plan::show(&globals.config, globals.json, plan, settings).await;
    }
    let request = PromoteRequest {
        from: args.from,
        to: args.to,
        apps: args.apps,
        jobs: usize::from(args.jobs),
        yes: args.yes,
        sync: SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty },
        lock_wait: args.lock_wait,
    };
    let ran = crate::ops::promote::promote(&globals.config, globals.look, request, settings).await?;
    ran.finish(globals.json, "promote", settings).await
}
