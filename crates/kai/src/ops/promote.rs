//! `kai promote <from> <to>` (and `kai plan <to> --from <from>`): the release each app
//! runs in one environment, checked on its hosts and against the repository, as the
//! release to deploy to another. Nothing is touched here.

use kai_core::config::{App, Config};
use kai_core::diff::promotion_problems;
use kai_core::plan::Release;

use crate::error::CliError;
use crate::repository::Repository;
use crate::resolve;
use crate::settings::Settings;

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
