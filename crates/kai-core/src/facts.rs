//! What a host says about one app: read by one probe command, parsed here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::version::MavenVersion;

/// The command that prints the facts (`kai_probe`, one of [`crate::remote::HELPERS`]);
/// `properties_file`: the app's, relative to its release.
pub fn probe_command(properties_file: Option<&str>) -> Command {
    Command::new(["kai_probe", properties_file.unwrap_or("")])
}

/// One host's state for one app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The version `current` points to.
    pub current: Option<String>,
    /// Releases on the host, newest first: by modification time (when they were
    /// staged), then by Maven version; no temporary folders.
    pub releases: Vec<String>,
    /// Temporary folders left by an interrupted stage (`.tmp-*`), to clean up.
    pub stale: Vec<String>,
    /// Recorded checksum per release (`sha256:…`).
    pub checksums: BTreeMap<String, String>,
    /// Recorded fingerprint of the settings each release was installed with
    /// (properties, start, stop, health), where one was recorded.
    pub settings: BTreeMap<String, String>,
    /// The record of each release that is a local build (`.kai/builds/<release>`).
    pub builds: BTreeMap<String, crate::local::LocalBuild>,
    /// The text of the properties file of the current release, when there is one.
    pub properties: Option<String>,
    pub lock: Option<LockOwner>,
    /// The record of the deploy that holds the lock, once it started switching servers.
    pub started: Option<String>,
    pub disabled: bool,
    pub free_bytes: Option<u64>,
    /// Whether the app passed its health check; `None` when not asked (kai asks only
    /// hosts that already run the version being deployed).
    pub healthy: Option<bool>,
    /// Whether the load balancer sends it traffic; `None` when it cannot be asked
    /// (no balancer, or one kai only talks to through commands).
    pub in_rotation: Option<bool>,
}

/// Who holds a deploy lock: the JSON kai writes into `.kai/lock/owner`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub user: String,
    pub machine: String,
    pub pid: u32,
    pub since: String,
    pub command: String,
}

/// The longest command line a lock owner keeps: every host of every app of a run
/// carries it (in its lock, and in the plan that shows the lock), so a run of many apps
/// keeps the first words and counts the others.
pub const OWNER_COMMAND_MAX: usize = 160;

impl LockOwner {
    /// `line`, or its first words within [`OWNER_COMMAND_MAX`] characters and how many
    /// more there were: `kai deploy prod a b c … (+97 more)`.
    pub fn short_command(line: &str) -> String {
        if line.chars().count() <= OWNER_COMMAND_MAX {
            return line.to_owned();
        }
        let words: Vec<&str> = line.split(' ').collect();
        let mut kept = String::new();
        let mut count = 0;
        for word in &words {
            if kept.chars().count() + word.chars().count() + 1 > OWNER_COMMAND_MAX - 16 {
                break;
            }
            if !kept.is_empty() {
                kept.push(' ');
            }
            kept.push_str(word);
            count += 1;
        }
        if count == 0 {
            kept = line.chars().take(OWNER_COMMAND_MAX - 16).collect();
            count = 1;
        }
        match words.len() - count {
            0 => format!("{kept} …"),
            more => format!("{kept} … (+{more} more)"),
        }
    }
}

impl std::fmt::Display for LockOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = crate::table::printable;
        write!(f, "{}@{} (pid {}) since {}: {}", p(&self.user), p(&self.machine), self.pid, p(&self.since), p(&self.command))
    }
}

/// Parses the probe's output; unknown lines are ignored (a newer kai may print more).
pub fn parse_probe(output: &str) -> HostFacts {
    let mut facts = HostFacts::default();
    let mut releases: Vec<(f64, MavenVersion)> = Vec::new();
    for line in output.lines() {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("current"), Some(target), _) => facts.current = Some(version_of_link(target).to_owned()),
            (Some("disabled"), ..) => facts.disabled = true,
            (Some("release"), Some(name), _) if name.starts_with(".tmp-") => facts.stale.push(name.to_owned()),
            (Some("release"), Some(name), mtime) if !name.starts_with('.') => {
                releases.push((mtime.and_then(|t| t.trim().parse().ok()).unwrap_or(0.0), MavenVersion::parse(name)));
            }
            (Some("checksum"), Some(version), Some(sum)) => {
                facts.checksums.insert(version.to_owned(), sum.trim().to_owned());
                if let Some(settings) = fields.next().map(str::trim).filter(|s| !s.is_empty()) {
                    facts.settings.insert(version.to_owned(), settings.to_owned());
                }
            }
            (Some("build"), Some(release), Some(record)) => {
                if let Ok(build) = serde_json::from_str(record) {
                    facts.builds.insert(release.to_owned(), build);
                }
            }
            (Some("lock"), Some(owner), _) => facts.lock = Some(parse_lock_owner(owner)),
            (Some("started"), Some(_), _) => facts.started = line.split_once('\t').map(|(_, r)| r.to_owned()),
            (Some("properties"), None, _) => facts.properties = Some(String::new()),
            (Some("property"), ..) => {
                let text = facts.properties.get_or_insert_with(String::new);
                text.push_str(line.split_once('\t').map_or("", |(_, v)| v));
                text.push('\n');
            }
            (Some("free_kb"), Some(kb), _) => facts.free_bytes = kb.trim().parse::<u64>().ok().and_then(|kb| kb.checked_mul(1024)),
            _ => {}
        }
    }
    crate::version::sort_by_maven(&mut releases, &|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    facts.releases = releases.into_iter().map(|(_, v)| v.as_str().to_owned()).collect();
    facts
}

