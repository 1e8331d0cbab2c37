//! `kai status` and `kai lock`: what each host said about each app, what a person
//! should notice in it (drift, unreachable hosts, failing health checks), and the
//! tables that show both. The binary gathers the [`HostStatus`] values; everything
//! here is decided from them (and from `now`, passed in).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::Serialize;

use crate::facts::{HostFacts, LockOwner, ReleaseProcess};
use crate::local_build::LocalBuild;
use crate::table::{self, Table, Tone};
use crate::version::MavenVersion;

/// One app on one host of one environment, as read from the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostStatus {
    pub env: String,
    pub app: String,
    pub host: String,
    pub standby: bool,
    /// Why the host could not be read; then nothing below is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The version `current` points to.
    pub current: Option<String>,
    /// The version the running app reports (its health answer, when that is a version).
    pub reported: Option<String>,
    /// The app's health check; `None` when not asked (standby, nothing deployed, no check).
    pub healthy: Option<bool>,
    /// In the load balancer's rotation: as the balancer says where it can be asked,
    /// else no `disabled` marker on the host; `None` when that cannot be known (the
    /// host, or its balancer, could not be read).
    pub in_rotation: Option<bool>,
    /// Why the balancer could not be read, when it could not: rotation is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balancer_unread: Option<String>,
    pub lock: Option<LockOwner>,
    /// Whether the lock's owner still runs: `Some(false)` when it is a process of this
    /// machine that is gone (a stale lock), `None` when that cannot be told from here.
    pub lock_alive: Option<bool>,
    /// The "started" record of the deploy holding the lock: it began switching servers.
    pub started: Option<String>,
    /// When the host stopped a step of the deploy holding the lock, its kai gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandoned: Option<String>,
    /// Why the deploy holding the lock kept it on purpose (a server it could not put back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_kept: Option<String>,
    /// Processes running from a release other than `current` (or from a release folder
    /// removed under them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<ReleaseProcess>,
    /// Newest first.
    pub releases: Vec<String>,
    /// Set when the current release is a local build: its sha256, who deployed it,
    /// from which machine and file.
    pub local: Option<LocalBuild>,
    /// The checksum recorded for the current release (`sha256:…`).
    pub checksum: Option<String>,
    /// The properties file of the current release as the host has it: for `kai diff`
    /// (which masks secrets), never printed whole.
    #[serde(skip)]
    pub properties: Option<String>,
}

impl HostStatus {
    pub fn read(env: &str, app: &str, host: &str, standby: bool, facts: HostFacts, reported: Option<String>) -> HostStatus {
        let orphans = crate::facts::orphans(&facts).cloned().collect();
        HostStatus {
            env: env.into(),
            app: app.into(),
            host: host.into(),
            standby,
            error: None,
            reported,
            healthy: facts.healthy,
            in_rotation: Some(facts.in_rotation.unwrap_or(!facts.disabled)),
            balancer_unread: None,
            lock: facts.lock,
            lock_alive: None,
            started: facts.started,
            abandoned: facts.abandoned,
            lock_kept: facts.lock_kept,
            orphans,
            local: facts.current.as_ref().and_then(|c| facts.builds.get(c)).cloned(),
            checksum: facts.current.as_ref().and_then(|c| facts.checksums.get(c)).cloned(),
            properties: facts.properties,
            current: facts.current,
            releases: facts.releases,
        }
    }

    pub fn unreachable(env: &str, app: &str, host: &str, standby: bool, reason: String) -> HostStatus {
        HostStatus {
            env: env.into(),
            app: app.into(),
            host: host.into(),
            standby,
            error: Some(reason),
            current: None,
            reported: None,
            healthy: None,
            in_rotation: None,
            balancer_unread: None,
            lock: None,
            lock_alive: None,
            started: None,
            abandoned: None,
            lock_kept: None,
            orphans: Vec::new(),
            releases: Vec::new(),
            local: None,
            checksum: None,
            properties: None,
        }
    }

    pub fn is_reachable(&self) -> bool {
        self.error.is_none()
    }

    /// The balancer could not be read (`reason`): whether this host is in rotation is
    /// not known, and is not guessed from the `disabled` marker.
    pub fn rotation_unknown(&mut self, reason: &str) {
        self.in_rotation = None;
        self.balancer_unread = Some(crate::table::printable(reason));
    }
}

/// The version in an answer body, when the body is nothing but a version
/// (`1.2.0`, `v1.2.0`, `1.2.0-SNAPSHOT`): an app's `/version`-like answer.
pub fn reported_version(body: &str) -> Option<String> {
    let text = body.trim();
    let version = text.strip_prefix('v').unwrap_or(text);
    let looks = version.len() <= 64
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version.contains('.')
        && crate::ident::is_valid(version);
    looks.then(|| version.to_owned())
}

