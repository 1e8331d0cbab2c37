//! What a host says about one app: read by one probe command, parsed here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::shell::command::Command;
use crate::version::MavenVersion;

/// The command that prints the facts (`kai_probe`, one of [`crate::shell::helpers::HELPERS`]);
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
    /// How each release runs (start, stop, health), where that was recorded.
    pub run_settings: BTreeMap<String, crate::run_settings::RunSettings>,
    /// The record of each release that is a local build (`.kai/builds/<release>`).
    pub builds: BTreeMap<String, crate::local_build::LocalBuild>,
    /// The text of the properties file of the current release, when there is one.
    pub properties: Option<String>,
    pub lock: Option<LockOwner>,
    /// The record of the deploy that holds the lock, once it started switching servers.
    pub started: Option<String>,
    /// When the host stopped a step of the deploy holding the lock because that kai
    /// went away (killed, or its connection lost) while the step ran.
    pub abandoned: Option<String>,
    /// Why the deploy holding the lock kept it on purpose (a server it could not put back).
    pub lock_kept: Option<String>,
    /// Files of the app home too large to read (`.kai/lock/owner` of 20 MB, say): named,
    /// not read.
    pub oversized: Vec<String>,
    /// The processes running from a release of the app home (their working folder or
    /// executable inside it).
    pub processes: Vec<ReleaseProcess>,
    pub disabled: bool,
    pub free_bytes: Option<u64>,
    /// Whether the app passed its health check; `None` when not asked (kai asks only
    /// hosts that already run the version being deployed).
    pub healthy: Option<bool>,
    /// Whether the load balancer sends it traffic; `None` when it cannot be asked
    /// (no balancer, or one kai only talks to through commands).
    pub in_rotation: Option<bool>,
}

/// A process running from one of the app's releases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseProcess {
    pub pid: u32,
    pub release: String,
    /// The release folder it runs from was removed (or replaced) under it.
    pub deleted: bool,
}

impl ReleaseProcess {
    /// A pid and a release (`1.1.0`, or `1.1.0 (deleted)`), as `kai_procs` prints them.
    fn parse(pid: &str, release: &str) -> Option<ReleaseProcess> {
        let pid = pid.trim().parse().ok()?;
        let (release, deleted) = match release.strip_suffix(" (deleted)") {
            Some(release) => (release, true),
            None => (release, false),
        };
        crate::ident::is_valid(release).then(|| ReleaseProcess { pid, release: release.to_owned(), deleted })
    }
}

/// Processes that run from a release other than `current` (or from a release folder
/// removed under them): left behind, and in the way of the release that should run.
pub fn orphans(facts: &HostFacts) -> impl Iterator<Item = &ReleaseProcess> {
    facts.processes.iter().filter(|p| p.deleted || Some(&p.release) != facts.current.as_ref())
}

/// What `kai_who` said after a script failed: each process running from a release,
/// which release, whether it is the current one, and the addresses it listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occupant {
    pub pid: u32,
    /// `None`: the current release.
    pub release: Option<String>,
    pub listening: Vec<String>,
}

/// The `kai: pid N runs from …` lines of a failed script's output.
pub fn parse_who(output: &str) -> Vec<Occupant> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("kai: pid ")?;
            let (pid, rest) = rest.split_once(" runs from ")?;
            let (what, listening) = match rest.split_once(", listening on ") {
                Some((what, on)) => (what, on.split(' ').map(str::to_owned).collect()),
                None => (rest, Vec::new()),
            };
            let release = match what {
                "the current release" => None,
                other => Some(other.strip_prefix("release ")?.strip_suffix(", not the current one")?.to_owned()),
            };
            Some(Occupant { pid: pid.parse().ok()?, release, listening })
        })
        .collect()
}

/// Why a start failed, when its output says an address was in use and a process of
/// another release (or the current one, left running) listens: "the port 8080 is
/// taken by pid 7591 (release 1.1.0)".
pub fn port_taken(output: &str) -> Option<String> {
    let lower = output.to_lowercase();
    if !(lower.contains("in use") || lower.contains("eaddrinuse")) {
        return None;
    }
    let occupant = parse_who(output).into_iter().find(|o| !o.listening.is_empty())?;
    let ports: Vec<&str> = occupant.listening.iter().filter_map(|a| a.rsplit_once(':').map(|(_, p)| p)).collect();
    let which = occupant.release.as_deref().map_or_else(|| "the current release".to_owned(), |r| format!("release {r}"));
    let port = if ports.len() == 1 { format!("the port {}", ports[0]) } else { format!("the ports {}", ports.join(", ")) };
    Some(format!("{port} is taken by pid {} ({which}): stop it, then deploy again", occupant.pid))
}