/// `releases/1.2.0` (or an absolute path to it) → `1.2.0`.
fn version_of_link(target: &str) -> &str {
    let target = target.trim_end_matches('/');
    target.rsplit('/').next().unwrap_or(target)
}

/// A lock owner file; a hand-made or damaged one still shows what it holds.
pub fn parse_lock_owner(text: &str) -> LockOwner {
    serde_json::from_str(text).unwrap_or_else(|_| LockOwner {
        user: "unknown".into(),
        machine: "unknown".into(),
        pid: 0,
        since: "unknown".into(),
        command: text.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_long_command_line_keeps_its_first_words_and_counts_the_others() {
        assert_eq!(LockOwner::short_command("kai deploy prod hello"), "kai deploy prod hello");
        let apps: Vec<String> = (0..100).map(|i| format!("app{i:03}-1.0.{i}")).collect();
        let line = format!("kai deploy prod {}", apps.join(" "));
        let short = LockOwner::short_command(&line);
        assert!(short.chars().count() <= OWNER_COMMAND_MAX, "{short}");
        assert!(short.starts_with("kai deploy prod app000-1.0.0 app001-1.0.1"), "{short}");
        let kept = short.split(" … ").next().unwrap_or_default().split(' ').count();
        assert!(short.ends_with(&format!("(+{} more)", 103 - kept)), "{short}");
        assert!(LockOwner::short_command(&"x".repeat(400)).chars().count() <= OWNER_COMMAND_MAX);
    }
    use super::*;

    #[test]
    fn parses_a_probe_of_a_deployed_host() {
        let out = "current\treleases/1.1.0\nrelease\t1.0.0\t1700000000.5\nrelease\t.tmp-1.2.0-x1\t1700000009.0\nrelease\t1.1.0\t1700000001.0\n\
                   checksum\t1.1.0\tsha256:ab\nlock\t{\"user\":\"ann\",\"machine\":\"ws1\",\"pid\":7,\"since\":\"2026-01-01T00:00:00Z\",\"command\":\"kai deploy\"}\n\
                   free_kb\t1000\n";
        let facts = parse_probe(out);
        assert_eq!(facts.current.as_deref(), Some("1.1.0"));
        assert_eq!(facts.releases, ["1.1.0", "1.0.0"]);
        assert_eq!(facts.stale, [".tmp-1.2.0-x1"]);
        assert_eq!(facts.checksums["1.1.0"], "sha256:ab");
        assert_eq!(facts.lock.as_ref().unwrap().user, "ann");
        assert_eq!(facts.free_bytes, Some(1_024_000));
        assert!(!facts.disabled);
    }

    #[test]
    fn releases_staged_at_the_same_time_are_ordered_by_version() {
        let facts = parse_probe("release\t1.9.0\t5\nrelease\t1.10.0\t5\nrelease\t2.0.0\t4\nrelease\t1.2.0\t5\n");
        assert_eq!(facts.releases, ["1.10.0", "1.9.0", "1.2.0", "2.0.0"]);
    }

    #[test]
    fn an_empty_host_has_no_facts() {
        assert_eq!(parse_probe("free_kb\t\n"), HostFacts::default());
        assert_eq!(parse_probe("free_kb\t20000054000000400000000\n").free_bytes, None, "too large to be true");
        assert_eq!(parse_probe("free_kb\t18014398509481984\n").free_bytes, None, "would overflow in bytes");
    }

    #[test]
    fn a_damaged_lock_file_is_still_shown() {
        let facts = parse_probe("lock\tsomeone by hand\n");
        assert_eq!(facts.lock.unwrap().command, "someone by hand");
    }
}
