//! The records kai appends to `.kai/history.jsonl` on every host it changed, and how
//! `kai history` reads them back: parsed per host, merged into one event per deploy
//! across hosts, filtered, and shown newest first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::local_build::LocalBuild;
use crate::shell::command::Command;
use crate::table::{self, Table};
use crate::version::MavenVersion;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Deploy,
    Rollback,
    Unlock,
    /// `kai lock --hold`: the lock taken by hand (a freeze); its message in `detail`.
    Hold,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Switched and healthy.
    Ok,
    /// Failed; this host was put back as it was.
    RolledBack,
    /// Failed and left as it is (halted, or a rollback that failed).
    Failed,
    /// Staged, but the rollout stopped before it reached this host: it runs what it ran.
    NotSwitched,
    /// Switched (and healthy), but the run was stopped on request before it finished:
    /// the fleet may run two versions.
    Interrupted,
    /// The deploy started switching servers; no result was recorded after it. Alone,
    /// it means the deploy was killed (or is still running): the host's state is unknown.
    Started,
}

/// One line of `.kai/history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub time: String,
    pub user: String,
    pub machine: String,
    pub env: String,
    pub app: String,
    pub action: Kind,
    pub from: Option<String>,
    pub to: String,
    pub result: Outcome,
    pub duration_ms: u64,
    pub host: String,
    /// Every host of this deploy of the app.
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The run that wrote it: a deploy's "started" record and its results share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Set when the release is a local build, not the repository's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBuild>,
    /// Set by `kai promote`: the environment the release was promoted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// The canary's verdict with its figures, when the deploy judged one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::canary::Verdict>,
}

/// Who did something, when, to which app in which environment: what every record of
/// one run shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who<'a> {
    pub time: &'a str,
    pub user: &'a str,
    pub machine: &'a str,
    pub env: &'a str,
    pub app: &'a str,
}

impl Record {
    /// The record `kai unlock` leaves on `host` (one of `hosts`, running `current`):
    /// it broke the lock `owner` held.
    pub fn unlock(who: &Who<'_>, host: &str, hosts: &[String], current: Option<&str>, owner: &crate::facts::LockOwner) -> Record {
        let detail = match &owner.hold {
            Some(_) => format!("released the hold of {owner}"),
            None => format!("broke the lock of {owner}"),
        };
        Record::by_hand(who, Kind::Unlock, host, hosts, current, detail, None)
    }

    /// The record `kai lock --hold` leaves on `host` (one of `hosts`, running
    /// `current`) once it holds the lock of every host: who holds it and why (`message`).
    /// The records of one hold share its `run`.
    pub fn hold(who: &Who<'_>, host: &str, hosts: &[String], current: Option<&str>, message: &str, run: &str) -> Record {
        Record::by_hand(who, Kind::Hold, host, hosts, current, format!("held by hand: {message}"), Some(run.to_owned()))
    }

    /// What a person did to a lock by hand on `host` (one of `hosts`, running `current`).
    fn by_hand(
        who: &Who<'_>,
        action: Kind,
        host: &str,
        hosts: &[String],
        current: Option<&str>,
        detail: String,
        run: Option<String>,
    ) -> Record {
        Record {
            time: who.time.to_owned(),
            user: who.user.to_owned(),
            machine: who.machine.to_owned(),
            env: who.env.to_owned(),
            app: who.app.to_owned(),
            action,
            from: None,
            to: current.unwrap_or_default().to_owned(),
            result: Outcome::Ok,
            duration_ms: 0,
            host: host.to_owned(),
            hosts: hosts.to_vec(),
            detail: Some(detail),
            run,
            local: None,
            promoted_from: None,
            canary: None,
        }
    }

    /// One JSON line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a history record always serializes")
    }
}

/// Prints a host's history of one app (run in its home), at most its last `$1` bytes:
/// when the file is larger, a `kai-history-cut` line first, then its end (whose first
/// line is cut); nothing when there is none yet.
pub const READ_SCRIPT: &str = "f=.kai/history.jsonl; [ -f \"$f\" ] || exit 0; \
if [ -n \"$(find \"$f\" -maxdepth 0 -size +\"$1\"c)\" ]; then printf 'kai-history-cut\\n'; tail -c \"$1\" -- \"$f\"; else cat -- \"$f\"; fi";

