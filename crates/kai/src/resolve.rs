//! From `<app>[-<version>]` arguments to releases: which version, which artifact,
//! which checksum, and how it reaches the hosts. Everything here happens before any
//! host is touched.

use std::path::Path;

use kai_core::args::{choose, parse_app_arg, Unchosen, VersionWanted};
use kai_core::checksum::{Algorithm, Checksum};
use kai_core::config::{App, Config, FetchMode, RepoLocation};
use kai_core::local_build::{self, LocalBuild};
use kai_core::maven::Coordinates;
use kai_core::plan::{Release, Source};
use kai_core::suggest::did_you_mean;

use crate::error::CliError;
use crate::repository::{Credentials, RepoError, Repository};
use crate::settings::Settings;

/// The apps named on the command line, each with the version it asked for.
pub fn parse_apps<'c>(config: &'c Config, env: &str, args: &[String]) -> Result<Vec<(&'c App, VersionWanted)>, CliError> {
    let names: Vec<&str> = config.apps.keys().map(String::as_str).collect();
    let mut wanted: Vec<(&App, VersionWanted)> = Vec::new();
    for arg in args {
        let parsed = parse_app_arg(arg, names.iter().copied()).map_err(|e| CliError::usage(e.to_string(), None))?;
        let app = &config.apps[&parsed.app];
        if !app.envs.contains_key(env) {
            let placed: Vec<&str> = app.envs.keys().map(String::as_str).collect();
            return Err(CliError::usage(
                format!("{} is not deployed to {env}: apps/{}.toml has no [env.{env}] section", app.name, app.name),
                Some(format!("it is placed in: {}", if placed.is_empty() { "no environment".into() } else { placed.join(", ") })),
            ));
        }
        if wanted.iter().any(|(a, _)| a.name == app.name) {
            return Err(CliError::usage(format!("{} is named twice", app.name), None));
        }
        wanted.push((app, parsed.version));
    }
    Ok(wanted)
}

/// `--all`: every app placed in `env` (its file has an `[env.<env>]` section, as
/// `kai status <env>` counts them), each at its newest release, in name order.
pub fn all_placed<'c>(config: &'c Config, env: &str) -> Result<Vec<(&'c App, VersionWanted)>, CliError> {
    let apps = crate::config_files::apps_in(config, env);
    if apps.is_empty() {
        return Err(CliError::usage(
            format!("--all: no application is placed in {env} (environments/{env}.toml): no apps/*.toml has an [env.{env}] section"),
            Some(format!("place an app there with `[env.{env}]` and `servers = [...]` in its apps/<app>.toml")),
        ));
    }
    Ok(apps.into_iter().map(|app| (app, VersionWanted::Newest)).collect())
}

/// The repository of `config`, with credentials from the variables it names.
pub fn repository(config: &Config, settings: &Settings) -> Result<Repository, CliError> {
    if let Some(problem) = crate::config_files::repository_folder_problem(config) {
        return Err(CliError::Config(kai_core::config::ConfigErrors(vec![problem])));
    }
    check_credentials(config, settings)?;
    let limits = crate::repository::Limits { document: config.repository.timeout, download: config.defaults.fetch_timeout };
    Repository::new(config.repository.location.clone(), credentials(config, settings), settings.cache_dir.join("artifacts"), limits)
        .map_err(|e| CliError::Failed(e.into()))
}

/// Credentials with a control character (a newline, say) are refused before anything
/// runs: hosts read them as curl configuration, where a newline would start an option.
fn check_credentials(config: &Config, settings: &Settings) -> Result<(), CliError> {
    let repo = &config.repository;
    for name in [&repo.username_env, &repo.password_env].into_iter().flatten() {
        if settings.var(name).is_some_and(|value| value.chars().any(char::is_control)) {
            return Err(CliError::usage(
                format!("the variable {name} (repository credentials, named in kai.toml) holds a control character, a newline perhaps; nothing was touched"),
                Some(format!("set {name} to the credential alone, without a trailing newline (printf, not echo)")),
            ));
        }
    }
    Ok(())
}

/// The repository credentials, from the environment variables kai.toml names.
fn credentials(config: &Config, settings: &Settings) -> Option<Credentials> {
    let repo = &config.repository;
    let username = settings.var(repo.username_env.as_deref()?)?;
    let password = settings.var(repo.password_env.as_deref()?)?;
    Some(Credentials { username: username.into(), password: password.into() })
}