/// Something in the fleet a person should look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// The hosts of one app point `current` at different versions.
    Drift {
        env: String,
        app: String,
        /// Every reachable host and its `current` (`None`: nothing deployed).
        versions: BTreeMap<String, Option<String>>,
        /// The hosts that differ from what most hosts run.
        odd: Vec<String>,
    },
    /// `current` says one version, the running app another (switched without a restart?).
    Reports { env: String, app: String, host: String, current: String, reported: String },
    /// The host could not be read.
    Unreachable { env: String, host: String, apps: Vec<String>, reason: String },
    /// An active host fails the app's health check.
    Unhealthy { env: String, app: String, host: String, version: String },
    /// An active host is out of the balancer's rotation (or carries `disabled`).
    OutOfRotation { env: String, app: String, host: String },
    /// The deploy lock is held on these hosts.
    Locked {
        env: String,
        app: String,
        hosts: Vec<String>,
        owner: LockOwner,
        /// The owner is a process of this machine that no longer runs.
        stale: bool,
        /// The deploy holding it had started switching servers.
        started: bool,
        /// The hosts that stopped a step of that deploy because its kai went away.
        abandoned: Vec<String>,
        /// Why that deploy kept the lock on purpose (it could not put a server back).
        #[serde(skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
    },
    /// The balancer could not be read: whether these active hosts are in rotation is
    /// unknown.
    BalancerUnread { env: String, app: String, hosts: Vec<String>, reason: String },
    /// Processes run from a release that is not the current one: left behind by an
    /// interrupted deploy, or started by hand, and in the way of the release that
    /// should run (a port, say).
    Orphan { env: String, app: String, host: String, processes: Vec<ReleaseProcess> },
}

impl Problem {
    /// The mark in tables: `*` drift, `?` unreachable, `!` failing health, `~` out of
    /// rotation, `#` locked (a deploy under way, or interrupted), `+` a process of a
    /// release that is not current, `%` the balancer could not be read (rotation unknown).
    pub fn symbol(&self) -> char {
        match self {
            Problem::Drift { .. } | Problem::Reports { .. } => '*',
            Problem::Unreachable { .. } => '?',
            Problem::Unhealthy { .. } => '!',
            Problem::OutOfRotation { .. } => '~',
            Problem::Locked { .. } => '#',
            Problem::Orphan { .. } => '+',
            Problem::BalancerUnread { .. } => '%',
        }
    }

    /// True when the problem is about `app` in `env`.
    pub fn concerns(&self, in_env: &str, of_app: &str) -> bool {
        match self {
            Problem::Drift { env, app, .. }
            | Problem::Reports { env, app, .. }
            | Problem::Unhealthy { env, app, .. }
            | Problem::OutOfRotation { env, app, .. }
            | Problem::Locked { env, app, .. }
            | Problem::Orphan { env, app, .. }
            | Problem::BalancerUnread { env, app, .. } => env == in_env && app == of_app,
            Problem::Unreachable { env, apps, .. } => env == in_env && apps.iter().any(|a| a == of_app),
        }
    }

    /// True when the problem marks `host` in the row of `app`.
    pub fn marks(&self, in_env: &str, of_app: &str, on_host: &str) -> bool {
        self.concerns(in_env, of_app)
            && match self {
                Problem::Drift { odd, .. } => odd.iter().any(|h| h == on_host),
                Problem::Locked { hosts, .. } | Problem::BalancerUnread { hosts, .. } => hosts.iter().any(|h| h == on_host),
                Problem::Reports { host, .. }
                | Problem::Unreachable { host, .. }
                | Problem::Unhealthy { host, .. }
                | Problem::OutOfRotation { host, .. }
                | Problem::Orphan { host, .. } => host == on_host,
            }
    }

