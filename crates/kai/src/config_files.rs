//! The configuration repository on disk: finding it, bringing it up to date (git),
//! reading its files for `kai_core::config::load` to validate, and looking names up in
//! it with errors that say what exists.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kai_core::config::{App, Config, ConfigSources, Environment, SourceFile};
use kai_core::suggest::{did_you_mean, nearest};

use crate::error::CliError;
use crate::settings::Settings;
use crate::sync::Synced;

const KAI_TOML: &str = "kai.toml";

/// Why no configuration repository was found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// `--config DIR` or `KAI_CONFIG` names a folder without `kai.toml`.
    #[error("no kai.toml in {} (from {from})", dir.display())]
    NotARepository { dir: PathBuf, from: &'static str },
    /// `--config` or `KAI_CONFIG` names a file that is not `kai.toml`, or nothing.
    #[error("{} (from {from}) is not a folder holding kai.toml", path.display())]
    FileGiven { path: PathBuf, from: &'static str },
    /// Walking up from the working directory found no `kai.toml`.
    #[error("no kai.toml in {} or any folder above it", cwd.display())]
    NotFound { cwd: PathBuf },
}

impl FindError {
    pub fn hint(&self) -> String {
        match self {
            FindError::NotARepository { dir, .. } => {
                format!("run `kai init {}` to create one, or point --config at the folder holding kai.toml", dir.display())
            }
            FindError::NotFound { .. } => "run `kai init` to create one, or pass --config DIR (or set KAI_CONFIG)".to_owned(),
            FindError::FileGiven { path, .. } => match path.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(parent) if path.exists() => format!("point it at the folder holding kai.toml (--config {})", parent.display()),
                _ => "point it at the folder holding kai.toml, or run `kai init DIR` to create one".to_owned(),
            },
        }
    }
}

/// A file or folder of the configuration repository that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// `--config DIR`, else `KAI_CONFIG` (passed in, never read here), else walk up from
/// `cwd` to a folder holding `kai.toml`. Relative paths are taken from `cwd`; the root
/// returned is absolute when `cwd` is.
pub fn find_root(explicit: Option<&Path>, kai_config_env: Option<&Path>, cwd: &Path) -> Result<PathBuf, FindError> {
    let named = explicit
        .map(|dir| (dir, "--config"))
        .or_else(|| kai_config_env.filter(|dir| !dir.as_os_str().is_empty()).map(|dir| (dir, "KAI_CONFIG")));
    if let Some((dir, from)) = named {
        let dir: PathBuf = cwd.join(dir).components().collect();
        // The file itself (`--config repo/kai.toml`) names its folder.
        if dir.is_file() && dir.file_name().is_some_and(|n| n == KAI_TOML) {
            return Ok(dir.parent().map(Path::to_path_buf).unwrap_or(dir));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(FindError::FileGiven { path: dir, from });
        }
        return if dir.join(KAI_TOML).is_file() { Ok(dir) } else { Err(FindError::NotARepository { dir, from }) };
    }
    cwd.ancestors()
        .find(|dir| dir.join(KAI_TOML).is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| FindError::NotFound { cwd: cwd.to_path_buf() })
}

/// Reads `kai.toml`, `environments/*.toml` and `apps/*.toml` (each folder sorted by
/// file name; a missing folder is an empty one).
pub fn read_sources(root: &Path) -> Result<ConfigSources, ReadError> {
    Ok(ConfigSources {
        root: root.to_path_buf(),
        kai_toml: read_file(root, Path::new(KAI_TOML))?,
        environments: read_folder(root, "environments")?,
        apps: read_folder(root, "apps")?,
    })
}

fn read_file(root: &Path, relative: &Path) -> Result<SourceFile, ReadError> {
    let path = root.join(relative);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(SourceFile { path: relative.to_path_buf(), text }),
        Err(source) => Err(ReadError { path, source }),
    }
}