/// The version to deploy: the one asked for, if the repository has it, else the
/// highest release in Maven order.
pub async fn resolve_version(repo: &Repository, config: &Config, app: &App, wanted: &VersionWanted) -> Result<String, CliError> {
    let listed = list_versions(repo, config, app).await?;
    remember_versions(repo, app, &listed);
    choose(&listed, wanted).map_err(|unchosen| match (unchosen, wanted) {
        (Unchosen::NotListed { near, newest }, VersionWanted::Exact(v)) => {
            let newest = newest.map(|n| format!("newest release: {n}"));
            let near: Vec<&str> = near.iter().map(String::as_str).collect();
            let hint = [did_you_mean(&near), newest].into_iter().flatten().collect::<Vec<_>>().join(" ");
            CliError::usage(
                format!("{} has no version {v} in {}", app.name, repo.describe()),
                Some(if hint.is_empty() { format!("`kai versions {}` lists them", app.name) } else { hint }),
            )
        }
        _ => CliError::usage(
            format!("{} has no release in {} (only snapshots or pre-releases, or nothing)", app.name, repo.describe()),
            Some(format!("name a version: {}-<version>", app.name)),
        ),
    })
}

/// The versions the repository lists for `app`. What the configuration got wrong (an
/// artifact or group the repository does not have, credentials refused, a repository
/// that cannot be reached) is a usage error naming the key to fix.
pub async fn list_versions(repo: &Repository, config: &Config, app: &App) -> Result<Vec<String>, CliError> {
    repo.versions(&app.group, &app.artifact).await.map_err(|e| configuration_error(repo, config, app, e))
}

/// A repository error as the configuration mistake it most likely is, when it is one.
pub fn configuration_error(repo: &Repository, config: &Config, app: &App, error: RepoError) -> CliError {
    let app_file = format!("apps/{}.toml", app.name);
    let group_key = if config.repository.group.as_deref() == Some(app.group.as_str()) {
        format!("`group` in kai.toml [repository] (or a `group` of its own in {app_file})")
    } else {
        format!("`group` in {app_file}")
    };
    match error {
        RepoError::NotFound { what, url } if what == "artifact" => CliError::usage(
            format!("{}: the artifact file is not in the repository ({url})", app.name),
            Some(format!(
                "the version is listed, so check `packaging = \"{}\"`{} in {app_file}",
                app.packaging,
                app.classifier.as_ref().map(|c| format!(" and `classifier = {c:?}`")).unwrap_or_default()
            )),
        ),
        RepoError::NotFound { url, .. } => CliError::usage(
            format!("{}: {}:{} is not in the repository ({url})", app.name, app.group, app.artifact),
            Some(format!("check `artifact = {:?}` in {app_file} and {group_key}; `kai check --repository` checks every app", app.artifact)),
        ),
        e @ RepoError::Unauthorized { .. } => CliError::usage(
            format!("{}: {e}", app.name),
            Some("kai.toml [repository] `username_env` and `password_env` name the variables holding them".into()),
        ),
        e @ RepoError::Network { .. } => {
            CliError::usage(format!("{}: {e}", app.name), Some(format!("check `url` in kai.toml [repository] ({})", repo.describe())))
        }
        e => CliError::Failed(anyhow::anyhow!("{}: {e}", app.name)),
    }
}

/// Keeps the versions the repository just listed for shell completion
/// ([`crate::version_cache`], in kai's cache folder: the parent of the download cache
/// [`repository`] sets). Best effort: a cache that cannot be written changes nothing.
pub fn remember_versions(repo: &Repository, app: &App, listed: &[String]) {
    if let Some(cache_dir) = repo.cache_dir().parent() {
        let repository = repo.describe();
        let key = crate::version_cache::Key { repository: &repository, group: &app.group, artifact: &app.artifact };
        let _ = crate::version_cache::store(cache_dir, key, listed);
    }
}

pub fn coordinates(app: &App, version: &str) -> Coordinates {
    Coordinates {
        group: app.group.clone(),
        artifact: app.artifact.clone(),
        version: version.to_owned(),
        classifier: app.classifier.clone(),
        packaging: app.packaging,
    }
}

