//! A local cache of the repository's version lists, for shell completion: one small
//! file per (repository, group, artifact) under `<cache dir>/versions/`, holding the
//! versions newest first in Maven order. kai writes it whenever it reads
//! `maven-metadata.xml` anyway; completion reads it, and refreshes it when older than
//! [`TTL`]. The file's modification time is the time of the last refresh attempt.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kai_core::version::{sort_versions, MavenVersion};
use sha2::{Digest, Sha256};

/// How long a version list counts as fresh before completion asks the repository again.
pub const TTL: Duration = Duration::from_secs(10 * 60);

/// Which version list: the repository as [`crate::repository::Repository::describe`]
/// names it (URL or absolute folder), and the Maven coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key<'a> {
    pub repository: &'a str,
    pub group: &'a str,
    pub artifact: &'a str,
}

/// A version list read from the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    /// Newest first, in Maven order.
    pub versions: Vec<String>,
    /// When it was last refreshed (or a refresh was last attempted).
    pub modified: SystemTime,
}

impl Cached {
    /// Whether it is younger than `ttl` at `now` (a clock that went back counts as fresh).
    pub fn is_fresh(&self, now: SystemTime, ttl: Duration) -> bool {
        now.duration_since(self.modified).map_or(true, |age| age < ttl)
    }
}

/// The folder of the version lists, in kai's cache folder.
pub fn dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("versions")
}

/// The file of one version list: `<group>:<artifact>@<hash of the repository>`, so
/// several repositories with the same coordinates do not meet (Maven coordinates
/// never contain `:` or `@`).
pub fn path(cache_dir: &Path, key: Key<'_>) -> PathBuf {
    let digest = Sha256::digest(key.repository.as_bytes());
    let short = digest.iter().take(8).fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    dir(cache_dir).join(format!("{}:{}@{short}", key.group, key.artifact))
}

/// Records the versions the repository listed (in any order), replacing the file
/// atomically so a completion running at the same time reads the old or the new list.
pub fn store(cache_dir: &Path, key: Key<'_>, listed: &[String]) -> io::Result<()> {
    let mut versions: Vec<MavenVersion> = listed.iter().map(|v| MavenVersion::parse(v)).collect();
    sort_versions(&mut versions);
    let mut text = format!("# kai: versions of {}:{} in {}, newest first\n", key.group, key.artifact, key.repository);
    for version in versions.iter().rev() {
        text.push_str(version.as_str());
        text.push('\n');
    }
    let target = path(cache_dir, key);
    let folder = dir(cache_dir);
    fs::create_dir_all(&folder)?;
    let temporary =
        folder.join(format!(".{}.{}.tmp", target.file_name().map_or_else(Default::default, |n| n.to_string_lossy()), std::process::id()));
    let written =
        File::create(&temporary).and_then(|mut file| file.write_all(text.as_bytes())).and_then(|()| fs::rename(&temporary, &target));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// The cached list, or `None` when there is none (or it cannot be read).
pub fn load(cache_dir: &Path, key: Key<'_>) -> Option<Cached> {
    let file = path(cache_dir, key);
    let modified = fs::metadata(&file).and_then(|m| m.modified()).ok()?;
    let text = fs::read_to_string(&file).ok()?;
    let versions = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    Some(Cached { versions, modified })
}

/// Marks the cached list as just checked, after a refresh that could not reach the
/// repository: the next attempt waits for the TTL again instead of on every TAB.
pub fn touch(cache_dir: &Path, key: Key<'_>, now: SystemTime) -> io::Result<()> {
    File::options().append(true).open(path(cache_dir, key))?.set_modified(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key<'static> = Key { repository: "https://repo.example.org/maven", group: "org.example", artifact: "jmsadmin" };

    #[test]
    fn stores_newest_first_in_maven_order() {
        let cache = tempfile::tempdir().expect("temporary folder");
        let listed: Vec<String> = ["10.9.0", "10.60.0", "10.10.0-SNAPSHOT", "9.1", "10.10.0"].map(String::from).into();
        store(cache.path(), KEY, &listed).expect("stored");
        let cached = load(cache.path(), KEY).expect("cached");
        assert_eq!(cached.versions, ["10.60.0", "10.10.0", "10.10.0-SNAPSHOT", "10.9.0", "9.1"]);
        assert!(cached.is_fresh(SystemTime::now(), TTL));
        assert!(!cached.is_fresh(cached.modified + TTL, TTL));
    }

    #[test]
    fn repositories_and_coordinates_get_their_own_files() {
        let cache = Path::new("/cache");
        let other_repo = Key { repository: "file:///srv/maven", ..KEY };
        let other_artifact = Key { artifact: "jmsadmin-web", ..KEY };
        assert_ne!(path(cache, KEY), path(cache, other_repo));
        assert_ne!(path(cache, KEY), path(cache, other_artifact));
        let file = path(cache, KEY).display().to_string();
        assert!(file.starts_with("/cache/versions/org.example:jmsadmin@"), "{file}");
    }

    #[test]
    fn nothing_cached_is_none_and_touch_fails_quietly() {
        let cache = tempfile::tempdir().expect("temporary folder");
        assert_eq!(load(cache.path(), KEY), None);
        assert!(touch(cache.path(), KEY, SystemTime::now()).is_err());
    }

    #[test]
    fn touch_makes_a_stale_list_fresh() {
        let cache = tempfile::tempdir().expect("temporary folder");
        store(cache.path(), KEY, &["1.0".to_owned()]).expect("stored");
        let later = SystemTime::now() + TTL * 2;
        touch(cache.path(), KEY, later).expect("touched");
        let cached = load(cache.path(), KEY).expect("cached");
        assert!(cached.is_fresh(later, TTL));
        assert_eq!(cached.versions, ["1.0"]);
    }
}
