//! `kai deploy`: stage, switch, verify; or apply a saved plan.

use std::path::PathBuf;

use super::args::LocalArgs;
use super::globals::Globals;
use crate::error::CliError;
use crate::ops::deploy::{ApplyRequest, DeployRequest};
use crate::ops::plan::PlanRequest;
use crate::ops::prepare::SyncWish;
use crate::settings::Settings;

/// Deploy applications to an environment: stage on every host at once, then switch
/// the active servers one at a time (stop, switch, start, health check); standby
/// servers get the release but stay disabled and stopped. A failure puts that
/// application back as it was; the others carry on.
///
/// With --plan FILE (made by `kai plan --out FILE`), makes the plan again from the
/// configuration, the hosts and the artifact as they are, and runs it only when it is
/// the plan in FILE, step for step; otherwise refuses (exit 2, nothing changed), naming
/// what changed since (a host, the configuration, the artifact) or the first step of
/// the file that differs. The file itself never decides what runs.
///
/// A local build: `kai deploy test ./target/hello-1.4.0.tar.gz` pushes that file (its
/// sha256 computed here, checked on every host) and installs it like any release, as
/// `1.4.0+local.<first 8 hex digits of its sha256>`, so it is never mistaken for the
/// repository's 1.4.0. The app is the one whose artifact name the file name matches
/// (or --app), the version is read from the file name (or --version). History, status
/// and notices show it as a local build with its sha256 and who deployed it from where.
/// A protected environment refuses local builds unless it sets `allow_local = true`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The environment (a file in environments/).
    #[arg(required_unless_present = "plan", add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: Option<String>,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`;
    /// or a local build: a path to an artifact file (with a `/`, or an existing file
    /// ending in .zip, .jar or .tar.gz).
    #[arg(required_unless_present_any = ["plan", "all"], value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Every application placed in the environment (each apps/<app>.toml with an
    /// [env.<env>] section), each at its newest release: the same as naming them all.
    #[arg(long, conflicts_with = "plan")]
    pub all: bool,
    /// Print the plan (as `kai plan` does) and run nothing.
    #[arg(long, conflicts_with = "plan")]
    pub dry_run: bool,
    /// With --dry-run: every command, per host, in order, exactly as kai sends it.
    #[arg(long, requires = "dry_run")]
    pub commands: bool,
    /// Apply the plan saved in FILE by `kai plan --out FILE` (made again and compared).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation on protected environments.
    #[arg(long)]
    pub yes: bool,
    /// Applications deployed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', conflicts_with = "plan", add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Redeploy even where the version already runs.
    #[arg(long, conflicts_with = "plan")]
    pub force: bool,
    /// Do not update the configuration repository first. By default, when it is a git
    /// checkout with an upstream, kai fast-forwards it (as `git pull --ff-only`) and
    /// deploys what the team has committed.
    #[arg(long)]
    pub no_sync: bool,
    /// Deploy to a protected environment even though the configuration has uncommitted
    /// changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Wait up to DURATION (`30s`, `5m`) for a deploy lock someone else holds, trying
    /// again every 2 s: who holds it is shown, then a line every 30 s; once it is released
    /// the run goes on as usual. Past DURATION: exit 3, as without it. A stale lock (its
    /// kai is gone) is not waited for: `kai unlock` breaks it.
    #[arg(long, value_name = "DURATION", value_parser = super::args::parse_lock_wait, conflicts_with = "dry_run")]
    pub lock_wait: Option<std::time::Duration>,
    #[command(flatten)]
    pub local: LocalArgs,
}

pub async fn run(globals: &Globals, args: DeployArgs, settings: &Settings) -> Result<u8, CliError> {
    let sync = SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty };
    if let Some(file) = args.plan {
        let request = ApplyRequest { file, env: args.env, jobs: usize::from(args.jobs), yes: args.yes, sync, lock_wait: args.lock_wait };
        let ran = crate::ops::deploy::apply(&globals.config, globals.look, request, settings).await?;
        return ran.finish(globals.json, "deploy", settings).await;
    }
    let env = args.env.unwrap_or_default();
    super::args::all_alone("deploy", &env, args.all, &args.apps)?;
    if args.dry_run {
        let plan = PlanRequest {
            env,
            apps: args.apps,
            all: args.all,
            from: None,
            local: args.local.wish(),
            only: args.only,
            force: args.force,
            sync,
            commands: args.commands,
            out: None,
        };
        return crate::ops::plan::show(&globals.config, globals.json, plan, settings).await;
    }
    let request = DeployRequest {
        env,
        apps: args.apps,
        all: args.all,
        local: args.local.wish(),
        only: args.only,
        force: args.force,
        jobs: usize::from(args.jobs),
        yes: args.yes,
        sync,
        lock_wait: args.lock_wait,
    };
    let ran = crate::ops::deploy::deploy(&globals.config, globals.look, request, settings).await?;
    ran.finish(globals.json, "deploy", settings).await
}
