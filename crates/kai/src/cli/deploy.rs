//! `kai deploy`: stage, switch, verify; or apply a saved plan.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kai_core::facts::HostFacts;
use kai_core::plan::saved::SavedPlan;
use kai_core::plan::Options;

use super::args::LocalArgs;
use super::globals::Globals;
use crate::error::CliError;
use crate::ops::confirm;
use crate::ops::plan::PlanRequest;
use crate::ops::prepare::{self, SyncWish};
use crate::ops::run::{run_id, Runner, Work};
use crate::progress::Progress;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::EnvTransport;

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
    #[arg(required_unless_present = "plan", value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
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
    #[command(flatten)]
    pub local: LocalArgs,
}

pub async fn run(globals: &Globals, args: DeployArgs, settings: &Settings) -> Result<u8, CliError> {
    if let Some(file) = args.plan.clone() {
        return apply(globals, args, settings, &file).await;
    }
    let env = args.env.clone().unwrap_or_default();
    if args.dry_run {
        let plan = PlanRequest {
            env,
            apps: args.apps,
            from: None,
            local: args.local.wish(),
            only: args.only,
            force: args.force,
            sync: SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty },
            commands: args.commands,
            out: None,
        };
        return crate::ops::plan::show(&globals.config, globals.json, plan, settings).await;
    }
    let prepared =
        prepare::prepare(&globals.config, settings, &env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    let config = &prepared.config;
    let environment = &config.environments[&env];
    crate::config_files::check_only(environment, &args.only)?;
    let (locals, named) = resolve::locals(config, &env, &args.apps, &args.local.wish(), settings).await?;
    let wanted = resolve::parse_apps(config, &env, &named)?;
    let repo = resolve::repository(config, settings)?;
    let mut work: Vec<Work> = locals.into_iter().map(|(app, release)| Work::Release { app, release: Box::new(release) }).collect();
    for (app, wanted) in &wanted {
        work.push(Work::Deploy { app, version: resolve::resolve_version(&repo, config, app, wanted).await? });
    }
    let progress = Progress::with_look(&env, globals.look);
    let mut runner =
        Runner::new(&prepared, &env, &repo, settings, &progress, Options { run_id: run_id(), force: args.force, only: args.only.clone() });
    runner.jobs = usize::from(args.jobs);
    let transport = EnvTransport::open(environment, settings);
    let confirm = environment.protected && !args.yes;
    let reports = async {
        if confirm {
            confirm::can_ask_protected(&env, "deploy", settings)?;
            let previews = work.iter().map(|w| {
                let (app, version) = match w {
                    Work::Release { app, release } => (*app, release.version.clone()),
                    Work::Deploy { app, version } => (*app, version.clone()),
                    _ => unreachable!("deploy work"),
                };
                confirm::preview(&transport, config, &env, app, &args.only, |_: &BTreeMap<String, HostFacts>| version)
            });
            let lines: Vec<String> = futures_util::future::join_all(previews).await.into_iter().flatten().collect();
            confirm::ask_protected(&env, "deploy", &lines)?;
        }
        Ok::<_, CliError>(runner.deploy(&transport, work).await)
    }
    .await;
    transport.close().await;
    let reports = reports?;
    let code = crate::report::exit_code(&reports);
    crate::json::print_outcome(globals.json, "deploy", &env, &reports, code)?;
    crate::notify::after_run(config, "deploy", &env, settings, &reports).await;
    Ok(code)
}

/// `kai deploy --plan FILE`: the saved plan, as it is, or refused.
async fn apply(globals: &Globals, args: DeployArgs, settings: &Settings, file: &std::path::Path) -> Result<u8, CliError> {
    let saved = read_saved(file)?;
    if let Some(env) = args.env.as_deref().filter(|e| *e != saved.env) {
        return Err(CliError::usage(
            format!("{} is a plan for {}, not {env}", file.display(), saved.env),
            Some(format!("kai deploy --plan {}", file.display())),
        ));
    }
    let env = saved.env.clone();
    let prepared =
        prepare::prepare(&globals.config, settings, &env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    if prepared.fingerprint != saved.config {
        let commits = match (&saved.commit, &prepared.commit) {
            (Some(then), Some(now)) if then != now => format!(" (commit {then} then, {now} now)"),
            _ => String::new(),
        };
        return Err(CliError::usage(
            format!("the configuration changed since {} was made{commits}; nothing was deployed", file.display()),
            Some(format!(
                "make the plan again: kai plan {env} {} --out {}",
                saved.apps.iter().map(|a| a.app.as_str()).collect::<Vec<_>>().join(" "),
                file.display()
            )),
        ));
    }
    let config = &prepared.config;
    let environment = &config.environments[&env];
    let mut work = Vec::new();
    for saved_app in &saved.apps {
        let app = crate::config_files::application(config, &saved_app.app)?;
        work.push(Work::Saved { app, saved: Box::new(saved_app.clone()) });
    }
    let repo = resolve::repository(config, settings)?;
    let progress = Progress::with_look(&env, globals.look);
    let mut runner = Runner::new(&prepared, &env, &repo, settings, &progress, saved.options(run_id()));
    runner.jobs = usize::from(args.jobs);
    if environment.protected && !args.yes {
        confirm::can_ask_protected(&env, "apply this plan", settings)?;
        let lines: Vec<String> = saved
            .apps
            .iter()
            .map(|a| {
                format!(
                    "{}  {} -> {} (plan made {} by {})",
                    a.app,
                    kai_core::deploy::from_versions(&a.plan),
                    a.plan.version,
                    saved.made,
                    saved.by
                )
            })
            .collect();
        confirm::ask_protected(&env, "apply this plan", &lines)?;
    }
    let transport = EnvTransport::open(environment, settings);
    let reports = runner.deploy(&transport, work).await;
    transport.close().await;
    let code = crate::report::exit_code(&reports);
    crate::json::print_outcome(globals.json, "deploy", &env, &reports, code)?;
    crate::notify::after_run(config, "deploy", &env, settings, &reports).await;
    Ok(code)
}

/// A saved plan, or a usage error saying why the file is not one.
fn read_saved(file: &std::path::Path) -> Result<SavedPlan, CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::usage(format!("{}: {e}", file.display()), None))?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        CliError::usage(
            format!("{}: not a plan kai saved ({e})", file.display()),
            Some("make one with `kai plan <env> <app>... --out FILE`".into()),
        )
    })?;
    if saved.kai_plan != kai_core::plan::saved::FORMAT {
        return Err(CliError::usage(
            format!("{}: a plan of format {}, this kai reads format {}", file.display(), saved.kai_plan, kai_core::plan::saved::FORMAT),
            None,
        ));
    }
    Ok(saved)
}