    /// One line saying what is wrong, naming the environment, app and host.
    pub fn describe(&self) -> String {
        match self {
            Problem::Drift { env, app, versions, .. } => {
                let hosts: Vec<String> = versions.iter().map(|(h, v)| format!("{h} {}", v.as_deref().unwrap_or("-"))).collect();
                format!("{app} in {env}: hosts disagree: {}", hosts.join(", "))
            }
            Problem::Reports { env, app, host, current, reported } => {
                format!("{app} in {env}: {host} points current at {current} but the app reports {reported} (switched without a restart?)")
            }
            Problem::Unreachable { env, host, apps, reason } => {
                format!("{host} in {env} could not be read ({}): {reason}", apps.join(", "))
            }
            Problem::Unhealthy { env, app, host, version } => format!("{app} in {env}: {host} runs {version} and fails its health check"),
            Problem::OutOfRotation { env, app, host } => format!("{app} in {env}: {host} is an active server out of rotation"),
            Problem::Locked { env, app, hosts, owner, kept: Some(why), .. } => {
                format!("{app} in {env}: locked by {owner} on {}; {why}", hosts.join(", "))
            }
            Problem::Locked { env, app, hosts, owner, .. } if owner.hold.is_some() => {
                format!(
                    "{app} in {env}: locked on {} by {owner}; deploys stop (or wait, with --lock-wait) until it is released",
                    hosts.join(", ")
                )
            }
            Problem::Locked { env, app, hosts, owner, stale, started, abandoned, .. } => {
                let state = match (stale, started) {
                    (true, true) => "interrupted: its deploy started switching servers and its process is gone (stale lock)",
                    (true, false) => "stale: its process is gone",
                    (false, true) => "a deploy is switching servers, or was interrupted",
                    (false, false) => "a deploy is under way, or was interrupted",
                };
                let cut = if abandoned.is_empty() {
                    String::new()
                } else {
                    format!("; its kai went away during a step on {}, and the host stopped that step", abandoned.join(", "))
                };
                format!("{app} in {env}: locked by {owner} on {}; {state}{cut}", hosts.join(", "))
            }
            Problem::BalancerUnread { env, app, hosts, reason } => format!(
                "{app} in {env}: the balancer could not be read ({reason}): whether {} {} in rotation is unknown",
                hosts.join(", "),
                if hosts.len() == 1 { "is" } else { "are" }
            ),
            Problem::Orphan { env, app, host, processes } => {
                let list: Vec<String> = processes
                    .iter()
                    .map(|p| format!("pid {} ({}{})", p.pid, p.release, if p.deleted { ", its folder removed" } else { "" }))
                    .collect();
                format!("{app} in {env}: {host} runs {} from a release that is not the current one", list.join(", "))
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Problem::Unreachable { env, .. } => Some(format!("`kai check --hosts {env}` tries every host of {env} and says why")),
            Problem::Unhealthy { env, app, .. } => Some(format!("`kai ps {env} {app}` shows whether it runs at all")),
            Problem::Drift { env, app, .. } | Problem::Reports { env, app, .. } => {
                Some(format!("`kai history {env} {app}` shows who changed what; a deploy brings every host to one version"))
            }
            Problem::OutOfRotation { env, app, .. } => {
                Some(format!("a deploy of {app} to {env} puts it back (`kai plan {env} {app}` shows how)"))
            }
            Problem::Locked { env, app, kept: Some(_), .. } => Some(format!(
                "look at the server that could not be put back (`kai status {env} {app}`, `kai ps {env} {app}`), then \
                 `kai unlock {env} {app}` and deploy again"
            )),
            Problem::Locked { env, app, owner, .. } if owner.hold.is_some() => {
                Some(format!("`kai unlock {env} {app}` releases it when the hold is over"))
            }
            Problem::Locked { env, app, stale: true, .. } => Some(format!(
                "break it with `kai unlock {env} {app}`, then deploy again: it brings back the hosts the interrupted deploy left"
            )),
            Problem::Locked { env, app, .. } => {
                Some(format!("`kai lock {env} {app}` shows it; if that deploy is dead, `kai unlock {env} {app}` breaks it"))
            }
            Problem::BalancerUnread { env, .. } => Some(format!(
                "check the `[balancer]` of environments/{env}.toml (its admin address, the proxies) and that the balancer runs"
            )),
            Problem::Orphan { env, app, .. } => Some(format!(
                "`kai ps {env} {app}` shows which release each process runs from; stop the ones left behind (they may hold the port the current release needs)"
            )),
        }
    }
}

/// Everything to notice in `statuses`, in the order: drift, unreachable, unhealthy.
pub fn problems(statuses: &[HostStatus]) -> Vec<Problem> {
    let mut out = Vec::new();
    for ((env, app), hosts) in by_env_and_app(statuses) {
        let versions: BTreeMap<String, Option<String>> =
            hosts.iter().filter(|s| s.is_reachable()).map(|s| (s.host.clone(), s.current.clone())).collect();
        let distinct: BTreeSet<&Option<String>> = versions.values().collect();
        if distinct.len() > 1 {
            let most = most_common(&versions);
            let odd = versions.iter().filter(|(_, v)| **v != most).map(|(h, _)| h.clone()).collect();
            out.push(Problem::Drift { env: env.into(), app: app.into(), versions, odd });
        }
        for s in &hosts {
            if let (Some(current), Some(reported)) = (&s.current, &s.reported) {
                if current != reported {
                    let (current, reported) = (current.clone(), reported.clone());
                    out.push(Problem::Reports { env: env.into(), app: app.into(), host: s.host.clone(), current, reported });
                }
            }
        }
    }
    let mut unreachable: BTreeMap<(&str, &str), (Vec<String>, &str)> = BTreeMap::new();
    for s in statuses {
        if let Some(reason) = &s.error {
            unreachable.entry((&s.env, &s.host)).or_insert_with(|| (Vec::new(), reason)).0.push(s.app.clone());
        }
    }
    for ((env, host), (apps, reason)) in unreachable {
        out.push(Problem::Unreachable { env: env.into(), host: host.into(), apps, reason: reason.into() });
    }
    for s in statuses.iter().filter(|s| s.healthy == Some(false)) {
        let version = s.current.clone().unwrap_or_else(|| "-".into());
        out.push(Problem::Unhealthy { env: s.env.clone(), app: s.app.clone(), host: s.host.clone(), version });
    }
    let mut unread: BTreeMap<(&str, &str, &str), Vec<String>> = BTreeMap::new();
    for s in statuses {
        if let Some(reason) = &s.balancer_unread {
            unread.entry((&s.env, &s.app, reason)).or_default().push(s.host.clone());
        }
    }
    for ((env, app, reason), hosts) in unread {
        out.push(Problem::BalancerUnread { env: env.into(), app: app.into(), hosts, reason: reason.into() });
    }
    for s in statuses.iter().filter(|s| s.is_reachable() && !s.standby && s.current.is_some() && s.in_rotation == Some(false)) {
        out.push(Problem::OutOfRotation { env: s.env.clone(), app: s.app.clone(), host: s.host.clone() });
    }
    let mut locks: BTreeMap<(&str, &str, String), Problem> = BTreeMap::new();
    for s in statuses {
        let Some(owner) = &s.lock else { continue };
        let key = (s.env.as_str(), s.app.as_str(), serde_json::to_string(owner).unwrap_or_default());
        let entry = locks.entry(key).or_insert_with(|| Problem::Locked {
            env: s.env.clone(),
            app: s.app.clone(),
            hosts: Vec::new(),
            owner: owner.clone(),
            stale: false,
            started: false,
            abandoned: Vec::new(),
            kept: None,
        });
        if let Problem::Locked { hosts, stale, started, abandoned, kept, .. } = entry {
            hosts.push(s.host.clone());
            *stale |= owner.is_stale(s.lock_alive);
            *started |= s.started.is_some();
            if s.abandoned.is_some() {
                abandoned.push(s.host.clone());
            }
            if kept.is_none() {
                kept.clone_from(&s.lock_kept);
            }
        }
    }
    out.extend(locks.into_values());
    for s in statuses.iter().filter(|s| !s.orphans.is_empty()) {
        out.push(Problem::Orphan { env: s.env.clone(), app: s.app.clone(), host: s.host.clone(), processes: s.orphans.clone() });
    }
    out
}

/// The version most hosts run; a tie goes to the highest version.
fn most_common(versions: &BTreeMap<String, Option<String>>) -> Option<String> {
    let mut counts: BTreeMap<&Option<String>, usize> = BTreeMap::new();
    for v in versions.values() {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|(a, n), (b, m)| n.cmp(m).then_with(|| a.as_deref().map(MavenVersion::parse).cmp(&b.as_deref().map(MavenVersion::parse))))
        .and_then(|(v, _)| v.clone())
}

pub(crate) fn by_env_and_app(statuses: &[HostStatus]) -> BTreeMap<(&str, &str), Vec<&HostStatus>> {
    let mut groups: BTreeMap<(&str, &str), Vec<&HostStatus>> = BTreeMap::new();
    for s in statuses {
        groups.entry((&s.env, &s.app)).or_default().push(s);
    }
    groups
}

fn marks(problems: &[Problem], keep: impl Fn(&Problem) -> bool) -> String {
    let symbols: BTreeSet<char> = problems.iter().filter(|p| keep(p)).map(Problem::symbol).collect();
    // In a fixed order, whatever the problems' order.
    ['*', '?', '%', '!', '~', '#', '+'].into_iter().filter(|c| symbols.contains(c)).collect()
}

fn with_marks(text: String, marks: &str) -> String {
    if marks.is_empty() {
        text
    } else {
        format!("{text} {marks}")
    }
}

/// A cell with its marks, red when it has any (something there needs a look).
fn marked(text: String, marks: &str) -> (String, Tone) {
    let tone = if marks.is_empty() { Tone::Plain } else { Tone::Bad };
    (with_marks(text, marks), tone)
}

/// The lines under a table: one per problem, its mark first, then one hint per kind.
pub fn notes(problems: &[Problem], color: bool) -> String {
    let mut out = String::new();
    let mut hints: Vec<String> = Vec::new();
    for p in problems {
        out.push_str(&format!("{} {}\n", Tone::Bad.paint(&p.symbol().to_string(), color), p.describe()));
        if let Some(hint) = p.hint().filter(|h| !hints.contains(h)) {
            hints.push(hint);
        }
    }
    for hint in hints {
        out.push_str(&format!("  hint: {hint}\n"));
    }
    out
}

/// The environments of `statuses` in the order they come (the order kai read them in:
/// the pipeline order), each once.
pub fn envs_in_order(statuses: &[HostStatus]) -> Vec<&str> {
    let mut envs: Vec<&str> = Vec::new();
    for status in statuses {
        if !envs.contains(&status.env.as_str()) {
            envs.push(&status.env);
        }
    }
    envs
}

/// `kai status`: applications × environments, each cell the version running there.
pub fn render_matrix(statuses: &[HostStatus], problems: &[Problem], color: bool) -> String {
    let envs = envs_in_order(statuses);
    let apps: BTreeSet<&str> = statuses.iter().map(|s| s.app.as_str()).collect();
    let groups = by_env_and_app(statuses);
    let header: Vec<&str> = std::iter::once("app").chain(envs.iter().copied()).collect();
    let mut table = Table::new(&header);
    for app in &apps {
        let mut row = vec![((*app).to_owned(), Tone::Plain)];
        for env in &envs {
            row.push(match groups.get(&(*env, *app)) {
                None => (String::new(), Tone::Plain),
                Some(hosts) => marked(versions_text(hosts), &marks(problems, |p| p.concerns(env, app))),
            });
        }
        table.row_toned(row);
    }
    let mut out = table.render_in(color);
    out.push_str(&local_notes(statuses.iter()));
    if !problems.is_empty() {
        out.push('\n');
        out.push_str(&notes(problems, color));
        out.push_str("  hint: `kai status <env> <app>` shows each host\n");
    }
    out
}

/// A line per local build running (per environment, app and release): which hosts run
/// it, its sha256, who deployed it from where. Empty when none runs.
fn local_notes<'s>(statuses: impl Iterator<Item = &'s HostStatus>) -> String {
    let mut builds: BTreeMap<(&str, &str, &str), (Vec<&str>, &LocalBuild)> = BTreeMap::new();
    for s in statuses {
        if let (Some(local), Some(current)) = (&s.local, &s.current) {
            builds.entry((&s.env, &s.app, current)).or_insert_with(|| (Vec::new(), local)).0.push(&s.host);
        }
    }
    let mut out = String::new();
    for ((env, app, release), (hosts, local)) in builds {
        out.push_str(&format!("\n{app} {release} in {env} ({}) is a {}", hosts.join(", "), local.describe()));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The distinct versions of `current` on the reachable hosts (`-`: nothing deployed),
/// lowest first; `?` when no host could be read.
pub(crate) fn versions_text(hosts: &[&HostStatus]) -> String {
    let reachable: Vec<&&HostStatus> = hosts.iter().filter(|s| s.is_reachable()).collect();
    if reachable.is_empty() {
        return "?".into();
    }
    let distinct: BTreeSet<Option<MavenVersion>> = reachable.iter().map(|s| s.current.as_deref().map(MavenVersion::parse)).collect();
    let names: Vec<String> = distinct.into_iter().map(|v| v.map_or_else(|| "-".to_owned(), |v| v.as_str().to_owned())).collect();
    names.join("/")
}

/// The hosts of `env` read (in the order read), its hosts in that order, and its apps.
pub(crate) type EnvGrid<'s> = (Vec<&'s HostStatus>, Vec<&'s str>, BTreeSet<&'s str>);

pub(crate) fn env_grid<'s>(env: &str, statuses: &'s [HostStatus]) -> EnvGrid<'s> {
    let statuses: Vec<&HostStatus> = statuses.iter().filter(|s| s.env == env).collect();
    let mut hosts: Vec<&str> = Vec::new();
    for s in &statuses {
        if !hosts.contains(&s.host.as_str()) {
            hosts.push(&s.host);
        }
    }
    let apps: BTreeSet<&str> = statuses.iter().map(|s| s.app.as_str()).collect();
    (statuses, hosts, apps)
}