/// Who holds a deploy lock: the JSON kai writes into `.kai/lock/owner`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub user: String,
    pub machine: String,
    pub pid: u32,
    pub since: String,
    pub command: String,
    /// Set when a person holds the lock by hand (`kai lock <env> <app> --hold`, a freeze
    /// during an incident): their message. No process holds such a lock, so it is never
    /// stale; it stays until `kai unlock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

/// The longest message of a lock held by hand, in characters.
pub const HOLD_MESSAGE_MAX: usize = 200;

/// The longest command line a lock owner keeps: every host of every app of a run
/// carries it (in its lock, and in the plan that shows the lock), so a run of many apps
/// keeps the first words and counts the others.
pub const OWNER_COMMAND_MAX: usize = 160;

impl LockOwner {
    /// Whether the lock is stale, given whether its process still runs (`alive`, known
    /// only on the machine it runs on): a lock held by hand never is.
    pub fn is_stale(&self, alive: Option<bool>) -> bool {
        self.hold.is_none() && alive == Some(false)
    }

    /// What is wrong with `text` as the message of a lock held by hand: it is shown to
    /// everyone who meets the lock, so one line of printable text, not empty, at most
    /// [`HOLD_MESSAGE_MAX`] characters.
    pub fn hold_message_problem(text: &str) -> Option<String> {
        let length = text.chars().count();
        if text.trim().is_empty() {
            Some("it is empty: say why the app is held (an incident, a freeze), for whoever meets the lock".into())
        } else if let Some(c) = text.chars().find(|c| c.is_control()) {
            let what = if c == '\n' || c == '\r' { "a line break" } else { "a control character" };
            Some(format!("it holds {what} ({}): the message is one line of text", c.escape_debug()))
        } else if length > HOLD_MESSAGE_MAX {
            Some(format!("it is {length} characters long, at most {HOLD_MESSAGE_MAX}: say more in the incident's own channel"))
        } else {
            None
        }
    }

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
        match &self.hold {
            Some(message) => write!(f, "{}@{} (held by hand) since {}: {}", p(&self.user), p(&self.machine), p(&self.since), p(message)),
            None => write!(f, "{}@{} (pid {}) since {}: {}", p(&self.user), p(&self.machine), self.pid, p(&self.since), p(&self.command)),
        }
    }
}

/// Parses the probe's output; unknown lines are ignored (a newer kai may print more).
pub fn parse_probe(output: &str) -> HostFacts {
    let mut facts = HostFacts::default();
    let mut releases: Vec<(f64, MavenVersion)> = Vec::new();
    for line in output.lines() {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("current"), Some(target), _) => facts.current = Some(release_name(version_of_link(target))),
            (Some("disabled"), ..) => facts.disabled = true,
            (Some("release"), Some(name), _) if name.starts_with(".tmp-") => facts.stale.push(name.to_owned()),
            (Some("release"), Some(name), mtime) if !name.starts_with('.') && crate::ident::is_valid(name) => {
                releases.push((mtime.and_then(|t| t.trim().parse().ok()).unwrap_or(0.0), MavenVersion::parse(name)));
            }
            (Some("checksum"), Some(version), Some(sum)) if crate::ident::is_valid(version) => {
                facts.checksums.insert(version.to_owned(), checksum_text(sum.trim()));
                if let Some(settings) = fields.next().map(str::trim).filter(|s| !s.is_empty()) {
                    facts.settings.insert(version.to_owned(), settings.to_owned());
                }
                if let Some(runs) = fields.next().and_then(crate::run_settings::RunSettings::parse) {
                    facts.run_settings.insert(version.to_owned(), runs);
                }
            }
            (Some("build"), Some(release), Some(record)) if crate::ident::is_valid(release) => {
                if let Ok(build) = serde_json::from_str::<crate::local_build::LocalBuild>(record) {
                    let build = crate::local_build::LocalBuild { checksum: checksum_text(&build.checksum), ..build };
                    facts.builds.insert(release.to_owned(), build);
                }
            }
            (Some("lock"), Some(owner), _) => facts.lock = Some(parse_lock_owner(owner)),
            (Some("started"), Some(_), _) => facts.started = line.split_once('\t').map(|(_, r)| cut(r, RECORD_MAX)),
            (Some("abandoned"), Some(when), _) => facts.abandoned = Some(crate::table::printable(&cut(when.trim(), 64))),
            (Some("kept"), Some(why), _) => facts.lock_kept = Some(crate::table::printable(&cut(why.trim(), RECORD_MAX))),
            (Some("oversized"), Some(path), _) => facts.oversized.push(crate::table::printable(&cut(path, 256))),
            (Some("process"), Some(pid), Some(release)) => {
                if let Some(process) = ReleaseProcess::parse(pid, release) {
                    if !facts.processes.iter().any(|p| p.pid == process.pid) {
                        facts.processes.push(process);
                    }
                }
            }
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
    if facts.oversized.iter().any(|f| f == ".kai/lock/owner") {
        let owner = facts.lock.get_or_insert_with(|| parse_lock_owner(""));
        owner.command = "(its owner file is larger than 16 KiB: not read)".into();
    }
    crate::version::sort_by_maven(&mut releases, &|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    facts.releases = releases.into_iter().map(|(_, v)| v.as_str().to_owned()).collect();
    facts
}

/// The name `current` points to, as kai names releases; anything else (made by hand,
/// or by a hostile host) kept only escaped and marked, so it never reaches a terminal
/// raw or passes for a release.
fn release_name(name: &str) -> String {
    if crate::ident::is_valid(name) {
        name.to_owned()
    } else {
        format!("(not a release name: {})", crate::table::printable(&cut(name, 128)))
    }
}

/// A recorded checksum (`sha256:<hex>`) as it is, or escaped and marked when it is not one.
fn checksum_text(text: &str) -> String {
    let valid = text.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty() && alg.chars().all(|c| c.is_ascii_alphanumeric()) && hex.len() <= 128 && hex.chars().all(|c| c.is_ascii_hexdigit())
    });
    if valid {
        text.to_owned()
    } else {
        format!("(not a checksum: {})", crate::table::printable(&cut(text, 128)))
    }
}

