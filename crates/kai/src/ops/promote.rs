//! `kai promote <from> <to>` (and `kai plan <to> --from <from>`): the release each app
//! runs in one environment, checked on its hosts and against the repository, as the
//! release to deploy to another, then the usual rolling deploy.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kai_core::config::{App, Config};
use kai_core::diff::promotion_problems;
use kai_core::facts::HostFacts;
use kai_core::plan::Options;
use kai_core::plan::Release;

use super::confirm;
use super::prepare::{self, SyncWish};
use super::run::{run_id, Ran, Runner, Work};
use crate::error::CliError;
use crate::progress::{Look, Progress};
use crate::repository::Repository;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::EnvTransport;

/// What `kai promote` was asked.
pub struct PromoteRequest {
    pub from: String,
    pub to: String,
    /// Only these apps (default: every app placed in both).
    pub apps: Vec<String>,
    pub jobs: usize,
    pub yes: bool,
    pub sync: SyncWish,
    /// How long to wait for a deploy lock someone else holds.
    pub lock_wait: Option<std::time::Duration>,
}

/// Deploys to `to` exactly what `from` runs, confirmed (with the diff) on a protected `to`.
pub async fn promote(config_dir: &Option<PathBuf>, look: Look, args: PromoteRequest, settings: &Settings) -> Result<Ran, CliError> {
    let (from, to) = (args.from.as_str(), args.to.as_str());
    let prepared = prepare::prepare(config_dir, settings, to, args.sync).await?;
    let config = &prepared.config;
    crate::config_files::environment(config, from)?;
    same_environment(from, to)?;
    let apps = apps(config, from, to, &args.apps)?;
    let repo = crate::resolve::repository(config, settings)?;
    let releases = releases(config, from, &apps, &repo, settings).await?;
    let environment = &config.environments[to];
    if environment.protected && !args.yes {
        confirm::can_ask_protected(to, "promote", settings)?;
        let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
        let diff = super::diff::read(config, from, to, &names, settings).await?;
        let transport = EnvTransport::open(environment, settings);
        let names: Vec<&App> = releases.iter().map(|(app, _)| *app).collect();
        let ahead = crate::fleet::ReadAhead::read(&transport, config, to, &names, &[]).await;
        let ahead = &ahead;
        let previews = releases.iter().map(|(app, release)| {
            confirm::preview(Some(ahead), &transport, config, to, app, &[], |_: &BTreeMap<String, HostFacts>| release.version.clone())
        });
        let mut lines: Vec<String> = futures_util::future::join_all(previews).await.into_iter().flatten().collect();
        transport.close().await;
        lines.push(String::new());
        lines.extend(diff.render().lines().map(str::to_owned));
        confirm::ask_protected(to, &format!("promote from {from}"), &lines)?;
    }
    let progress = Progress::with_look(to, look);
    let runner = Runner::new(&prepared, to, &repo, settings, &progress, Options { run_id: run_id(), force: false, only: Vec::new() });
    let work = releases.into_iter().map(|(app, release)| Work::Release { app, release: Box::new(release) }).collect();
    let mut runner = runner;
    runner.jobs = args.jobs;
    runner.lock_wait = args.lock_wait;
    let transport = EnvTransport::open(environment, settings);
    let reports = runner.deploy(&transport, work).await;
    transport.close().await;
    drop(runner);
    Ok(Ran { config: prepared.config, env: to.to_owned(), reports })
}

/// The apps to promote: those named (each placed in both environments), or every app
/// placed in both.
pub fn apps<'c>(config: &'c Config, from: &str, to: &str, names: &[String]) -> Result<Vec<&'c App>, CliError> {
    let in_both = |app: &App| app.envs.contains_key(from) && app.envs.contains_key(to);
    if names.is_empty() {
        let apps: Vec<&App> = config.apps.values().filter(|a| in_both(a)).collect();
        if apps.is_empty() {
            return Err(CliError::usage(format!("no application is placed in both {from} and {to}"), None));
        }
        return Ok(apps);
    }
    let mut apps: Vec<&App> = Vec::new();
    for name in names {
        let app = crate::config_files::application(config, name)?;
        if let Some(missing) = [from, to].into_iter().find(|env| !app.envs.contains_key(*env)) {
            return Err(CliError::usage(
                format!("{name} is not deployed to {missing}: apps/{name}.toml has no [env.{missing}] section"),
                None,
            ));
        }
        if !apps.iter().any(|a| a.name == app.name) {
            apps.push(app);
        }
    }
    Ok(apps)
}

/// For each app, the release its active hosts in `from` run: one version, one
/// recorded checksum, healthy, a repository release, and the repository's artifact of
/// that version has that checksum. Any app that fails refuses them all (exit 2), each
/// reason named.
pub async fn releases<'c>(
    config: &Config,
    from: &str,
    apps: &[&'c App],
    repo: &Repository,
    settings: &Settings,
) -> Result<Vec<(&'c App, Release)>, CliError> {
    let environment = crate::config_files::environment(config, from)?;
    let statuses = crate::fleet::read_env(settings, config, environment, apps, true).await;
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for app in apps {
        let app_problems = promotion_problems(&statuses, from, &app.name);
        if !app_problems.is_empty() {
            problems.extend(app_problems.into_iter().map(|p| format!("{}: {p}", app.name)));
            continue;
        }
        let host = statuses.iter().find(|s| s.env == from && s.app == app.name && !s.standby).expect("an active host was read");
        let (version, recorded) = (host.current.clone().unwrap_or_default(), host.checksum.clone().unwrap_or_default());
        match resolve::release(repo, config, app, &version).await {
            Ok(mut release) if release.checksum.to_string() == recorded => {
                release.promoted_from = Some(from.to_owned());
                found.push((*app, release));
            }
            Ok(release) => problems.push(format!(
                "{}: {from} runs {version} with {recorded}, the repository's {version} is {}: it was published again since",
                app.name, release.checksum
            )),
            Err(e) => problems.push(format!("{}: {version} from the repository: {e}", app.name)),
        }
    }
    if problems.is_empty() {
        return Ok(found);
    }
    let hint = if problems.iter().any(|p| p.contains("is a local build") || p.contains("is a SNAPSHOT")) {
        format!("only a repository release is promoted: publish that build as a release, deploy it to {from}, then promote it")
    } else {
        format!("`kai status {from} <app>` shows each host; promote once its hosts agree and are healthy")
    };
    Err(CliError::usage(format!("nothing was promoted from {from}:\n  {}", problems.join("\n  ")), Some(hint)))
}

/// Promoting an environment to itself is a mistake, not a no-op.
pub fn same_environment(from: &str, to: &str) -> Result<(), CliError> {
    if from == to {
        return Err(CliError::usage(
            format!("{from} is both where the release runs and where it goes"),
            Some("kai promote FROM TO".into()),
        ));
    }
    Ok(())
}