/// How much of a host's history `kai history` reads by default (its newest part): a few
/// hundred deploys of one app on one host.
pub const READ_NEWEST: u64 = 256 * 1024;

/// How much `kai history --limit 0` (everything) reads of one host's history.
pub const READ_ALL: u64 = 16 * 1024 * 1024;

/// The command that reads a host's history, at most its last `cap` bytes.
pub fn read_command(cap: u64) -> Command {
    Command::new(["sh".to_owned(), "-c".to_owned(), READ_SCRIPT.to_owned(), "kai-history".to_owned(), cap.to_string()])
}

/// What [`read_command`] printed: the history text, and whether its older part was
/// left unread (the file was larger than the cap; the cut first line is dropped).
pub fn read_text(output: &str) -> (&str, bool) {
    match output.strip_prefix("kai-history-cut\n") {
        Some(rest) => (rest.split_once('\n').map_or("", |(_, after)| after), true),
        None => (output, false),
    }
}

/// A record as read from `host`'s history of `app` in `env`: it is shown there, where
/// it was found; where its own fields name another environment, app or host (a file
/// copied, or forged), they are set to where it was read and its details say what it
/// claimed.
pub fn as_read(mut record: Record, env: &str, app: &str, host: &str) -> Record {
    let mut claims = Vec::new();
    for (field, value, truth) in [("env", &mut record.env, env), ("app", &mut record.app, app), ("host", &mut record.host, host)] {
        if value != truth {
            claims.push(format!("{field} {}", crate::table::printable(value)));
            truth.clone_into(value);
        }
    }
    if !claims.is_empty() {
        let flag = format!("{host}: a record read from {app} in {env} says {}: shown where it was read", claims.join(", "));
        record.detail = Some(match record.detail.take() {
            Some(detail) => format!("{flag}; {detail}"),
            None => flag,
        });
    }
    record
}

/// A line of a history file that is not a record (damaged, or written by hand).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Counted from 1.
    pub number: usize,
    pub error: String,
}

/// The records of one host's `.kai/history.jsonl`; blank lines are skipped, the
/// others that are not records are returned beside them.
pub fn parse_history(text: &str) -> (Vec<Record>, Vec<BadLine>) {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<Record>(line) {
            Ok(record) => records.push(record),
            Err(e) => bad.push(BadLine { number: i + 1, error: e.to_string() }),
        }
    }
    (records, bad)
}

/// One deploy, rollback or unlock of one app, merged from every host that recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub time: String,
    pub user: String,
    pub machine: String,
    pub env: String,
    pub app: String,
    pub action: Kind,
    /// The versions the hosts ran before, lowest first; empty for a first install.
    pub from: Vec<String>,
    pub to: String,
    /// The worst of the hosts' results.
    pub result: Outcome,
    /// Each host's own result.
    pub results: BTreeMap<String, Outcome>,
    /// The longest of the hosts' durations.
    pub duration_ms: u64,
    /// The hosts that recorded it, in the deploy's order.
    pub hosts: Vec<String>,
    /// What went wrong (or, for an unlock, whose lock was broken).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// Set when the release is a local build, not the repository's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBuild>,
    /// Set by `kai promote`: the environment the release was promoted from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// The canary's verdict with its figures, when the deploy judged one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<crate::canary::Verdict>,
}

/// Which events `kai history` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub app: Option<String>,
    /// Only events at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many events, the newest.
    pub limit: Option<usize>,
}