/// `kai status <env>`: applications × hosts, standby marked.
pub fn render_env(env: &str, statuses: &[HostStatus], problems: &[Problem], color: bool) -> String {
    let (statuses, hosts, apps) = env_grid(env, statuses);
    let header: Vec<&str> = std::iter::once("app").chain(hosts.iter().copied()).collect();
    let mut table = Table::new(&header);
    for app in &apps {
        let mut row = vec![((*app).to_owned(), Tone::Plain)];
        for host in &hosts {
            row.push(match statuses.iter().find(|s| s.app == *app && s.host == *host) {
                None => (String::new(), Tone::Plain),
                Some(s) => {
                    let text = match (&s.error, &s.current) {
                        (Some(_), _) => String::new(),
                        (None, current) => current.clone().unwrap_or_else(|| "-".into()),
                    };
                    let text = if s.standby && s.is_reachable() { format!("{text} (standby)") } else { text };
                    let (text, tone) = marked(text, &marks(problems, |p| p.marks(env, app, host)));
                    (text.trim_start().to_owned(), tone)
                }
            });
        }
        table.row_toned(row);
    }
    let mut out = table.render_in(color);
    out.push_str(&local_notes(statuses.iter().copied()));
    let problems: Vec<Problem> = problems.iter().filter(|p| apps.iter().any(|a| p.concerns(env, a))).cloned().collect();
    if !problems.is_empty() {
        out.push('\n');
        out.push_str(&notes(&problems, color));
        out.push_str(&format!("  hint: `kai status {env} <app>` shows each host\n"));
    }
    out
}

