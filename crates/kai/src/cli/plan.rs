//! `kai plan`: every command a deploy would run, per host, in order; runs nothing
//! ([`crate::ops::plan`]).

use std::path::PathBuf;

use super::args::LocalArgs;
use super::globals::Globals;
use crate::error::CliError;
use crate::ops::plan::PlanRequest;
use crate::ops::prepare::SyncWish;
use crate::settings::Settings;

/// Show the plan of a deploy: per app, each host's version now and after, and what
/// each phase does where; with --commands, every command, per host, in order, exactly
/// as kai sends it. Reads the hosts' current state; changes nothing. With --out FILE,
/// also saves it (always with every command; readable by you only; secrets as digests):
/// `kai deploy --plan FILE` then makes the plan again and runs it only when it is
/// that plan, step for step, or refuses if anything it was made from has changed.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`;
    /// or a local build: a path to an artifact file (see `kai deploy --help`).
    #[arg(required_unless_present_any = ["from", "all"], value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Every application placed in the environment, each at its newest release (as
    /// `kai deploy <env> --all`).
    #[arg(long, conflicts_with = "from")]
    pub all: bool,
    /// Plan promoting what FROM runs (as `kai promote FROM ENV` would): the apps are
    /// names, every app placed in both when none is given.
    #[arg(long, value_name = "FROM", add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub from: Option<String>,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Plan a redeploy even where the version already runs.
    #[arg(long)]
    pub force: bool,
    /// Do not update the configuration repository first (see `kai deploy --help`).
    #[arg(long)]
    pub no_sync: bool,
    /// Plan for a protected environment even though the configuration has uncommitted
    /// changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Show every command, per host, in order, exactly as kai sends it.
    #[arg(long)]
    pub commands: bool,
    /// Also save the plan to FILE (mode 0600), for `kai deploy --plan FILE`.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub local: LocalArgs,
}

pub async fn run(globals: &Globals, args: PlanArgs, settings: &Settings) -> Result<u8, CliError> {
    super::args::all_alone("plan", &args.env, args.all, &args.apps)?;
    let request = PlanRequest {
        env: args.env,
        apps: args.apps,
        all: args.all,
        from: args.from,
        local: args.local.wish(),
        only: args.only,
        force: args.force,
        sync: SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty },
        commands: args.commands,
        out: args.out,
    };
    crate::ops::plan::show(&globals.config, globals.json, request, settings).await
}