/// Groups the records of every host into events (one run, or for records without one
/// the same time, app, action, version and user: one deploy seen by several hosts),
/// newest first, as `query` asks.
pub fn events(records: impl IntoIterator<Item = Record>, query: &Query) -> Vec<Entry> {
    type Key = (String, String, String, String, String, String, String);
    let mut groups: BTreeMap<Key, Vec<Record>> = BTreeMap::new();
    for r in records {
        if query.app.as_ref().is_some_and(|app| *app != r.app) {
            continue;
        }
        if let Some(since) = query.since {
            if parse_time(&r.time).is_none_or(|t| t < since) {
                continue;
            }
        }
        let action = serde_json::to_string(&r.action).unwrap_or_default();
        let key = match &r.run {
            Some(run) => (String::new(), r.env.clone(), r.app.clone(), action, run.clone(), String::new(), String::new()),
            None => (r.time.clone(), r.env.clone(), r.app.clone(), action, r.to.clone(), r.user.clone(), r.machine.clone()),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut events: Vec<Entry> = groups.into_values().map(merge).collect();
    events.sort_by(|a, b| {
        let newer = parse_time(&b.time).cmp(&parse_time(&a.time)).then_with(|| b.time.cmp(&a.time));
        newer.then_with(|| a.app.cmp(&b.app))
    });
    if let Some(limit) = query.limit {
        events.truncate(limit);
    }
    events
}

fn merge(records: Vec<Record>) -> Entry {
    let first = records[0].clone();
    let order = |host: &str| first.hosts.iter().position(|h| h == host).unwrap_or(usize::MAX);
    let mut hosts: Vec<String> = records.iter().map(|r| r.host.clone()).collect();
    hosts.sort_by_key(|h| (order(h), h.clone()));
    hosts.dedup();
    let from: BTreeSet<MavenVersion> = records.iter().filter_map(|r| r.from.as_deref()).map(MavenVersion::parse).collect();
    let mut details: Vec<String> = Vec::new();
    for d in records.iter().filter_map(|r| r.detail.clone()) {
        if !details.contains(&d) {
            details.push(d);
        }
    }
    // A host's result after it started beats its "started" record.
    let mut results: BTreeMap<String, Outcome> = BTreeMap::new();
    for r in &records {
        match results.get(&r.host) {
            Some(seen) if r.result == Outcome::Started && *seen != Outcome::Started => {}
            _ => {
                results.insert(r.host.clone(), r.result.clone());
            }
        }
    }
    Entry {
        local: records.iter().find_map(|r| r.local.clone()),
        promoted_from: records.iter().find_map(|r| r.promoted_from.clone()),
        canary: records.iter().find_map(|r| r.canary.clone()),
        result: results.values().max_by_key(|o| severity(o)).cloned().unwrap_or(Outcome::Ok),
        results,
        duration_ms: records.iter().map(|r| r.duration_ms).max().unwrap_or(0),
        from: from.into_iter().map(|v| v.as_str().to_owned()).collect(),
        hosts,
        details,
        time: first.time,
        user: first.user,
        machine: first.machine,
        env: first.env,
        app: first.app,
        action: first.action,
        to: first.to,
    }
}

fn severity(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Ok => 0,
        Outcome::NotSwitched => 1,
        Outcome::Interrupted => 2,
        Outcome::RolledBack => 3,
        Outcome::Failed => 4,
        Outcome::Started => 5,
    }
}

fn parse_time(time: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(time.trim()).ok()
}

/// `--since`: a date (`2026-11-01`, midnight UTC), a time (`2026-11-01 12:00`,
/// `2026-11-01T12:00:00Z`) or an age (`3d`, `12h`, `2weeks`) counted back from `now`.
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    let full = match text.len() {
        10 => format!("{text}T00:00:00"),
        16 => format!("{text}:00"),
        _ => text.to_owned(),
    };
    if let Ok(time) = humantime::parse_rfc3339_weak(&full) {
        return Ok(time);
    }
    match humantime::parse_duration(text) {
        Ok(age) => now.checked_sub(age).ok_or_else(|| format!("--since {text}: too long ago")),
        Err(_) => Err(format!("--since {text:?}: expected a date (2026-11-01), a time (2026-11-01 12:00, UTC) or an age (3d, 12h)")),
    }
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Interrupted => "interrupted",
            Outcome::RolledBack => "failed, put back",
            Outcome::Failed => "FAILED",
            Outcome::NotSwitched => "not switched",
            Outcome::Started => "interrupted, unknown",
        }
    }
}

impl Kind {
    pub fn word(&self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Unlock => "unlock",
            Kind::Hold => "hold",
        }
    }
}