/// Whether hosts download the artifact themselves.
pub fn pulls(config: &Config) -> bool {
    match config.defaults.fetch {
        FetchMode::Pull => true,
        FetchMode::Push => false,
        FetchMode::Auto => matches!(config.repository.location, RepoLocation::Http(_)),
    }
}

/// The artifact, checksummed, and how it reaches the hosts: when kai pushes it,
/// downloaded and verified here (the source is that file); when hosts pull it, its
/// checksum and size from the repository (the size is what their free disk is checked
/// against). The same for `kai plan` and `kai deploy`, so a plan shows what runs.
pub async fn release(repo: &Repository, config: &Config, app: &App, version: &str) -> Result<Release, RepoError> {
    let coords = coordinates(app, version);
    if !pulls(config) {
        let fetched = repo.fetch(&coords).await?;
        return Ok(Release {
            version: version.into(),
            file_name: coords.file_name(),
            checksum: fetched.checksum,
            size: Some(fetched.size),
            source: Source::Push { local: fetched.path },
            local: None,
            promoted_from: None,
        });
    }
    let checksum = repo.checksum(&coords).await?;
    let size = repo.size(&coords).await?;
    let auth = config.repository.username_env.is_some();
    Ok(Release {
        version: version.into(),
        file_name: coords.file_name(),
        checksum,
        size,
        source: Source::Pull { url: repo.artifact_url(&coords), auth },
        local: None,
        promoted_from: None,
    })
}

/// The repository credentials as curl configuration (`user = "name:password"`), for
/// hosts that download themselves; fed on standard input, never in arguments.
pub fn curl_credentials(config: &Config, settings: &Settings) -> Option<String> {
    let Credentials { username, password } = credentials(config, settings)?;
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("user = \"{}:{}\"\n", escape(&username), escape(&password)))
}

/// The sha256 of a file here, read off the async threads.
pub async fn sha256_of(path: &Path) -> Result<Checksum, String> {
    let owned = path.to_owned();
    let hex = tokio::task::spawn_blocking(move || crate::repository::hash_file(&owned, Algorithm::Sha256))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Checksum { algorithm: Algorithm::Sha256, hex })
}

/// What `--app` and `--version` say about a local build (when its name does not).
#[derive(Clone, Debug, Default)]
pub struct LocalWish {
    pub app: Option<String>,
    pub version: Option<String>,
}

