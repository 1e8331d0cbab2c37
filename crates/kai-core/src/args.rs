//! Application arguments: `<app>-<version>`, `<app>@<version>` or a bare `<app>`.
//!
//! App names may contain `-` (`ssod-grensesnitt`), so `<app>-<version>` is split at the
//! longest configured app name followed by `-` and a version starting with a digit.

use std::fmt;

use crate::ident;
use crate::suggest::{did_you_mean, nearest};
use crate::version::{newest_release, sort_versions, MavenVersion};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppArg {
    pub app: String,
    pub version: VersionWanted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionWanted {
    /// The highest release in Maven order.
    Newest,
    Exact(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    UnknownApp { arg: String, app: String, suggestions: Vec<String> },
    BadVersion { arg: String, version: String, problem: String },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::UnknownApp { arg, app, suggestions } => {
                write!(f, "unknown application {app:?} (from argument {arg:?})")?;
                let names: Vec<&str> = suggestions.iter().map(String::as_str).collect();
                if let Some(hint) = did_you_mean(&names) {
                    write!(f, "; {hint}")?;
                }
                Ok(())
            }
            ArgError::BadVersion { arg, version, problem } => {
                write!(f, "invalid version {version:?} in argument {arg:?}: {problem}")
            }
        }
    }
}

impl std::error::Error for ArgError {}

/// Reads one argument against the configured app names.
pub fn parse_app_arg<'a, I>(arg: &str, apps: I) -> Result<AppArg, ArgError>
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if let Some((app, version)) = arg.split_once('@') {
        return known(arg, app, apps).and_then(|app| exact(arg, app, version));
    }
    if apps.clone().into_iter().any(|a| a == arg) {
        return Ok(AppArg { app: arg.to_owned(), version: VersionWanted::Newest });
    }
    let longest = apps
        .clone()
        .into_iter()
        .filter(|app| {
            arg.strip_prefix(app).and_then(|rest| rest.strip_prefix('-')).is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .max_by_key(|app| app.len());
    match longest {
        Some(app) => exact(arg, app, &arg[app.len() + 1..]),
        None => {
            let guess = guess_app_part(arg);
            Err(unknown(arg, guess, apps))
        }
    }
}

fn known<'a, I>(arg: &str, app: &str, apps: I) -> Result<String, ArgError>
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if apps.clone().into_iter().any(|a| a == app) {
        Ok(app.to_owned())
    } else {
        Err(unknown(arg, app, apps))
    }
}

fn exact(arg: &str, app: impl Into<String>, version: &str) -> Result<AppArg, ArgError> {
    match ident::problem(version) {
        None => Ok(AppArg { app: app.into(), version: VersionWanted::Exact(version.to_owned()) }),
        Some(problem) => Err(ArgError::BadVersion { arg: arg.to_owned(), version: version.to_owned(), problem }),
    }
}

fn unknown<'a, I>(arg: &str, app: &str, apps: I) -> ArgError
where
    I: IntoIterator<Item = &'a str>,
{
    ArgError::UnknownApp {
        arg: arg.to_owned(),
        app: app.to_owned(),
        suggestions: nearest(app, apps).into_iter().map(str::to_owned).collect(),
    }
}

/// The part of an unknown argument that names the app: before `-<digit>` if there is one.
fn guess_app_part(arg: &str) -> &str {
    arg.char_indices().find(|&(i, c)| c == '-' && arg[i + 1..].starts_with(|d: char| d.is_ascii_digit())).map_or(arg, |(i, _)| &arg[..i])
}

/// Why no version could be chosen from what a repository lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unchosen {
    /// The version asked for is not listed: the nearest listed name, and the newest release.
    NotListed { near: Vec<String>, newest: Option<String> },
    /// Nothing listed is a release (only snapshots or pre-releases, or nothing).
    NoRelease,
}

/// The version to deploy from those `listed`: the one asked for, if listed, else the
/// highest release in Maven order.
pub fn choose(listed: &[String], wanted: &VersionWanted) -> Result<String, Unchosen> {
    let mut versions: Vec<MavenVersion> = listed.iter().map(|v| MavenVersion::parse(v)).collect();
    sort_versions(&mut versions);
    let newest = newest_release(&versions).map(|v| v.as_str().to_owned());
    match wanted {
        VersionWanted::Exact(v) if listed.iter().any(|l| l == v) => Ok(v.clone()),
        VersionWanted::Exact(v) => Err(Unchosen::NotListed {
            near: nearest(v, listed.iter().map(String::as_str)).into_iter().map(str::to_owned).collect(),
            newest,
        }),
        VersionWanted::Newest => newest.ok_or(Unchosen::NoRelease),
    }
}

