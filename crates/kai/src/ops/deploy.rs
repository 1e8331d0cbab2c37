//! `kai deploy`: every app resolved to its release, confirmed on a protected
//! environment, then deployed ([`super::run`]); or a saved plan made again and applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kai_core::facts::HostFacts;
use kai_core::plan::saved::SavedPlan;
use kai_core::plan::Options;

use super::confirm;
use super::prepare::{self, SyncWish};
use super::run::{run_id, Ran, Runner, Work};
use crate::error::CliError;
use crate::progress::{Look, Progress};
use crate::resolve;
use crate::settings::Settings;
use crate::transport::EnvTransport;

/// What `kai deploy` was asked.
pub struct DeployRequest {
    pub env: String,
    /// `<app>`, `<app>-<version>`, `<app>@<version>` or a local build's path.
    pub apps: Vec<String>,
    /// Every app placed in the environment, each at its newest release (`apps` is empty).
    pub all: bool,
    pub local: resolve::LocalWish,
    pub only: Vec<String>,
    pub force: bool,
    /// Applications deployed at once.
    pub jobs: usize,
    /// Do not ask on a protected environment.
    pub yes: bool,
    pub sync: SyncWish,
    /// How long to wait for a deploy lock someone else holds.
    pub lock_wait: Option<std::time::Duration>,
}

/// What `kai deploy --plan FILE` was asked.
pub struct ApplyRequest {
    pub file: PathBuf,
    /// The environment named on the line, which must be the plan's.
    pub env: Option<String>,
    pub jobs: usize,
    pub yes: bool,
    pub sync: SyncWish,
    pub lock_wait: Option<std::time::Duration>,
}

/// Deploys the apps asked for.
pub async fn deploy(config_dir: &Option<PathBuf>, look: Look, args: DeployRequest, settings: &Settings) -> Result<Ran, CliError> {
    let env = args.env.clone();
    let prepared = prepare::prepare(config_dir, settings, &env, args.sync).await?;
    let config = &prepared.config;
    let environment = &config.environments[&env];
    crate::config_files::check_only(environment, &args.only)?;
    let (locals, named) = resolve::locals(config, &env, &args.apps, &args.local, settings).await?;
    let wanted = if args.all { resolve::all_placed(config, &env)? } else { resolve::parse_apps(config, &env, &named)? };
    let repo = resolve::repository(config, settings)?;
    let mut work: Vec<Work> = locals.into_iter().map(|(app, release)| Work::Release { app, release: Box::new(release) }).collect();
    for (app, wanted) in &wanted {
        work.push(Work::Deploy { app, version: resolve::resolve_version(&repo, config, app, wanted).await? });
    }
    let progress = Progress::with_look(&env, look);
    let mut runner =
        Runner::new(&prepared, &env, &repo, settings, &progress, Options { run_id: run_id(), force: args.force, only: args.only.clone() });
    runner.jobs = args.jobs;
    runner.lock_wait = args.lock_wait;
    let transport = EnvTransport::open(environment, settings);
    let confirm = environment.protected && !args.yes;
    let reports = async {
        if confirm {
            confirm::can_ask_protected(&env, "deploy", settings)?;
            let apps: Vec<&kai_core::config::App> = work.iter().map(Work::app).collect();
            let ahead = crate::fleet::ReadAhead::read(&transport, config, &env, &apps, &args.only).await;
            let ahead = &ahead;
            let previews = work.iter().map(|w| {
                let (app, version) = match w {
                    Work::Release { app, release } => (*app, release.version.clone()),
                    Work::Deploy { app, version } => (*app, version.clone()),
                    _ => unreachable!("deploy work"),
                };
                confirm::preview(Some(ahead), &transport, config, &env, app, &args.only, |_: &BTreeMap<String, HostFacts>| version)
            });
            let lines: Vec<String> = futures_util::future::join_all(previews).await.into_iter().flatten().collect();
            confirm::ask_protected(&env, "deploy", &lines)?;
        }
        Ok::<_, CliError>(runner.deploy(&transport, work).await)
    }
    .await;
    transport.close().await;
    let reports = reports?;
    drop(runner);
    Ok(Ran { config: prepared.config, env, reports })
}

/// `kai deploy --plan FILE`: the saved plan made again and run when it is the same
/// plan; refused otherwise.
pub async fn apply(config_dir: &Option<PathBuf>, look: Look, args: ApplyRequest, settings: &Settings) -> Result<Ran, CliError> {
    let file = args.file.as_path();
    let saved = read_saved(file)?;
    if let Some(env) = args.env.as_deref().filter(|e| *e != saved.env) {
        return Err(CliError::usage(
            format!("{} is a plan for {}, not {env}", file.display(), saved.env),
            Some(format!("kai deploy --plan {}", file.display())),
        ));
    }
    let env = saved.env.clone();
    let prepared = prepare::prepare(config_dir, settings, &env, args.sync).await?;
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
    let progress = Progress::with_look(&env, look);
    let mut runner = Runner::new(&prepared, &env, &repo, settings, &progress, saved.options(run_id()));
    runner.jobs = args.jobs;
    runner.lock_wait = args.lock_wait;
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
    drop(runner);
    Ok(Ran { config: prepared.config, env, reports })
}

/// A saved plan, or a usage error saying why the file is not one.
fn read_saved(file: &Path) -> Result<SavedPlan, CliError> {
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
