//! The configuration read leniently, for shell completion: a few keys of a file that
//! may be half written. Nothing is validated and nothing is reported; a file that does
//! not parse gives `None`, unknown keys are ignored. What it reads means what the
//! strict loader ([`super::load`]) says it means (the repository's location, above all).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::RepoLocation;

/// Where an app's versions are listed, from `kai.toml` and `apps/<app>.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionSource {
    pub location: RepoLocation,
    pub group: String,
    pub artifact: String,
    /// The variables holding the repository's login, as `kai.toml` names them.
    pub username_env: Option<String>,
    pub password_env: Option<String>,
}

/// The version source of `app` (named by its file), or `None` when a file does not
/// parse or says too little.
pub fn version_source(kai_toml: &str, app_toml: &str, app: &str, root: &Path) -> Option<VersionSource> {
    let kai = toml::from_str::<KaiFile>(kai_toml).ok()?.repository;
    let own = toml::from_str::<AppFile>(app_toml).ok()?;
    let location = super::repository_location(&kai.url, root).ok()?;
    Some(VersionSource {
        location,
        group: own.group.or(kai.group)?,
        artifact: own.artifact.unwrap_or_else(|| app.to_owned()),
        username_env: kai.username_env,
        password_env: kai.password_env,
    })
}

/// `names` (sorted) in the order kai lists environments: those `environments = [...]`
/// of kai.toml names first, in that order, then the rest as they were. A kai.toml that
/// does not parse, or has no such list, leaves `names` as they are.
pub fn in_pipeline_order(kai_toml: &str, mut names: Vec<String>) -> Vec<String> {
    let listed = toml::from_str::<OrderKeys>(kai_toml).ok().and_then(|k| k.environments).unwrap_or_default();
    let rank = |name: &String| listed.iter().position(|l| l == name).unwrap_or(listed.len());
    names.sort_by_key(rank);
    names
}

/// The environments an app file places it in (its `[env.<name>]` tables).
pub fn app_environments(app_toml: &str) -> Option<Vec<String>> {
    Some(toml::from_str::<AppFile>(app_toml).ok()?.env.into_keys().collect())
}

/// The hosts an environment file names (its `[hosts]` table).
pub fn environment_hosts(environment_toml: &str) -> Option<Vec<String>> {
    Some(toml::from_str::<EnvironmentFile>(environment_toml).ok()?.hosts.into_keys().collect())
}

#[derive(Deserialize)]
struct KaiFile {
    repository: RepositoryKeys,
}

#[derive(Deserialize)]
struct RepositoryKeys {
    url: String,
    group: Option<String>,
    username_env: Option<String>,
    password_env: Option<String>,
}

#[derive(Deserialize)]
struct OrderKeys {
    environments: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AppFile {
    group: Option<String>,
    artifact: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct EnvironmentFile {
    #[serde(default)]
    hosts: BTreeMap<String, IgnoredAny>,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn a_version_source_takes_the_app_group_over_the_default_and_the_file_name_as_artifact() {
        let kai = "[repository]\nurl = \"repo/\"\ngroup = \"org.example\"\nusername_env = \"U\"\npassword_env = \"P\"\n";
        let root = Path::new("/cfg");
        let source = version_source(kai, "start = \"x\"\n[env.test]\nunknown = 1\n", "hello", root).unwrap();
        assert_eq!(source.location, RepoLocation::Folder(PathBuf::from("/cfg/repo")));
        assert_eq!((source.group.as_str(), source.artifact.as_str()), ("org.example", "hello"));
        assert_eq!((source.username_env.as_deref(), source.password_env.as_deref()), (Some("U"), Some("P")));
        let own = version_source(kai, "group = \"com.other\"\nartifact = \"hello-web\"\n", "hello", root).unwrap();
        assert_eq!((own.group.as_str(), own.artifact.as_str()), ("com.other", "hello-web"));
        let http = version_source("[repository]\nurl = \"https://repo.example/maven/\"\n", "group = \"g\"\n", "a", root).unwrap();
        assert_eq!(http.location, RepoLocation::Http("https://repo.example/maven".into()));
    }

    #[test]
    fn environments_come_in_pipeline_order_then_the_rest_alphabetically() {
        let names = || ["demo", "prod", "systest", "test"].map(String::from).to_vec();
        let kai = "environments = [\"test\", \"systest\", \"prod\", \"gone\"]\n[repository]\nurl = \"r\"\n";
        assert_eq!(in_pipeline_order(kai, names()), ["test", "systest", "prod", "demo"]);
        assert_eq!(in_pipeline_order("[repository]\nurl = \"r\"\n", names()), names(), "no list");
        assert_eq!(in_pipeline_order("environments = [", names()), names(), "half written");
    }

    #[test]
    fn what_cannot_be_read_gives_nothing() {
        let root = Path::new("/cfg");
        assert_eq!(version_source("[repository\n", "", "a", root), None, "not TOML");
        assert_eq!(version_source("[repository]\nurl = \"ftp://x\"\ngroup = \"g\"\n", "", "a", root), None, "not a location");
        assert_eq!(version_source("[repository]\nurl = \"repo\"\n", "", "a", root), None, "no group anywhere");
        assert_eq!(app_environments("[env.test]\n[env.prod]\nservers = [1]\n"), Some(vec!["prod".to_owned(), "test".to_owned()]));
        assert_eq!(environment_hosts("[hosts]\nweb1 = \"a\"\nweb2 = { address = \"b\" }\n"), Some(vec!["web1".into(), "web2".into()]));
        assert_eq!(environment_hosts("hosts = 3\n"), None);
    }
}