/// The `*.toml` files of one folder, by name; hidden files (editor leftovers) are skipped.
fn read_folder(root: &Path, folder: &str) -> Result<Vec<SourceFile>, ReadError> {
    let dir = root.join(folder);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ReadError { path: dir, source }),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReadError { path: dir.clone(), source })?;
        let name = entry.file_name();
        let is_toml = Path::new(&name).extension().is_some_and(|ext| ext == "toml");
        let hidden = name.to_string_lossy().starts_with('.');
        if is_toml && !hidden && dir.join(&name).is_file() {
            names.push(name);
        }
    }
    names.sort();
    names.iter().map(|name| read_file(root, &Path::new(folder).join(name))).collect()
}

/// Finds, reads and validates the configuration repository.
pub fn load_config(explicit: &Option<PathBuf>, settings: &Settings) -> Result<Config, CliError> {
    load_config_at(&config_root(explicit, settings)?)
}

/// The folder of the configuration repository: `--config`, `KAI_CONFIG`, or upwards.
pub fn config_root(explicit: &Option<PathBuf>, settings: &Settings) -> Result<PathBuf, CliError> {
    find_root(explicit.as_deref(), settings.kai_config.as_deref(), &settings.cwd)
        .map_err(|e| CliError::usage(e.to_string(), Some(e.hint().to_string())))
}

/// A folder repository (`url` a path) that does not exist: said as a problem of
/// `repository.url`, rather than later as a missing artifact or group.
pub fn repository_folder_problem(config: &Config) -> Option<kai_core::config::ConfigError> {
    let kai_core::config::RepoLocation::Folder(folder) = &config.repository.location else { return None };
    if folder.is_dir() {
        return None;
    }
    let text = fs::read_to_string(config.root.join(KAI_TOML)).unwrap_or_default();
    let line = text.lines().position(|l| l.trim_start().starts_with("url") && l.contains('=')).map(|i| i + 1);
    let mut error = kai_core::config::ConfigError::new(KAI_TOML, format!("the repository folder {} does not exist", folder.display()))
        .with_key("repository.url")
        .with_hint("`url` is an http(s):// URL, file:///absolute/path, or a folder relative to the configuration root");
    if let Some(line) = line {
        error = error.with_line(line);
    }
    Some(error)
}

/// Reads and validates the configuration repository at `root`.
pub fn load_config_at(root: &Path) -> Result<Config, CliError> {
    let sources = read_sources(root).map_err(|e| CliError::usage(e.to_string(), None))?;
    Ok(kai_core::config::load(&sources)?)
}

/// Brings the configuration repository up to date before a deploy or rollback (unless
/// `--no-sync`), telling on stderr what changed; the configuration is loaded after it.
pub async fn sync_config(root: &Path, no_sync: bool) -> Result<Option<Synced>, CliError> {
    if no_sync {
        return Ok(None);
    }
    match crate::sync::sync(root).await {
        Ok(synced) => {
            if let Some(synced) = &synced {
                eprint!("{}", synced.describe());
            }
            Ok(synced)
        }
        Err(e) => Err(CliError::usage(
            format!("{e}; nothing was deployed"),
            Some(format!("resolve it in {} (git status, git pull), or pass --no-sync to deploy what you have", root.display())),
        )),
    }
}

/// Uncommitted configuration changes are only a warning, except on a protected
/// environment without `--allow-dirty`.
pub fn refuse_dirty(synced: Option<&Synced>, environment: &Environment, allow_dirty: bool) -> Result<(), CliError> {
    match synced {
        Some(synced) if !synced.dirty.is_empty() && environment.protected && !allow_dirty => Err(CliError::usage(
            format!(
                "{} is protected and the configuration in {} has uncommitted changes; nothing was deployed",
                environment.name,
                synced.root.display()
            ),
            Some("commit and push them first, or pass --allow-dirty to deploy them anyway".into()),
        )),
        _ => Ok(()),
    }
}