/// `kai status <env> <app>`: each host in detail.
pub fn render_app(env: &str, app: &str, statuses: &[HostStatus], problems: &[Problem], now: SystemTime, color: bool) -> String {
    let mut table = Table::new(&["host", "role", "current", "reports", "health", "rotation", "lock", "releases"]);
    for s in statuses.iter().filter(|s| s.env == env && s.app == app) {
        let role = if s.standby { "standby" } else { "active" };
        if !s.is_reachable() {
            table.row([s.host.as_str(), role, "?"]);
            continue;
        }
        let current = marked(s.current.clone().unwrap_or_else(|| "-".into()), &marks(problems, |p| p.marks(env, app, &s.host)));
        let health = match s.healthy {
            Some(true) => ("ok", Tone::Good),
            Some(false) => ("FAILING", Tone::Bad),
            None => ("-", Tone::Plain),
        };
        let lock = s.lock.as_ref().map_or_else(|| "-".to_owned(), |l| format!("{}@{} for {}", l.user, l.machine, lock_age(l, now)));
        let rotation = match (s.in_rotation, s.standby) {
            (Some(true), _) => ("in", Tone::Plain),
            (Some(false), false) => ("out", Tone::Warn),
            (Some(false), true) => ("out", Tone::Plain),
            (None, _) => ("?", Tone::Plain),
        };
        let plain = |text: String| (text, Tone::Plain);
        table.row_toned([
            plain(s.host.clone()),
            plain(role.into()),
            current,
            plain(s.reported.clone().unwrap_or_else(|| "-".into())),
            (health.0.into(), health.1),
            (rotation.0.into(), rotation.1),
            plain(lock),
            plain(s.releases.join(" ")),
        ]);
    }
    let mut out = table.render_in(color);
    out.push_str(&local_notes(statuses.iter().filter(|s| s.env == env && s.app == app)));
    let problems: Vec<Problem> = problems.iter().filter(|p| p.concerns(env, app)).cloned().collect();
    if !problems.is_empty() {
        out.push('\n');
        out.push_str(&notes(&problems, color));
    }
    out
}

