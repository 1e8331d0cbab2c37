//! `kai promote <from> <to>`: deploy to one environment exactly what another runs.

use std::collections::BTreeMap;

use kai_core::facts::HostFacts;
use kai_core::plan::Options;

use super::globals::Globals;
use crate::error::CliError;
use crate::ops::confirm;
use crate::ops::plan::PlanRequest;
use crate::ops::prepare::{self, SyncWish};
use crate::ops::run::{run_id, Runner, Work};
use crate::progress::Progress;
use crate::settings::Settings;
use crate::transport::EnvTransport;

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
}

pub async fn run(globals: &Globals, args: PromoteArgs, settings: &Settings) -> Result<u8, CliError> {
    if args.dry_run {
        let plan = PlanRequest {
            env: args.to,
            apps: args.apps,
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
    let (from, to) = (args.from.as_str(), args.to.as_str());
    let prepared =
        prepare::prepare(&globals.config, settings, to, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    let config = &prepared.config;
    crate::config_files::environment(config, from)?;
    crate::ops::promote::same_environment(from, to)?;
    let apps = crate::ops::promote::apps(config, from, to, &args.apps)?;
    let repo = crate::resolve::repository(config, settings)?;
    let releases = crate::ops::promote::releases(config, from, &apps, &repo, settings).await?;
    let environment = &config.environments[to];
    if environment.protected && !args.yes {
        confirm::can_ask_protected(to, "promote", settings)?;
        let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
        let diff = crate::ops::diff::read(config, from, to, &names, settings).await?;
        let transport = EnvTransport::open(environment, settings);
        let previews = releases.iter().map(|(app, release)| {
            confirm::preview(&transport, config, to, app, &[], |_: &BTreeMap<String, HostFacts>| release.version.clone())
        });
        let mut lines: Vec<String> = futures_util::future::join_all(previews).await.into_iter().flatten().collect();
        transport.close().await;
        lines.push(String::new());
        lines.extend(diff.render().lines().map(str::to_owned));
        confirm::ask_protected(to, &format!("promote from {from}"), &lines)?;
    }
    let progress = Progress::with_look(to, globals.look);
    let runner = Runner::new(&prepared, to, &repo, settings, &progress, Options { run_id: run_id(), force: false, only: Vec::new() });
    let work = releases.into_iter().map(|(app, release)| Work::Release { app, release: Box::new(release) }).collect();
    let mut runner = runner;
    runner.jobs = usize::from(args.jobs);
    let transport = EnvTransport::open(environment, settings);
    let reports = runner.deploy(&transport, work).await;
    transport.close().await;
    let code = crate::report::exit_code(&reports);
    crate::json::print_outcome(globals.json, "promote", to, &reports, code)?;
    crate::notify::after_run(config, "promote", to, settings, &reports).await;
    Ok(code)
}