/// `app` given where the environment goes: says so, and shows the command line in the
/// right order when a later argument names an environment.
fn swapped_arguments(config: &Config, app: &str) -> CliError {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let order = config.environment_order.first().map_or("<env>", String::as_str);
    match kai_core::args::swapped(&words, app, |w| config.environments.contains_key(w)) {
        Some((fixed, env)) => CliError::usage(
            format!("{app:?} is an application and {env:?} an environment: the environment comes first"),
            Some(format!("kai {}", quoted(&fixed))),
        ),
        None => {
            let mut fixed = words.clone();
            match words.iter().position(|w| w == app) {
                Some(at) => fixed.insert(at, order.to_owned()),
                None => fixed = vec!["<command>".into(), order.into(), app.into()],
            }
            CliError::usage(
                format!("{app:?} is an application, not an environment"),
                Some(format!("the environment comes first: kai {}", quoted(&fixed))),
            )
        }
    }
}

/// Words as a shell line, each quoted where it needs it.
fn quoted(words: &[String]) -> String {
    words.iter().map(|w| kai_core::shell::command::quote(w)).collect::<Vec<_>>().join(" ")
}

/// The environment named `env`, or a usage error naming the nearest ones.
pub fn environment<'c>(config: &'c Config, env: &str) -> Result<&'c kai_core::config::Environment, CliError> {
    if !config.environments.contains_key(env) && kai_core::args::parse_app_arg(env, config.apps.keys().map(String::as_str)).is_ok() {
        return Err(swapped_arguments(config, env));
    }
    config.environments.get(env).ok_or_else(|| {
        let names = nearest(env, config.environment_order.iter().map(String::as_str));
        let known: Vec<&str> = config.environment_order.iter().map(String::as_str).collect();
        CliError::usage(
            format!("unknown environment {env:?} (no environments/{env}.toml in {})", config.root.display()),
            Some(did_you_mean(&names).unwrap_or_else(|| format!("known environments: {}", known.join(", ")))),
        )
    })
}

/// The application named `name`, or a usage error naming the nearest ones.
pub fn application<'c>(config: &'c Config, name: &str) -> Result<&'c kai_core::config::App, CliError> {
    config.apps.get(name).ok_or_else(|| {
        let names = nearest(name, config.apps.keys().map(String::as_str));
        CliError::usage(format!("unknown application {name:?} (no apps/{name}.toml in {})", config.root.display()), did_you_mean(&names))
    })
}

/// `--only` hosts must be hosts of the environment.
pub fn check_only(environment: &kai_core::config::Environment, only: &[String]) -> Result<(), CliError> {
    for host in only {
        if !environment.hosts.contains_key(host) {
            let names = nearest(host, environment.hosts.keys().map(String::as_str));
            return Err(CliError::usage(
                format!("--only {host}: no such host in environment {}", environment.name),
                Some(
                    did_you_mean(&names)
                        .unwrap_or_else(|| format!("hosts: {}", environment.hosts.keys().cloned().collect::<Vec<_>>().join(", "))),
                ),
            ));
        }
    }
    Ok(())
}

/// The apps deployed to `env`, by name.
pub fn apps_in<'c>(config: &'c Config, env: &str) -> Vec<&'c App> {
    config.apps.values().filter(|a| a.envs.contains_key(env)).collect()
}