fn lock_age(owner: &LockOwner, now: SystemTime) -> String {
    table::since(&owner.since, now).map_or_else(|| "?".to_owned(), table::age)
}

/// One host's deploy lock, for `kai lock --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub env: String,
    pub app: String,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub lock: Option<LockOwner>,
    /// Seconds since the lock was taken, when its time can be read.
    pub age_secs: Option<u64>,
    /// When the host stopped a step of that deploy because its kai went away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandoned: Option<String>,
}

pub fn lock_views(statuses: &[HostStatus], now: SystemTime) -> Vec<LockView> {
    statuses
        .iter()
        .map(|s| LockView {
            env: s.env.clone(),
            app: s.app.clone(),
            host: s.host.clone(),
            error: s.error.clone(),
            lock: s.lock.clone(),
            age_secs: s.lock.as_ref().and_then(|l| table::since(&l.since, now)).map(|d| d.as_secs()),
            abandoned: s.abandoned.clone(),
        })
        .collect()
}

/// `kai lock <env> <app>`: who holds the deploy lock on each host, and for how long.
pub fn render_locks(statuses: &[HostStatus], now: SystemTime) -> String {
    let header: &[&str] =
        if statuses.iter().any(|s| s.lock.is_some()) { &["host", "lock", "pid", "since", "age", "command"] } else { &["host", "lock"] };
    let mut table = Table::new(header);
    for s in statuses {
        match (&s.error, &s.lock) {
            (Some(_), _) => table.row([s.host.as_str(), "?"]),
            (None, None) => table.row([s.host.as_str(), "-"]),
            (None, Some(l)) => table.row([
                s.host.clone(),
                format!("{}@{}", l.user, l.machine),
                // A lock held by hand has no process.
                if l.hold.is_some() { "-".to_owned() } else { l.pid.to_string() },
                table::time(&l.since),
                lock_age(l, now),
                l.command.clone(),
            ]),
        }
    }
    let mut out = table.render();
    for s in statuses {
        if let Some(when) = &s.abandoned {
            out.push_str(&format!(
                "{}: its kai went away during a step (killed, or its connection lost); the host stopped that step at {}\n",
                s.host,
                table::time(when)
            ));
        }
    }
    // A hold's message, once for the hosts that hold the same one; escaped: a host holds it.
    let mut holds: Vec<(&str, Vec<&str>)> = Vec::new();
    for s in statuses {
        if let Some(message) = s.lock.as_ref().and_then(|l| l.hold.as_deref()) {
            match holds.iter_mut().find(|(m, _)| *m == message) {
                Some((_, hosts)) => hosts.push(&s.host),
                None => holds.push((message, vec![&s.host])),
            }
        }
    }
    for (message, hosts) in holds {
        out.push_str(&format!("held by hand on {}: {}\n", hosts.join(", "), table::printable(message)));
    }
    let problems: Vec<Problem> = problems(statuses).into_iter().filter(|p| matches!(p, Problem::Unreachable { .. })).collect();
    if !problems.is_empty() {
        out.push('\n');
        out.push_str(&notes(&problems, false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(env: &str, app: &str, host: &str, current: Option<&str>) -> HostStatus {
        let facts =
            HostFacts { current: current.map(Into::into), releases: current.into_iter().map(Into::into).collect(), ..HostFacts::default() };
        HostStatus::read(env, app, host, false, facts, None)
    }

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2026-01-01T10:00:00Z").unwrap()
    }

    #[test]
    fn a_fleet_in_step_is_a_plain_matrix() {
        let statuses = [
            at("prod", "hello", "app1", Some("1.0.0")),
            at("prod", "hello", "app2", Some("1.0.0")),
            at("test", "hello", "web1", Some("1.1.0")),
            at("test", "jms", "web1", Some("2.0.0")),
        ];
        assert_eq!(problems(&statuses), []);
        assert_eq!(render_matrix(&statuses, &[], false), "app    prod   test\nhello  1.0.0  1.1.0\njms           2.0.0\n");
    }

    #[test]
    fn hosts_that_disagree_are_drift_and_the_odd_one_is_named() {
        let statuses = [
            at("test", "hello", "web1", Some("1.1.0")),
            at("test", "hello", "web2", Some("1.0.0")),
            at("test", "hello", "web3", Some("1.0.0")),
        ];
        let found = problems(&statuses);
        assert!(matches!(&found[..], [Problem::Drift { odd, .. }] if odd == &["web1"]), "{found:?}");
        let text = render_matrix(&statuses, &found, false);
        assert!(
            text.starts_with("app    test\nhello  1.0.0/1.1.0 *\n\n* hello in test: hosts disagree: web1 1.1.0, web2 1.0.0, web3 1.0.0\n"),
            "{text}"
        );
        let env = render_env("test", &statuses, &found, false);
        assert!(env.starts_with("app    web1     web2   web3\nhello  1.1.0 *  1.0.0  1.0.0\n"), "{env}");
    }

    #[test]
    fn an_unreachable_host_is_marked_and_the_others_still_shown() {
        let statuses = [
            at("test", "hello", "web1", Some("1.0.0")),
            HostStatus::unreachable("test", "hello", "web2", false, "connection refused".into()),
        ];
        let found = problems(&statuses);
        let text = render_matrix(&statuses, &found, false);
        assert!(
            text.starts_with("app    test\nhello  1.0.0 ?\n\n? web2 in test could not be read (hello): connection refused\n"),
            "{text}"
        );
        assert!(text.contains("kai check --hosts test"), "{text}");
        assert!(render_env("test", &statuses, &found, false).starts_with("app    web1   web2\nhello  1.0.0  ?\n"));
    }

    #[test]
    fn a_failing_health_check_is_marked() {
        let mut sick = at("test", "hello", "web1", Some("1.0.0"));
        sick.healthy = Some(false);
        let statuses = [sick];
        let found = problems(&statuses);
        assert!(render_matrix(&statuses, &found, false)
            .starts_with("app    test\nhello  1.0.0 !\n\n! hello in test: web1 runs 1.0.0 and fails its health check\n"));
    }

    #[test]
    fn an_app_reporting_another_version_than_current_is_drift() {
        let mut s = at("test", "hello", "web1", Some("1.1.0"));
        s.reported = Some("1.0.0".into());
        let found = problems(&[s]);
        assert_eq!(
            found[0].describe(),
            "hello in test: web1 points current at 1.1.0 but the app reports 1.0.0 (switched without a restart?)"
        );
    }

    #[test]
    fn the_detail_shows_every_fact_of_every_host() {
        let mut web1 = at("test", "hello", "web1", Some("1.1.0"));
        web1.healthy = Some(true);
        web1.reported = Some("1.1.0".into());
        web1.releases = vec!["1.1.0".into(), "1.0.0".into()];
        web1.lock = Some(LockOwner {
            user: "ann".into(),
            machine: "ws1".into(),
            pid: 7,
            since: "2026-01-01T09:56:48Z".into(),
            command: "kai deploy test hello".into(),
            hold: None,
        });
        let mut web3 = at("test", "hello", "web3", Some("1.1.0"));
        web3.standby = true;
        web3.in_rotation = Some(false);
        let statuses = [web1, web3, HostStatus::unreachable("test", "hello", "web4", false, "no route".into())];
        let text = render_app("test", "hello", &statuses, &problems(&statuses), now(), false);
        let table: Vec<&str> = text.lines().take(4).collect();
        assert_eq!(
            table,
            [
                "host  role     current  reports  health  rotation  lock                releases",
                "web1  active   1.1.0 #  1.1.0    ok      in        ann@ws1 for 3m 12s  1.1.0 1.0.0",
                "web3  standby  1.1.0    -        -       out       -                   1.1.0",
                "web4  active   ?",
            ]
        );
    }

    #[test]
    fn an_active_server_out_of_rotation_and_a_stale_lock_that_started_are_problems() {
        let mut web1 = at("test", "hello", "web1", Some("1.1.0"));
        web1.in_rotation = Some(false);
        web1.lock = Some(crate::facts::parse_lock_owner(
            r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T08:00:00Z","command":"kai deploy test hello"}"#,
        ));
        web1.lock_alive = Some(false);
        web1.started = Some("{}".into());
        let mut standby = at("test", "hello", "web3", Some("1.1.0"));
        standby.standby = true;
        standby.in_rotation = Some(false);
        let found = problems(&[web1, standby]);
        let said: Vec<String> = found.iter().map(Problem::describe).collect();
        assert_eq!(said.len(), 2, "the standby out of rotation is as it should be: {said:?}");
        assert_eq!(said[0], "hello in test: web1 is an active server out of rotation");
        assert!(said[1].contains("interrupted") && said[1].contains("stale"), "{}", said[1]);
        assert!(notes(&found, false).contains("`kai unlock test hello`"));
    }

    #[test]
    fn a_process_of_another_release_is_marked_and_a_lock_whose_step_was_cut_says_so() {
        let mut web1 = at("test", "hello", "web1", Some("1.1.0"));
        web1.orphans = vec![ReleaseProcess { pid: 7591, release: "1.0.0".into(), deleted: false }];
        web1.lock = Some(crate::facts::parse_lock_owner(
            r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T08:00:00Z","command":"kai deploy test hello"}"#,
        ));
        web1.abandoned = Some("2026-01-01T08:01:00Z".into());
        let statuses = [web1];
        let found = problems(&statuses);
        let text = render_env("test", &statuses, &found, false);
        assert!(text.starts_with("app    web1\nhello  1.1.0 #+\n"), "{text}");
        assert!(text.contains("+ hello in test: web1 runs pid 7591 (1.0.0) from a release that is not the current one"), "{text}");
        assert!(text.contains("its kai went away during a step on web1, and the host stopped that step"), "{text}");
        assert!(text.contains("`kai ps test hello`"), "{text}");
    }

    #[test]
    fn a_lock_kept_after_a_failed_put_back_says_so_and_what_to_do() {
        let mut web1 = at("test", "hello", "web1", Some("1.1.0"));
        web1.lock = Some(crate::facts::parse_lock_owner(
            r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T08:00:00Z","command":"kai deploy test hello"}"#,
        ));
        web1.lock_alive = Some(false);
        web1.started = Some("{}".into());
        web1.lock_kept = Some("kept after a failed put-back: web1 could not be put back (start: exit status 1)".into());
        let found = problems(&[web1]);
        let said = notes(&found, false);
        assert!(said.contains("locked by ann@ws1 (pid 1) since 2026-01-01T08:00:00Z: kai deploy test hello on web1; kept after a failed put-back: web1 could not be put back (start: exit status 1)"), "{said}");
        assert!(!said.contains("stale"), "{said}");
        assert!(said.contains("look at the server that could not be put back"), "{said}");
    }

    #[test]
    fn a_balancer_that_cannot_be_read_is_a_mark_of_its_own_and_rotation_is_unknown() {
        let mut web1 = at("test", "hello", "web1", Some("1.0.0"));
        web1.healthy = Some(false);
        web1.rotation_unknown("HAProxy at 127.0.0.1:9999: connection refused");
        let statuses = [web1];
        let found = problems(&statuses);
        assert_eq!(statuses[0].in_rotation, None, "never true when it cannot be known");
        let text = render_env("test", &statuses, &found, false);
        assert!(text.starts_with("app    web1\nhello  1.0.0 %!\n"), "{text}");
        assert!(text.contains("% hello in test: the balancer could not be read (HAProxy at 127.0.0.1:9999: connection refused): whether web1 is in rotation is unknown"), "{text}");
        assert!(text.contains("! hello in test: web1 runs 1.0.0 and fails its health check"), "the health result is kept: {text}");
        let json = serde_json::to_value(&statuses[0]).expect("serializes");
        assert_eq!(json["in_rotation"], serde_json::Value::Null);
        let detail = render_app("test", "hello", &statuses, &found, now(), false);
        assert!(detail.lines().nth(1).is_some_and(|l| l.contains("FAILING  ?")), "{detail}");
    }

    #[test]
    fn locks_show_holder_and_age() {
        let mut web2 = at("test", "hello", "web2", Some("1.0.0"));
        web2.lock = Some(crate::facts::parse_lock_owner(
            r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T08:00:00Z","command":"kai deploy test hello"}"#,
        ));
        let statuses = [at("test", "hello", "web1", Some("1.0.0")), web2];
        assert_eq!(
            render_locks(&statuses, now()),
            "host  lock     pid  since                age     command\nweb1  -\nweb2  ann@ws1  1    2026-01-01 08:00:00  2h 00m  kai deploy test hello\n"
        );
        assert_eq!(lock_views(&statuses, now())[1].age_secs, Some(7200));
        assert_eq!(render_locks(&statuses[..1], now()), "host  lock\nweb1  -\n");
    }

    #[test]
    fn a_hold_shows_its_message_escaped_is_never_stale_and_says_how_to_release_it() {
        let hold = crate::facts::parse_lock_owner(
            r#"{"user":"ann","machine":"ws1","pid":0,"since":"2026-01-01T08:00:00Z","command":"kai lock test hello --hold","hold":"freeze \u001b[2J for incident 7"}"#,
        );
        let statuses: Vec<HostStatus> = ["web1", "web2"]
            .into_iter()
            .map(|host| {
                let mut s = at("test", "hello", host, Some("1.0.0"));
                s.lock = Some(hold.clone());
                s.lock_alive = Some(false);
                s
            })
            .collect();
        let text = render_locks(&statuses, now());
        assert!(text.ends_with("held by hand on web1, web2: freeze \\u{1b}[2J for incident 7\n"), "{text}");
        let found = problems(&statuses);
        let Some(Problem::Locked { stale, .. }) = found.iter().find(|p| matches!(p, Problem::Locked { .. })) else { panic!("{found:?}") };
        assert!(!stale, "a hold is never stale");
        let said = notes(&found, false);
        assert!(said.contains("hello in test: locked on web1, web2 by ann@ws1 (held by hand) since"), "{said}");
        assert!(said.contains("`kai unlock test hello` releases it when the hold is over"), "{said}");
        assert!(!said.chars().any(|c| c.is_control() && c != '\n'), "{said}");
    }

    #[test]
    fn only_a_bare_version_counts_as_a_reported_version() {
        assert_eq!(reported_version("1.2.0\n").as_deref(), Some("1.2.0"));
        assert_eq!(reported_version("v2.0.0-SNAPSHOT").as_deref(), Some("2.0.0-SNAPSHOT"));
        for body in ["ready\n", "OK", "", "{\"status\":\"UP\"}", "1.0 but degraded", "42"] {
            assert_eq!(reported_version(body), None, "{body:?}");
        }
    }
}