/// A build on this machine (`kai deploy <env> ./target/hello-1.2.0.zip`) as a release:
/// the app whose artifact its name matches (or `--app`), the version in its name (or
/// `--version`), its sha256 computed here, pushed from here whatever the `fetch` mode,
/// and named `<version>+local.<sha256 prefix>` on the hosts. Refused on a protected
/// environment unless it sets `allow_local = true`. Nothing is touched on the way.
pub async fn local_release<'c>(
    config: &'c Config,
    env: &str,
    arg: &str,
    wish: &LocalWish,
    settings: &Settings,
) -> Result<(&'c App, Release), CliError> {
    let environment = &config.environments[env];
    if environment.protected && !environment.allow_local {
        return Err(CliError::usage(
            format!("{env} is protected: it takes releases from the repository, not a local build ({arg})"),
            Some(format!(
                "publish it to the repository, or set `allow_local = true` in environments/{env}.toml to allow local builds there"
            )),
        ));
    }
    let path = Path::new(arg);
    let meta = std::fs::metadata(path).map_err(|e| CliError::usage(format!("{arg}: {e}"), Some(local_hint())))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!("{arg}: not a file"), Some(local_hint())));
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let placed: Vec<&App> = config.apps.values().filter(|a| a.envs.contains_key(env)).collect();
    let (app, named) = match &wish.app {
        Some(name) => {
            let app = crate::config_files::application(config, name)?;
            if !app.envs.contains_key(env) {
                return Err(CliError::usage(format!("{name} is not deployed to {env}: apps/{name}.toml has no [env.{env}] section"), None));
            }
            (app, local_build::version_in(app, &file_name))
        }
        // Matched against every app, so a build of an app not placed here is not taken
        // for another app's (`hello-admin-2.0` is not `hello` at version `admin-2.0`).
        None => match local_build::matching(config.apps.values(), &file_name).as_slice() {
            [(app, _)] if !app.envs.contains_key(env) => {
                return Err(CliError::usage(
                    format!(
                        "{file_name} is a build of {}, which is not deployed to {env}: apps/{}.toml has no [env.{env}] section",
                        app.name, app.name
                    ),
                    Some("deploy it to an environment it is placed in, or name another app with --app NAME".into()),
                ));
            }
            [(app, version)] => (*app, Some(version.clone())),
            [] => {
                let names: Vec<String> = placed.iter().map(|a| format!("{} ({})", a.name, expected_name(a))).collect();
                return Err(CliError::usage(
                    format!("{file_name} is not named like a build of any app of {env}"),
                    Some(format!("name the app with --app NAME; the apps of {env} expect: {}", names.join(", "))),
                ));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(a, _)| a.name.as_str()).collect();
                return Err(CliError::usage(
                    format!("{file_name} could be a build of {}", names.join(" or ")),
                    Some("name the app with --app NAME".into()),
                ));
            }
        },
    };
    if !file_name.ends_with(&format!(".{}", app.packaging.extension())) {
        return Err(CliError::usage(
            format!(
                "{file_name} is not a .{} file, and {} is packaged as {} (apps/{}.toml)",
                app.packaging.extension(),
                app.name,
                app.packaging,
                app.name
            ),
            None,
        ));
    }
    let version = match (&wish.version, named) {
        (Some(version), _) => version.clone(),
        (None, Some(version)) => version,
        (None, None) => {
            return Err(CliError::usage(
                format!("the version of {file_name} cannot be read from its name ({} expects {})", app.name, expected_name(app)),
                Some("give it with --version VERSION".into()),
            ))
        }
    };
    if let Some(problem) = kai_core::ident::problem(&version) {
        return Err(CliError::usage(format!("version {version:?}: {problem}"), None));
    }
    let checksum = sha256_of(path).await.map_err(|e| CliError::usage(e, None))?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let label = local_build::label(&version, &checksum.hex);
    let release = Release {
        file_name: coordinates(app, &label).file_name(),
        local: Some(LocalBuild {
            checksum: checksum.to_string(),
            user: settings.user.clone(),
            machine: settings.machine.clone(),
            file: absolute.display().to_string(),
        }),
        version: label,
        checksum,
        size: Some(meta.len()),
        source: Source::Push { local: absolute },
        promoted_from: None,
    };
    Ok((app, release))
}

fn expected_name(app: &App) -> String {
    coordinates(app, "<version>").file_name()
}

fn local_hint() -> String {
    "a local build is a path to an artifact file, like ./target/hello-1.2.0.zip".into()
}

/// The local builds among `args` (paths to files) as releases, and the other
/// arguments (app names) as they are. `--app` and `--version` need exactly one local
/// build; an app given both ways is refused.
pub async fn locals<'c>(
    config: &'c Config,
    env: &str,
    args: &[String],
    wish: &LocalWish,
    settings: &Settings,
) -> Result<(Vec<(&'c App, Release)>, Vec<String>), CliError> {
    let (paths, names): (Vec<String>, Vec<String>) =
        args.iter().cloned().partition(|a| local_build::is_path(a, |p| Path::new(p).is_file()));
    if paths.len() != 1 && (wish.app.is_some() || wish.version.is_some()) {
        let flag = if wish.app.is_some() { "--app" } else { "--version" };
        let given = if paths.is_empty() { "none".to_owned() } else { format!("{} files", paths.len()) };
        return Err(CliError::usage(
            format!("{flag} goes with one local build (a path to an artifact file), and this names {given}"),
            Some(format!("give one file, like: kai deploy {env} ./target/hello-1.2.0.zip {flag} ...")),
        ));
    }
    let mut releases: Vec<(&App, Release)> = Vec::new();
    for path in &paths {
        let (app, release) = local_release(config, env, path, wish, settings).await?;
        let named = names.iter().any(|n| parse_app_arg(n, std::iter::once(app.name.as_str())).is_ok_and(|p| p.app == app.name));
        if named || releases.iter().any(|(a, _)| a.name == app.name) {
            return Err(CliError::usage(format!("{} is named twice ({path} is a build of it)", app.name), None));
        }
        releases.push((app, release));
    }
    Ok((releases, names))
}