/// A command line whose environment argument `app` names an application: the same words
/// with `app` and the first later word that names an environment swapped, and that
/// environment; `None` when no later word names one.
pub fn swapped<'w>(words: &'w [String], app: &str, is_env: impl Fn(&str) -> bool) -> Option<(Vec<String>, &'w str)> {
    let at = words.iter().position(|w| w == app)?;
    let env = words.iter().enumerate().skip(at + 1).find(|(_, w)| is_env(w)).map(|(i, _)| i)?;
    let mut fixed = words.to_vec();
    fixed.swap(at, env);
    Some((fixed, &words[env]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_chosen_is_the_one_asked_for_or_the_newest_release() {
        let listed: Vec<String> = ["1.9.0", "1.10.0", "2.0.0-SNAPSHOT", "2.0.0-rc1"].map(String::from).into();
        assert_eq!(choose(&listed, &VersionWanted::Newest), Ok("1.10.0".into()), "Maven order, releases only");
        assert_eq!(choose(&listed, &VersionWanted::Exact("2.0.0-rc1".into())), Ok("2.0.0-rc1".into()));
        assert_eq!(
            choose(&listed, &VersionWanted::Exact("1.10".into())),
            Err(Unchosen::NotListed { near: vec!["1.10.0".into(), "1.9.0".into()], newest: Some("1.10.0".into()) })
        );
        assert_eq!(choose(&["2.0.0-SNAPSHOT".into()], &VersionWanted::Newest), Err(Unchosen::NoRelease));
        assert_eq!(choose(&[], &VersionWanted::Newest), Err(Unchosen::NoRelease));
    }

    const APPS: [&str; 4] = ["jmsadmin", "ssod-grensesnitt", "ssod", "telenormobil"];

    fn parse(arg: &str) -> Result<AppArg, ArgError> {
        parse_app_arg(arg, APPS.iter().copied())
    }

    fn exact_of(app: &str, v: &str) -> AppArg {
        AppArg { app: app.into(), version: VersionWanted::Exact(v.into()) }
    }

    #[test]
    fn splits_at_the_longest_app_name() {
        assert_eq!(parse("jmsadmin-10.60.0").unwrap(), exact_of("jmsadmin", "10.60.0"));
        assert_eq!(parse("ssod-grensesnitt-2.1.0").unwrap(), exact_of("ssod-grensesnitt", "2.1.0"));
        assert_eq!(parse("ssod-2.1.0").unwrap(), exact_of("ssod", "2.1.0"));
        assert_eq!(parse("ssod-grensesnitt").unwrap(), AppArg { app: "ssod-grensesnitt".into(), version: VersionWanted::Newest });
        assert_eq!(parse("telenormobil@3.3.0-SNAPSHOT").unwrap(), exact_of("telenormobil", "3.3.0-SNAPSHOT"));
    }

    #[test]
    fn unknown_apps_name_the_nearest() {
        let err = parse("jmsadmn-10.60.0").unwrap_err();
        assert_eq!(err.to_string(), r#"unknown application "jmsadmn" (from argument "jmsadmn-10.60.0"); did you mean jmsadmin?"#);
        assert!(matches!(parse("nope@1.0").unwrap_err(), ArgError::UnknownApp { .. }));
    }

    #[test]
    fn hostile_versions_are_refused() {
        for arg in ["jmsadmin-1.0;touch x", "jmsadmin@$(id)", "jmsadmin@", "jmsadmin-1 2"] {
            assert!(matches!(parse(arg), Err(ArgError::BadVersion { .. })), "{arg}");
        }
    }

    #[test]
    fn swapped_arguments_are_put_in_order() {
        let words: Vec<String> = ["deploy", "--yes", "hello-1.0", "demo", "other"].map(String::from).to_vec();
        let (fixed, env) = swapped(&words, "hello-1.0", |w| w == "demo").unwrap();
        assert_eq!((fixed.join(" ").as_str(), env), ("deploy --yes demo hello-1.0 other", "demo"));
        assert_eq!(swapped(&words, "hello-1.0", |w| w == "deploy"), None, "only a later word");
        assert_eq!(swapped(&words, "absent", |_| true), None);
    }
}