/// The events as a table, newest first; details numbered below it.
pub fn render(events: &[Entry]) -> String {
    let mut table = Table::new(&["time (UTC)", "user", "app", "version", "action", "result", "took", "hosts"]).right(&["took"]);
    let mut notes = String::new();
    let mut n = 0;
    for e in events {
        let version = match (&e.action, e.from.is_empty()) {
            (Kind::Unlock | Kind::Hold, _) if e.to.is_empty() => "-".to_owned(),
            (Kind::Unlock | Kind::Hold, _) => e.to.clone(),
            (_, true) => format!("- -> {}", e.to),
            (_, false) => format!("{} -> {}", e.from.join(","), e.to),
        };
        let mut action = e.action.word().to_owned();
        if let Some(from) = &e.promoted_from {
            action = format!("promote from {from}");
        }
        let mut result = e.result.word().to_owned();
        if e.results.values().any(|o| *o != e.result) {
            let worst: Vec<&str> = e.results.iter().filter(|(_, o)| **o == e.result).map(|(h, _)| h.as_str()).collect();
            let switched = if e.result == Outcome::Interrupted { " switched" } else { "" };
            result = format!("{result} ({}{switched})", worst.join(","));
        }
        let mut hosts = e.hosts.join(",");
        let canary = e.canary.iter().map(|v| format!("canary {}: {}", v.verdict, v.reason));
        for detail in e.local.iter().map(LocalBuild::describe).chain(canary).chain(e.details.iter().cloned()) {
            n += 1;
            hosts.push_str(&format!(" [{n}]"));
            notes.push_str(&format!("[{n}] {}\n", table::printable(&detail)));
        }
        let took = match (&e.action, e.duration_ms) {
            (Kind::Unlock | Kind::Hold, _) => "-".to_owned(),
            (_, ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
            (_, ms) => table::age(Duration::from_millis(ms)),
        };
        table.row([table::time(&e.time), format!("{}@{}", e.user, e.machine), e.app.clone(), version, action, result, took, hosts]);
    }
    let mut out = table.render();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str, app: &str, host: &str, from: Option<&str>, to: &str, result: Outcome) -> Record {
        Record {
            time: time.into(),
            user: "ann".into(),
            machine: "ws1".into(),
            env: "test".into(),
            app: app.into(),
            action: Kind::Deploy,
            from: from.map(Into::into),
            to: to.into(),
            result,
            duration_ms: 1500,
            host: host.into(),
            hosts: vec!["web1".into(), "web2".into(), "web3".into()],
            detail: None,
            run: None,
            local: None,
            promoted_from: None,
            canary: None,
        }
    }

    #[test]
    fn reads_the_lines_kai_writes_and_reports_the_others() {
        let line = record("2026-01-01T10:00:00Z", "hello", "web1", None, "1.0.0", Outcome::Ok).to_line();
        let (records, bad) = parse_history(&format!("{line}\n\nnot json\n"));
        assert_eq!(records.len(), 1);
        assert_eq!(bad.iter().map(|b| b.number).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn a_run_stopped_on_request_is_interrupted_with_the_hosts_it_switched() {
        let records = vec![
            record("2026-01-02T09:00:00Z", "hello", "web1", Some("1.0.0"), "1.1.0", Outcome::Started),
            record("2026-01-02T09:00:00Z", "hello", "web1", Some("1.0.0"), "1.1.0", Outcome::Interrupted),
            record("2026-01-02T09:00:00Z", "hello", "web2", Some("1.0.0"), "1.1.0", Outcome::NotSwitched),
        ];
        let events = events(records, &Query::default());
        assert_eq!(events[0].result, Outcome::Interrupted);
        let text = render(&events);
        assert!(text.contains("deploy  interrupted (web1 switched)"), "{text}");
    }

    #[test]
    fn a_record_is_shown_where_it_was_read_and_one_that_claims_elsewhere_is_flagged() {
        let mut forged = record("2026-01-02T09:00:00Z", "other", "web1", Some("1.0.0"), "6.6.6", Outcome::Ok);
        forged.env = "prod".into();
        let shown = as_read(forged, "test", "hello", "web1");
        assert_eq!((shown.env.as_str(), shown.app.as_str(), shown.host.as_str()), ("test", "hello", "web1"));
        assert_eq!(
            shown.detail.as_deref(),
            Some("web1: a record read from hello in test says env prod, app other: shown where it was read")
        );
        let honest = record("2026-01-02T09:00:00Z", "hello", "web1", Some("1.0.0"), "1.1.0", Outcome::Ok);
        assert_eq!(as_read(honest.clone(), &honest.env.clone(), "hello", "web1"), honest);
    }

    #[test]
    fn a_history_read_in_part_drops_its_cut_first_line() {
        assert_eq!(read_text("kai-history-cut\nxt of a line\n{\"a\":1}\n"), ("{\"a\":1}\n", true));
        assert_eq!(read_text("{\"a\":1}\n"), ("{\"a\":1}\n", false));
    }

    #[test]
    fn one_deploy_seen_by_three_hosts_is_one_row_newest_first() {
        let mut failed = record("2026-01-02T09:00:00Z", "hello", "web2", Some("1.0.0"), "1.1.0", Outcome::RolledBack);
        failed.detail = Some("web2: health failed: GET http://web2/ready gave no 2xx within 3s".into());
        let mut failed1 = failed.clone();
        failed1.host = "web1".into();
        let records = vec![
            record("2026-01-01T10:00:00Z", "hello", "web3", None, "1.0.0", Outcome::Ok),
            record("2026-01-01T10:00:00Z", "hello", "web1", None, "1.0.0", Outcome::Ok),
            record("2026-01-01T10:00:00Z", "hello", "web2", None, "1.0.0", Outcome::Ok),
            failed,
            failed1,
        ];
        let events = events(records, &Query::default());
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].hosts, ["web1", "web2", "web3"]);
        assert_eq!(
            render(&events),
            "time (UTC)           user     app    version         action  result            took  hosts
2026-01-02 09:00:00  ann@ws1  hello  1.0.0 -> 1.1.0  deploy  failed, put back  1.5s  web1,web2 [1]
2026-01-01 10:00:00  ann@ws1  hello  - -> 1.0.0      deploy  ok                1.5s  web1,web2,web3

[1] web2: health failed: GET http://web2/ready gave no 2xx within 3s
"
        );
    }

    #[test]
    fn a_host_that_failed_where_others_rolled_back_is_named() {
        let records = vec![
            record("2026-01-01T10:00:00Z", "hello", "web1", Some("1.0.0"), "1.1.0", Outcome::RolledBack),
            record("2026-01-01T10:00:00Z", "hello", "web2", Some("1.0.0"), "1.1.0", Outcome::Failed),
        ];
        let event = &events(records, &Query::default())[0];
        assert_eq!(event.result, Outcome::Failed);
        assert!(render(std::slice::from_ref(event)).contains("FAILED (web2)"));
    }

    #[test]
    fn filters_by_app_and_time_and_keeps_the_newest() {
        let records = vec![
            record("2026-01-01T10:00:00Z", "hello", "web1", None, "1.0.0", Outcome::Ok),
            record("2026-01-03T10:00:00Z", "hello", "web1", Some("1.0.0"), "1.1.0", Outcome::Ok),
            record("2026-01-04T10:00:00Z", "hello", "web1", Some("1.1.0"), "1.2.0", Outcome::Ok),
            record("2026-01-05T10:00:00Z", "jms", "web1", None, "2.0.0", Outcome::Ok),
        ];
        let now = humantime::parse_rfc3339("2026-01-05T12:00:00Z").unwrap();
        let query = Query { app: Some("hello".into()), since: Some(parse_since("2026-01-02", now).unwrap()), limit: Some(1) };
        let to: Vec<String> = events(records.clone(), &query).into_iter().map(|e| e.to).collect();
        assert_eq!(to, ["1.2.0"]);
        let query = Query { since: Some(parse_since("2d", now).unwrap()), ..Query::default() };
        let to: Vec<String> = events(records, &query).into_iter().map(|e| e.to).collect();
        assert_eq!(to, ["2.0.0", "1.2.0"]);
    }

    #[test]
    fn since_takes_dates_times_and_ages() {
        let now = humantime::parse_rfc3339("2026-01-05T12:00:00Z").unwrap();
        let at = |s: &str| humantime::format_rfc3339_seconds(parse_since(s, now).unwrap()).to_string();
        assert_eq!(at("2026-01-02"), "2026-01-02T00:00:00Z");
        assert_eq!(at("2026-01-02 08:30"), "2026-01-02T08:30:00Z");
        assert_eq!(at("2026-01-02T08:30:15Z"), "2026-01-02T08:30:15Z");
        assert_eq!(at("12h"), "2026-01-05T00:00:00Z");
        assert!(parse_since("yesterday", now).unwrap_err().contains("expected a date"));
    }

    #[test]
    fn a_run_that_only_started_is_interrupted_and_unknown_and_results_replace_started() {
        let mut started = record("2026-01-01T10:00:00Z", "hello", "web1", Some("1.0.0"), "1.1.0", Outcome::Started);
        started.run = Some("r1".into());
        let mut started2 = started.clone();
        started2.host = "web2".into();
        let mut done = started.clone();
        done.result = Outcome::Ok;
        let mut not_reached = started2.clone();
        not_reached.result = Outcome::NotSwitched;
        let killed = &events([started.clone(), started2.clone()], &Query::default())[0];
        assert_eq!(killed.result, Outcome::Started);
        assert!(render(std::slice::from_ref(killed)).contains("interrupted, unknown"));
        let finished = &events([started, started2, done, not_reached], &Query::default())[0];
        assert_eq!(finished.results.values().cloned().collect::<Vec<_>>(), [Outcome::Ok, Outcome::NotSwitched]);
        assert!(render(std::slice::from_ref(finished)).contains("not switched (web2)"));
    }

    #[test]
    fn an_unlock_shows_the_version_the_host_was_at() {
        let mut unlock = record("2026-01-01T10:00:00Z", "hello", "web2", None, "1.0.0", Outcome::Ok);
        unlock.action = Kind::Unlock;
        unlock.detail = Some("broke the lock of ann@ws1 (pid 1) since 2026-01-01T09:00:00Z: kai deploy test hello".into());
        let text = render(&events([unlock], &Query::default()));
        assert!(text.contains("hello  1.0.0    unlock  ok         -  web2 [1]"), "{text}");
        assert!(text.contains("[1] broke the lock of ann@ws1"), "{text}");
    }

    #[test]
    fn a_hold_is_one_event_across_its_hosts_with_its_message_escaped() {
        let who = Who { time: "2026-01-01T10:00:00Z", user: "ann", machine: "ws1", env: "test", app: "hello" };
        let hosts = ["web1".to_owned(), "web2".to_owned()];
        let records = [
            Record::hold(&who, "web1", &hosts, Some("1.0.0"), "freeze: incident 7\u{1b}[2J", "r1"),
            Record::hold(&who, "web2", &hosts, None, "freeze: incident 7\u{1b}[2J", "r1"),
        ];
        let line = records[0].to_line();
        assert!(line.contains(r#""action":"hold""#) && line.contains(r#""run":"r1""#), "{line}");
        let (read, bad) = parse_history(&format!("{line}\n"));
        assert_eq!((read.len(), bad), (1, vec![]));
        let events = events(records, &Query::default());
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].hosts, hosts);
        let text = render(&events);
        assert!(text.contains("hold    ok"), "{text}");
        assert!(text.contains("[1] held by hand: freeze: incident 7\\u{1b}[2J"), "{text}");
    }

    #[test]
    fn an_unlock_of_a_hold_says_it_released_it() {
        let who = Who { time: "2026-01-01T10:00:00Z", user: "bob", machine: "ws2", env: "test", app: "hello" };
        let hold = crate::facts::parse_lock_owner(
            r#"{"user":"ann","machine":"ws1","pid":0,"since":"2026-01-01T09:00:00Z","command":"kai lock test hello --hold","hold":"freeze"}"#,
        );
        let record = Record::unlock(&who, "web1", &["web1".into()], None, &hold);
        assert_eq!(record.detail.as_deref(), Some("released the hold of ann@ws1 (held by hand) since 2026-01-01T09:00:00Z: freeze"));
    }
}