/// `releases/1.2.0` (or an absolute path to it) → `1.2.0`.
fn version_of_link(target: &str) -> &str {
    let target = target.trim_end_matches('/');
    target.rsplit('/').next().unwrap_or(target)
}

/// How much of one line of a record kai keeps (a lock's "started" line, why a lock was kept).
const RECORD_MAX: usize = 4096;

fn cut(text: &str, max: usize) -> String {
    crate::table::cut(text, max)
}

/// A lock owner file; a hand-made or damaged one still shows what it holds. Every
/// field is cut to a sane length: a host may hold anything there.
pub fn parse_lock_owner(text: &str) -> LockOwner {
    let owner = serde_json::from_str(text).unwrap_or_else(|_| LockOwner {
        user: "unknown".into(),
        machine: "unknown".into(),
        pid: 0,
        since: "unknown".into(),
        command: text.trim().to_owned(),
        hold: None,
    });
    LockOwner {
        user: cut(&owner.user, 128),
        machine: cut(&owner.machine, 256),
        pid: owner.pid,
        since: cut(&owner.since, 64),
        command: cut(&owner.command, OWNER_COMMAND_MAX + 64),
        hold: owner.hold.map(|m| cut(&m, HOLD_MESSAGE_MAX * 4)),
    }
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
    fn processes_of_releases_and_a_step_cut_short_are_facts() {
        let facts = parse_probe(
            "current\treleases/1.1.0\nlock\t{}\nabandoned\t2026-12-05T10:00:00Z\nprocess\t7591\t1.1.0\nprocess\t7591\t1.1.0\n\
             process\t8000\t1.0.0\nprocess\t8001\t1.1.0 (deleted)\nprocess\tx\t1.0.0\nprocess\t9\t../etc\n",
        );
        assert_eq!(facts.abandoned.as_deref(), Some("2026-12-05T10:00:00Z"));
        assert_eq!(facts.processes.len(), 3, "{:?}", facts.processes);
        let orphans: Vec<u32> = orphans(&facts).map(|p| p.pid).collect();
        assert_eq!(orphans, [8000, 8001]);
    }

    #[test]
    fn a_port_in_use_names_the_process_and_its_release() {
        let output = "kai-demo-service: cannot listen on 127.0.0.1:8080: Address already in use (os error 98)\n\
                      kai: pid 7591 runs from release 1.1.0, not the current one, listening on 127.0.0.1:8080\n\
                      kai: pid 7600 runs from the current release\n";
        assert_eq!(
            parse_who(output),
            [
                Occupant { pid: 7591, release: Some("1.1.0".into()), listening: vec!["127.0.0.1:8080".into()] },
                Occupant { pid: 7600, release: None, listening: vec![] }
            ]
        );
        assert_eq!(port_taken(output).as_deref(), Some("the port 8080 is taken by pid 7591 (release 1.1.0): stop it, then deploy again"));
        assert_eq!(port_taken("kai: pid 7591 runs from release 1.1.0, not the current one, listening on 127.0.0.1:8080\n"), None);
        assert_eq!(port_taken("Address already in use\n"), None);
    }

    #[test]
    fn what_a_host_holds_is_kept_to_a_sane_length() {
        let owner = format!("{{\"user\":\"ann\",\"machine\":\"ws1\",\"pid\":1,\"since\":\"x\",\"command\":\"{}\"}}", "k".repeat(50_000));
        let facts = parse_probe(&format!("lock\t{owner}\nstarted\t{}\n", "s".repeat(50_000)));
        assert!(facts.lock.as_ref().is_some_and(|l| l.command.len() < 300 && l.command.ends_with("…(cut)")), "{:?}", facts.lock);
        assert!(facts.started.as_ref().is_some_and(|s| s.len() < 5000));
        let big = parse_probe("oversized\t.kai/lock/owner\nlock\t\n");
        assert_eq!(big.oversized, [".kai/lock/owner"]);
        assert_eq!(big.lock.map(|l| l.command), Some("(its owner file is larger than 16 KiB: not read)".to_owned()));
    }

    #[test]
    fn names_and_checksums_a_host_holds_are_only_kept_when_they_are_names_and_checksums() {
        let facts = parse_probe(
            "current\treleases/1.0.0\u{1b}]0;x\u{7}\nrelease\t1.0.0\u{1b}[31m\t1\nrelease\t1.0.0\t1\n\
             checksum\t1.0.0\tsha256:ab\u{1b}[2J\nchecksum\t..\tsha256:ab\n",
        );
        let current = facts.current.expect("a current");
        assert!(current.starts_with("(not a release name: ") && !current.chars().any(char::is_control), "{current}");
        assert_eq!(facts.releases, ["1.0.0"]);
        assert!(facts.checksums["1.0.0"].starts_with("(not a checksum: ") && !facts.checksums["1.0.0"].chars().any(char::is_control));
        assert_eq!(facts.checksums.len(), 1);
    }

    #[test]
    fn a_damaged_lock_file_is_still_shown() {
        let facts = parse_probe("lock\tsomeone by hand\n");
        assert_eq!(facts.lock.unwrap().command, "someone by hand");
    }

    #[test]
    fn a_hold_message_is_one_printable_line_of_sane_length() {
        assert_eq!(LockOwner::hold_message_problem("freeze: incident 4711, ask ann"), None);
        assert_eq!(LockOwner::hold_message_problem(&"é".repeat(HOLD_MESSAGE_MAX)), None, "counted in characters");
        for (text, says) in [
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("two\nlines", "a line break (\\n)"),
            ("\u{1b}[2Jcleared", "a control character (\\u{1b})"),
            (&"x".repeat(HOLD_MESSAGE_MAX + 1), "it is 201 characters long, at most 200"),
        ] {
            let problem = LockOwner::hold_message_problem(text).unwrap_or_default();
            assert!(problem.contains(says), "{text:?}: {problem}");
        }
    }

    #[test]
    fn a_hold_read_back_is_cut_shown_escaped_and_never_stale() {
        let owner = r#"{"user":"ann","machine":"ws1","pid":0,"since":"2026-01-01T00:00:00Z","command":"kai lock test hello --hold","hold":"freeze\u001b[2J"}"#;
        let facts = parse_probe(&format!("lock\t{owner}\n"));
        let lock = facts.lock.expect("a lock");
        assert_eq!(lock.hold.as_deref(), Some("freeze\u{1b}[2J"), "kept as it came; escaped when shown");
        assert_eq!(lock.to_string(), "ann@ws1 (held by hand) since 2026-01-01T00:00:00Z: freeze\\u{1b}[2J");
        assert!(!lock.is_stale(Some(false)), "nothing runs for a hold, so it is never stale");
        let long = owner.replace("freeze", &"f".repeat(50_000));
        let cut = parse_probe(&format!("lock\t{long}\n")).lock.and_then(|l| l.hold).unwrap_or_default();
        assert!(cut.len() < 1000 && cut.ends_with("…(cut)"), "{} bytes", cut.len());
        let deploy = parse_lock_owner(r#"{"user":"bob","machine":"ws2","pid":7,"since":"x","command":"kai deploy"}"#);
        assert_eq!(deploy.hold, None);
        assert!(deploy.is_stale(Some(false)) && !deploy.is_stale(None) && !deploy.is_stale(Some(true)));
    }
}