/// The application named `name`, which must be deployed to `env`; else a usage error
/// naming the apps that are.
pub fn app_in<'c>(config: &'c Config, env: &str, name: &str) -> Result<&'c App, CliError> {
    let app = application(config, name)?;
    if app.envs.contains_key(env) {
        return Ok(app);
    }
    let here: Vec<&str> = apps_in(config, env).iter().map(|a| a.name.as_str()).collect();
    Err(CliError::usage(
        format!("{name} is not deployed to {env}: apps/{name}.toml has no [env.{env}] section"),
        Some(if here.is_empty() {
            format!("no application is deployed to {env}")
        } else {
            format!("deployed to {env}: {}", here.join(", "))
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary folder")
    }

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create folder");
        }
        fs::write(path, text).expect("write file");
    }

    fn repository() -> tempfile::TempDir {
        let dir = temp();
        write(&dir.path().join(KAI_TOML), "[repository]\nurl = \"repo\"\n");
        dir
    }

    #[test]
    fn walks_up_from_a_subfolder() {
        let repo = repository();
        let nested = repo.path().join("apps/deep/er");
        fs::create_dir_all(&nested).expect("create folder");
        assert_eq!(find_root(None, None, &nested).expect("found"), repo.path());
        assert_eq!(find_root(None, None, repo.path()).expect("found"), repo.path());
    }

    #[test]
    fn explicit_folder_wins_over_kai_config() {
        let (explicit, env) = (repository(), repository());
        let found = find_root(Some(explicit.path()), Some(env.path()), Path::new("/"));
        assert_eq!(found.expect("found"), explicit.path());
    }

    #[test]
    fn kai_config_wins_over_walking_up() {
        let (env, cwd) = (repository(), repository());
        assert_eq!(find_root(None, Some(env.path()), cwd.path()).expect("found"), env.path());
        let empty = find_root(None, Some(Path::new("")), cwd.path());
        assert_eq!(empty.expect("found"), cwd.path());
    }

    #[test]
    fn relative_folder_is_taken_from_cwd() {
        let outer = temp();
        write(&outer.path().join("config/kai.toml"), "");
        let found = find_root(Some(Path::new("./config")), None, outer.path());
        assert_eq!(found.expect("found"), outer.path().join("config"));
    }

    #[test]
    fn named_folder_without_kai_toml_is_an_error_with_a_hint() {
        let empty = temp();
        let error = find_root(None, Some(empty.path()), Path::new("/")).expect_err("no kai.toml");
        assert!(matches!(error, FindError::NotARepository { from: "KAI_CONFIG", .. }), "{error}");
        assert!(error.to_string().contains("(from KAI_CONFIG)"), "{error}");
        assert!(error.hint().contains("kai init"));
    }

    #[test]
    fn the_kai_toml_file_itself_names_its_folder_and_another_file_is_refused_with_a_hint() {
        let repo = repository();
        let file = repo.path().join("kai.toml");
        assert_eq!(find_root(Some(&file), None, Path::new("/")).expect("found"), repo.path());
        write(&repo.path().join("other.toml"), "");
        let error = find_root(Some(&repo.path().join("other.toml")), None, Path::new("/")).expect_err("a file");
        assert!(matches!(error, FindError::FileGiven { from: "--config", .. }), "{error}");
        assert!(error.hint().contains(&format!("--config {}", repo.path().display())), "{}", error.hint());
        assert!(!error.hint().contains("kai init"), "{}", error.hint());
    }

    #[test]
    fn nothing_found_says_how_to_start() {
        let empty = temp();
        let error = find_root(None, None, empty.path()).expect_err("no kai.toml");
        assert!(matches!(error, FindError::NotFound { .. }), "{error}");
        assert_eq!(error.hint(), "run `kai init` to create one, or pass --config DIR (or set KAI_CONFIG)");
    }

    #[test]
    fn reads_toml_files_sorted_and_skips_the_rest() {
        let repo = repository();
        let root = repo.path();
        write(&root.join("environments/test.toml"), "t");
        write(&root.join("environments/prod.toml"), "p");
        write(&root.join("environments/.#prod.toml"), "editor");
        write(&root.join("environments/README.md"), "docs");
        fs::create_dir_all(root.join("environments/old.toml")).expect("create folder");
        let sources = read_sources(root).expect("read");
        assert_eq!(sources.root, root);
        assert_eq!(sources.kai_toml.path, PathBuf::from("kai.toml"));
        let envs: Vec<_> = sources.environments.iter().map(|f| (f.path.clone(), f.text.as_str())).collect();
        assert_eq!(envs, [(PathBuf::from("environments/prod.toml"), "p"), (PathBuf::from("environments/test.toml"), "t")]);
        assert!(sources.apps.is_empty());
    }

    #[test]
    fn read_errors_name_the_path() {
        let empty = temp();
        let error = read_sources(empty.path()).expect_err("no kai.toml");
        assert_eq!(error.path, empty.path().join(KAI_TOML));
        assert!(error.to_string().contains("kai.toml"), "{error}");
    }
}
