//! Releases built on someone's machine (`kai deploy <env> ./target/app-1.2.0.zip`):
//! which app and version a file is, the name its release gets on the hosts, and the
//! record that says who pushed it from where. A local build's release is named
//! `<version>+local.<first 8 hex digits of its sha256>`, so it is never mistaken for
//! the repository's release of the same version, and two builds of one version are two
//! releases.

use serde::{Deserialize, Serialize};

use crate::config::App;

/// Where a host keeps the record of each local build it has (one file per release).
pub const BUILDS_DIR: &str = ".kai/builds";

/// A release built elsewhere than the repository, as recorded on the hosts and in
/// their history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalBuild {
    /// `sha256:<hex>` of the file.
    pub checksum: String,
    /// Who deployed it, from which machine, and the file's path there.
    pub user: String,
    pub machine: String,
    pub file: String,
}

impl LocalBuild {
    /// One line for people: `local build sha256:… of /path, by user on machine`.
    pub fn describe(&self) -> String {
        let p = crate::table::printable;
        format!("local build {} of {}, by {} on {}", self.checksum, p(&self.file), p(&self.user), p(&self.machine))
    }

    /// The record's file on a host.
    pub fn record_path(release: &str) -> String {
        format!("{BUILDS_DIR}/{release}")
    }
}

/// The release name of a local build of `version` whose sha256 is `hex`.
pub fn label(version: &str, hex: &str) -> String {
    format!("{version}+local.{}", &hex[..hex.len().min(8)])
}

/// Whether a release name is a local build's.
pub fn is_local(release: &str) -> bool {
    release.contains("+local.")
}

/// Whether a command-line argument names a file rather than an app: it has a `/`, or
/// it ends like an artifact (`.zip`, `.jar`, `.tar.gz`) and `exists` says it is there.
pub fn is_path(arg: &str, exists: impl FnOnce(&str) -> bool) -> bool {
    arg.contains('/') || ([".zip", ".jar", ".tar.gz"].iter().any(|e| arg.ends_with(e)) && exists(arg))
}

/// The version in `file_name` when it is a build of `app`:
/// `<artifact>-<version>[-<classifier>].<packaging>`.
pub fn version_in(app: &App, file_name: &str) -> Option<String> {
    let rest = file_name.strip_prefix(&app.artifact)?.strip_prefix('-')?;
    let rest = rest.strip_suffix(app.packaging.extension())?.strip_suffix('.')?;
    let version = match app.classifier.as_deref().filter(|c| !c.is_empty()) {
        Some(classifier) => rest.strip_suffix(classifier)?.strip_suffix('-')?,
        None => rest,
    };
    (!version.is_empty() && crate::ident::is_valid(version)).then(|| version.to_owned())
}

/// The apps `file_name` is a build of, each with the version its name says. With a
/// classifier the longest artifact name wins (`web-admin-1.0.zip` is `web-admin`'s,
/// not `web`'s at version `admin-1.0`).
pub fn matching<'a>(apps: impl IntoIterator<Item = &'a App>, file_name: &str) -> Vec<(&'a App, String)> {
    let mut found: Vec<(&App, String)> = apps.into_iter().filter_map(|app| Some((app, version_in(app, file_name)?))).collect();
    let longest = found.iter().map(|(a, _)| a.artifact.len()).max().unwrap_or(0);
    found.retain(|(a, _)| a.artifact.len() == longest);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maven::Packaging;

    /// The app `name` of a configuration loaded from text.
    fn app(name: &str, artifact: &str, classifier: Option<&str>, packaging: Packaging) -> App {
        use crate::config::{load, ConfigSources, SourceFile};
        let file = |path: &str, text: String| SourceFile { path: path.into(), text };
        let classifier = classifier.map(|c| format!("classifier = \"{c}\"\n")).unwrap_or_default();
        let sources = ConfigSources {
            root: "/cfg".into(),
            kai_toml: file("kai.toml", "[repository]\nurl = \"repo\"\ngroup = \"org.example\"\n".into()),
            environments: vec![file("environments/dev.toml", "transport = \"local\"\n[hosts]\nweb1 = \"localhost\"\n".into())],
            apps: vec![file(
                &format!("apps/{name}.toml"),
                format!("artifact = \"{artifact}\"\n{classifier}packaging = \"{packaging}\"\nuser = \"u\"\nstart = \"bin/start\"\nstop = \"bin/stop\"\n[health]\nhttp = \"http://{{address}}:8080/\"\n[env.dev]\nservers = [\"web1\"]\n"),
            )],
        };
        let mut config = load(&sources).unwrap_or_else(|e| panic!("{e}"));
        config.apps.remove(name).expect("the app")
    }

    #[test]
    fn the_version_is_read_from_the_file_name() {
        let plain = app("hello", "hello", None, Packaging::Zip);
        assert_eq!(version_in(&plain, "hello-1.2.0.zip").as_deref(), Some("1.2.0"));
        assert_eq!(version_in(&plain, "hello-1.2.0-SNAPSHOT.zip").as_deref(), Some("1.2.0-SNAPSHOT"));
        assert_eq!(version_in(&plain, "hello-1.2.0.jar"), None, "another packaging");
        assert_eq!(version_in(&plain, "hello.zip"), None);
        assert_eq!(version_in(&plain, "hello-.zip"), None);
        assert_eq!(version_in(&plain, "hello-1 2.zip"), None, "not a version");
        let classified = app("jms", "jmsadmin-assembly", Some("standalone"), Packaging::TarGz);
        assert_eq!(version_in(&classified, "jmsadmin-assembly-10.60.0-standalone.tar.gz").as_deref(), Some("10.60.0"));
        assert_eq!(version_in(&classified, "jmsadmin-assembly-10.60.0.tar.gz"), None, "the classifier is missing");
    }

    #[test]
    fn the_longest_artifact_name_wins() {
        let apps = [app("web", "web", None, Packaging::Zip), app("admin", "web-admin", None, Packaging::Zip)];
        let found = matching(&apps, "web-admin-1.0.zip");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0.name.as_str(), found[0].1.as_str()), ("admin", "1.0"));
        let found = matching(&apps, "web-2.0.zip");
        assert_eq!((found[0].0.name.as_str(), found[0].1.as_str()), ("web", "2.0"));
        assert!(matching(&apps, "other-1.0.zip").is_empty());
    }

    #[test]
    fn a_local_build_is_labelled_by_its_checksum() {
        assert_eq!(label("1.2.0", "3f2a9c1d0e55aa"), "1.2.0+local.3f2a9c1d");
        assert!(is_local("1.2.0+local.3f2a9c1d"));
        assert!(!is_local("1.2.0"));
        assert!(crate::ident::is_valid(&label("1.2.0-SNAPSHOT", "abcdef0123")));
    }

    #[test]
    fn paths_are_told_from_app_names() {
        assert!(is_path("./hello-1.0.zip", |_| false));
        assert!(is_path("target/hello-1.0.jar", |_| false));
        assert!(is_path("hello-1.0.zip", |_| true));
        assert!(!is_path("hello-1.0.zip", |_| false), "no such file: an app name with a version");
        assert!(!is_path("hello-1.0", |_| true));
    }
}
