//! The planner: from the configuration, the release to install and the facts read
//! from each host, every step of one app's deploy, per host, in order, with what
//! undoes each switch. Pure: the caller passes everything in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
use crate::command::Command;
use crate::config::{App, BalancerKind, Canary, Config, Environment, HealthCheck, OnFailure};
use crate::facts::{probe_command, HostFacts, LockOwner};
use crate::history;
use crate::local::LocalBuild;
use crate::maven::Packaging;
use crate::placement::host_vars;
pub use crate::placement::{access, app_home, placements, Placement, PlacementError, Role};
use crate::remote::{self, DownloadLimits};
use crate::rollout;
use crate::rotation::{BalancerNameError, Rotation};
use crate::run_settings::{self, RunSettings, Runs};
use crate::session::Access;
pub use crate::step::Step;
use crate::step::{Action, JudgeBy, OutputCheck, StepKind};

/// The artifact to install, resolved and checksummed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release's name on the hosts: the version, or for a local build the version
    /// and its checksum ([`crate::local::label`]).
    pub version: String,
    pub file_name: String,
    pub checksum: Checksum,
    pub size: Option<u64>,
    pub source: Source,
    /// Set for a build pushed from this machine rather than taken from the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBuild>,
    /// Set by `kai promote`: the environment whose hosts ran exactly this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
}

/// How the artifact reaches the hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// kai has it here (downloaded and verified) and uploads it.
    Push { local: PathBuf },
    /// Each host downloads it; `auth`: with the repository credentials.
    Pull { url: String, auth: bool },
}

impl Source {
    /// Where the hosts get the artifact from, in words.
    pub fn describe(&self) -> String {
        match self {
            Source::Push { local } => format!("kai pushes {}", local.display()),
            Source::Pull { url, .. } => format!("hosts download {url}"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Makes temporary names unique to this run.
    pub run_id: String,
    /// Redeploy where the version already runs.
    pub force: bool,
    /// Only these hosts (empty: all).
    pub only: Vec<String>,
}

/// One host of the app in this environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub host: String,
    pub role: Role,
    /// The app home on that host, as the transport will `cd` into it.
    pub home: String,
    /// How kai enters the host for this app.
    pub access: Access,
    /// The version `current` pointed to before.
    pub from: Option<String>,
    /// False when the host already runs the version (and `--force` is not given).
    pub change: bool,
    /// The host had a `disabled` marker (a former standby, or left drained).
    pub disabled: bool,
    /// Why it changes when it already runs the version: forced, not healthy, out of
    /// rotation, or its settings differ (one line per property, secrets masked).
    #[serde(default)]
    pub why: Vec<String>,
}

impl Target {
    /// It runs the version already: it is restarted in place, its settings rewritten.
    pub fn in_place(&self, version: &str) -> bool {
        self.change && self.from.as_deref() == Some(version)
    }
}

/// The steps of one host in one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSteps {
    pub host: String,
    pub steps: Vec<Step>,
}

/// One active server's switch and what undoes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRoll {
    pub host: String,
    pub roll: Vec<Step>,
    pub undo: Vec<Step>,
}

/// Every step of one app's deploy in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPlan {
    pub env: String,
    pub app: String,
    pub version: String,
    /// The run its temporary names and history records belong to, and the time its
    /// history records carry.
    pub run_id: String,
    pub since: String,
    /// A deploy, or a rollback to a release already on the hosts.
    pub action: history::Action,
    pub targets: Vec<Target>,
    /// Taken on every target before anything else, each host then read again: the
    /// first host alone (so of two deploys started together one wins cleanly), then
    /// all the others at once.
    pub lock: Vec<HostSteps>,
    /// Fetch, verify, unpack, render properties (all hosts in parallel).
    pub stage: Vec<HostSteps>,
    /// Active servers to switch, in rollout order.
    pub roll: Vec<ServerRoll>,
    /// Indexes into `roll`: the servers switched at once, wave after wave.
    pub waves: Vec<Vec<usize>>,
    #[serde(with = "on_failure_word")]
    pub on_failure: OnFailure,
    /// Standby servers, after every active one succeeded.
    pub standby: Vec<HostSteps>,
    /// Prune old releases, after success.
    pub finish: Vec<HostSteps>,
    /// Clean up after a failed stage.
    pub abort: Vec<HostSteps>,
    /// Released at the end unless a server was left in an unknown state.
    pub unlock: Vec<HostSteps>,
    /// Set when the release is a local build: its history records say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBuild>,
    /// Set by `kai promote`: the environment the release was promoted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// What a person should know before it runs (a release whose settings were not
    /// recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AppPlan {
    /// True when every host already runs the version: a deploy changes nothing.
    pub fn is_noop(&self) -> bool {
        self.stage.is_empty() && self.roll.is_empty() && self.standby.is_empty()
    }

    pub fn target(&self, host: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.host == host)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.host.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Placement(#[from] PlacementError),
    #[error("{app} has no earlier release on its servers in {env} to roll back to")]
    NoPrevious { app: String, env: String },
    #[error("{app}: the servers disagree on the previous release ({seen}); name one with --to")]
    PreviousDiffers { app: String, seen: String },
    #[error("{host}: {app} {version} is not there anymore (releases there: {available}); roll back to one of those with --to")]
    ReleaseGone { app: String, host: String, version: String, available: String },
    #[error(
        "{app} {version} is on none of its servers in {env} (releases on every server: {available}); roll back to one of those with --to"
    )]
    NoSuchRelease { app: String, env: String, version: String, available: String },
    #[error(transparent)]
    Balancer(#[from] BalancerNameError),
    #[error("{host}: {free} MiB free in the app home, {needed} MiB needed to stage {app} (3 × the artifact)")]
    DiskSpace { app: String, host: String, free: u64, needed: u64 },
    #[error("{host}: {app} {version} is current there but differs from the repository's artifact (recorded {recorded}, expected {expected}); deploy another version first")]
    CurrentDiffers { app: String, host: String, version: String, recorded: String, expected: String },
}

/// The app's health check on `host` running `version`, polled for at most `timeout`,
/// then for `stable` more; `None` when the app has no `[health]`.
pub fn health_step(environment: &Environment, app: &App, host: &str, version: &str, timeout: Duration, stable: Duration) -> Option<Step> {
    let home = app_home(&environment.hosts[host], app);
    let vars = host_vars(environment, app, host, version, &home);
    let action = match &app.health.check {
        HealthCheck::Http { url } => Action::HttpHealth { url: url.render(&vars), timeout, stable },
        HealthCheck::Command { argv } => Action::CommandHealth { command: Command::new(argv.clone()).cwd("current"), timeout, stable },
        HealthCheck::None => return None,
    };
    Some(Step::new(StepKind::Health, action))
}

/// A deploy's history record on `target`: time and author from the lock owner, the
/// run id, the result still to come (`Started`).
#[allow(clippy::too_many_arguments)]
pub fn started_record(
    owner: &LockOwner,
    run: &str,
    env: &str,
    app: &str,
    action: history::Action,
    target: &Target,
    version: &str,
    hosts: &[String],
) -> history::Record {
    history::Record {
        time: owner.since.clone(),
        user: owner.user.clone(),
        machine: owner.machine.clone(),
        env: env.to_owned(),
        app: app.to_owned(),
        action,
        from: target.from.clone(),
        to: version.to_owned(),
        result: history::Outcome::Started,
        duration_ms: 0,
        host: target.host.clone(),
        hosts: hosts.to_vec(),
        detail: None,
        run: Some(run.to_owned()),
        local: None,
        promoted_from: None,
        canary: None,
    }
}

/// Where each host keeps its history of deploys.
pub const HISTORY_FILE: &str = ".kai/history.jsonl";

/// The step that appends `record` to a host's history (`kind`: started, or the record at the end).
pub fn history_step(kind: StepKind, record: &crate::history::Record) -> Step {
    Step::run(kind, remote::append_line(HISTORY_FILE, &record.to_line()))
}

/// Takes the deploy lock (see [`remote::LOCK`]), then reads the host again: what a
/// deploy plans from is what the host holds once nobody else can change it.
pub fn lock_steps(owner: &LockOwner, properties_file: Option<&str>) -> Vec<Step> {
    let owner = serde_json::to_string(owner).expect("a lock owner always serializes");
    vec![Step::run(StepKind::Lock, remote::lock(&owner)), Step::run(StepKind::Probe, probe_command(properties_file))]
}

pub fn unlock_steps() -> Vec<Step> {
    vec![Step::run(StepKind::Unlock, Command::new(["rm", "-rf", ".kai/lock"]))]
}

/// Plans one app's deploy of `release` to `env`.
pub fn plan_app(
    config: &Config,
    env: &str,
    app: &App,
    release: &Release,
    facts: &BTreeMap<String, HostFacts>,
    owner: &LockOwner,
    options: &Options,
) -> Result<AppPlan, PlanError> {
    let environment = &config.environments[env];
    let targets = targets(config, env, app, &release.version, facts, options, true)?;
    let rotation = Rotation { environment, app, version: &release.version };
    let planner = Planner {
        environment,
        app,
        version: &release.version,
        options,
        keep: config.defaults.keep_releases as usize,
        rotation: &rotation,
        fetch_timeout: config.defaults.fetch_timeout,
        owner,
        action: history::Action::Deploy,
        local: release.local.as_ref(),
        promoted_from: release.promoted_from.as_deref(),
    };
    let stager = Stager { planner: &planner, release };
    let mut plan = AppPlan::new(environment, app, &release.version, history::Action::Deploy, &targets, owner, &options.run_id);
    plan.local = release.local.clone();
    plan.promoted_from = release.promoted_from.clone();
    let none = HostFacts::default();
    for target in targets.iter().filter(|t| t.change) {
        let facts = facts.get(&target.host).unwrap_or(&none);
        if target.in_place(&release.version) {
            stager.check_current(&target.host, facts)?;
            continue;
        }
        plan.stage.push(HostSteps { host: target.host.clone(), steps: stager.stage(&target.host, facts)? });
        plan.abort.push(HostSteps { host: target.host.clone(), steps: stager.abort() });
        let prune = planner.prune(target, facts);
        if !prune.is_empty() {
            plan.finish.push(HostSteps { host: target.host.clone(), steps: prune });
        }
    }
    planner.switches(&mut plan, targets, facts, Some(&stager))?;
    Ok(plan)
}

/// Plans putting `app` back on an earlier release still on its hosts: `to`, or the
/// release staged before the current one. Nothing is staged or pruned.
pub fn plan_rollback(
    config: &Config,
    env: &str,
    app: &App,
    to: Option<&str>,
    facts: &BTreeMap<String, HostFacts>,
    owner: &LockOwner,
    options: &Options,
) -> Result<AppPlan, PlanError> {
    let environment = &config.environments[env];
    let version = rollback_version(config, env, app, to, facts, &options.only)?;
    let targets = targets(config, env, app, &version, facts, options, false)?;
    let rotation = Rotation { environment, app, version: &version };
    let planner = Planner {
        environment,
        app,
        version: &version,
        options,
        keep: config.defaults.keep_releases as usize,
        rotation: &rotation,
        fetch_timeout: config.defaults.fetch_timeout,
        owner,
        action: history::Action::Rollback,
        local: facts.values().find_map(|f| f.builds.get(&version)),
        promoted_from: None,
    };
    let mut plan = AppPlan::new(environment, app, &version, history::Action::Rollback, &targets, owner, &options.run_id);
    plan.local = planner.local.cloned();
    planner.switches(&mut plan, targets, facts, None)?;
    Ok(plan)
}

/// The release to roll back to, present on every host of the app.
pub fn rollback_version(
    config: &Config,
    env: &str,
    app: &App,
    to: Option<&str>,
    facts: &BTreeMap<String, HostFacts>,
    only: &[String],
) -> Result<String, PlanError> {
    let none = HostFacts::default();
    let hosts = placements(config, env, app, only)?;
    let facts_of = |host: &str| facts.get(host).unwrap_or(&none);
    let version = match to {
        Some(version) => version.to_owned(),
        None => {
            let mut previous: Vec<(String, String)> = hosts
                .iter()
                .filter(|p| p.role == Role::Active)
                .filter_map(|p| {
                    // The newest release staged before the current one: one staged after
                    // it never ran here (a deploy stopped or put back before this host).
                    let f = facts_of(&p.host);
                    let before = match f.current.as_deref() {
                        Some(current) => f.releases.iter().skip_while(|r| r.as_str() != current).nth(1),
                        None => f.releases.first(),
                    };
                    before.map(|r| (r.clone(), p.host.clone()))
                })
                .collect();
            previous.sort();
            previous.dedup_by(|a, b| a.0 == b.0);
            match previous.as_slice() {
                [] => return Err(PlanError::NoPrevious { app: app.name.clone(), env: env.into() }),
                [(version, _)] => version.clone(),
                several => {
                    let seen = several.iter().map(|(v, h)| format!("{h}: {v}")).collect::<Vec<_>>().join(", ");
                    return Err(PlanError::PreviousDiffers { app: app.name.clone(), seen });
                }
            }
        }
    };
    if !hosts.iter().any(|p| facts_of(&p.host).releases.contains(&version)) {
        let mut everywhere: Vec<&String> = hosts.first().map(|p| facts_of(&p.host).releases.iter().collect()).unwrap_or_default();
        everywhere.retain(|r| hosts.iter().all(|p| facts_of(&p.host).releases.contains(r)));
        let available =
            if everywhere.is_empty() { "none".to_owned() } else { everywhere.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ") };
        return Err(PlanError::NoSuchRelease { app: app.name.clone(), env: env.into(), version, available });
    }
    for p in &hosts {
        let f = facts_of(&p.host);
        if !f.releases.contains(&version) {
            return Err(PlanError::ReleaseGone {
                app: app.name.clone(),
                host: p.host.clone(),
                version,
                available: if f.releases.is_empty() { "none".into() } else { f.releases.join(", ") },
            });
        }
    }
    Ok(version)
}

/// The hosts of the app, each with whether it needs to change to run `version`: a
/// host is left alone only when it runs it, is in rotation and passes its health
/// check (docs/deploy.md), or, for a standby, runs it and is disabled.
fn targets(
    config: &Config,
    env: &str,
    app: &App,
    version: &str,
    facts: &BTreeMap<String, HostFacts>,
    options: &Options,
    settings_matter: bool,
) -> Result<Vec<Target>, PlanError> {
    let none = HostFacts::default();
    let environment = &config.environments[env];
    Ok(placements(config, env, app, &options.only)?
        .into_iter()
        .map(|p| {
            let facts = facts.get(&p.host).unwrap_or(&none);
            let from = facts.current.clone();
            let mut why = Vec::new();
            if from.as_deref() == Some(version) {
                if options.force {
                    why.push("forced".to_owned());
                }
                match p.role {
                    Role::Active if facts.healthy == Some(false) => why.push("its health check fails".to_owned()),
                    Role::Active if facts.in_rotation == Some(false) => why.push("it is out of the balancer's rotation".to_owned()),
                    Role::Standby if !facts.disabled => why.push("a standby without its disabled marker".to_owned()),
                    _ => {}
                }
                if settings_matter {
                    why.extend(settings_changes(environment, app, &p.host, version, facts));
                }
            }
            Target {
                host: p.host,
                role: p.role,
                home: p.home,
                access: p.access,
                change: from.as_deref() != Some(version) || !why.is_empty(),
                from,
                disabled: facts.disabled,
                why,
            }
        })
        .collect())
}

/// The properties file kai writes for `app` on `host` running `version`; `None` when
/// the app has no `properties_file`.
pub fn rendered_properties(environment: &Environment, app: &App, host: &str, version: &str) -> Option<String> {
    properties_text(environment, app, host, version, false)
}

pub use crate::mask::is_secret_key;

/// The properties text; with `masked`, as [`crate::mask::value`] shows values.
fn properties_text(environment: &Environment, app: &App, host: &str, version: &str, masked: bool) -> Option<String> {
    app.properties_file.as_ref()?;
    let home = app_home(&environment.hosts[host], app);
    let vars = host_vars(environment, app, host, version, &home);
    let mut merged: Vec<(&str, String)> = app.properties.iter().map(|(k, t)| (k.as_str(), t.render(&vars))).collect();
    let overrides = app.envs.get(&environment.name).map(|p| p.properties.as_slice()).unwrap_or_default();
    for (key, template) in overrides {
        let value = template.render(&vars);
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => merged.push((key, value)),
        }
    }
    let value = |k: &str, v: &str| if masked { escape_value(&crate::mask::value(k, v)) } else { escape_value(v) };
    Some(merged.iter().map(|(k, v)| format!("{}={}\n", escape_key(k), value(k, v))).collect())
}

/// The settings a release runs with, as recorded beside its checksum on the host
/// (`settings sha256:…`): the rendered properties and the start, stop and health
/// commands. A host whose recorded settings differ is restarted with the new ones.
pub fn settings_line(environment: &Environment, app: &App, host: &str, version: &str) -> String {
    let home = app_home(&environment.hosts[host], app);
    let vars = host_vars(environment, app, host, version, &home);
    let health = match &app.health.check {
        HealthCheck::Http { url } => url.render(&vars),
        HealthCheck::Command { argv } => argv.join(" "),
        HealthCheck::None => String::new(),
    };
    let properties = rendered_properties(environment, app, host, version);
    format!("settings {}", crate::fingerprint::of(&(properties, &app.start, &app.stop, health)))
}

/// How the settings of the release running on a host differ from what the
/// configuration says now: property by property (secrets masked), or the scripts.
fn settings_changes(environment: &Environment, app: &App, host: &str, version: &str, facts: &HostFacts) -> Vec<String> {
    let mut changes = Vec::new();
    if let Some(file) = &app.properties_file {
        let wanted = rendered_properties(environment, app, host, version).unwrap_or_default();
        match &facts.properties {
            Some(running) if *running != wanted => changes.extend(property_diff(running, &wanted)),
            Some(_) => {}
            None => changes.push(format!("its {file} is missing")),
        }
    }
    let recorded = facts.settings.get(version);
    if changes.is_empty() && recorded.is_some_and(|line| *line != settings_line(environment, app, host, version)) {
        changes.push("its start, stop or health settings changed".to_owned());
    }
    changes
}

/// The `key=value` lines of a properties file kai wrote, in order (blank lines and
/// comments left out; `\=` in a key is not its end).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut at = None;
            let mut escaped = false;
            for (i, c) in l.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '=' if !escaped => {
                        at = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            match at {
                Some(i) => (l[..i].to_owned(), l[i + 1..].to_owned()),
                None => (l.to_owned(), String::new()),
            }
        })
        .collect()
}

/// A property whose value differs, as [`crate::mask::value`] shows values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyDiff {
    pub key: String,
    /// Null where the key is not set.
    pub a: Option<String>,
    pub b: Option<String>,
}

/// Every property whose value differs between two properties files, in `b`'s order
/// then the keys only `a` has; values as [`crate::mask::value`] shows them.
pub fn properties_diff(a: &str, b: &str) -> Vec<PropertyDiff> {
    let (a, b) = (parse_properties(a), parse_properties(b));
    let mut keys: Vec<&String> = b.iter().map(|(k, _)| k).collect();
    keys.extend(a.iter().map(|(k, _)| k).filter(|k| !b.iter().any(|(x, _)| x == *k)));
    keys.into_iter()
        .filter_map(|key| {
            let value = |side: &[(String, String)]| side.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let (va, vb) = (value(&a), value(&b));
            if va == vb {
                return None;
            }
            let shown = |v: &Option<String>| v.as_deref().map(|v| crate::mask::value(key, v).into_owned());
            let (a, b) = (shown(&va), shown(&vb));
            // Values that differ only where they are masked (a password in a URL) say so.
            let hidden = |v: Option<String>| v.map(|v| format!("{v} (its credentials differ, not shown)"));
            let (a, b) = if a == b && !is_secret_key(key) { (hidden(a), hidden(b)) } else { (a, b) };
            Some(PropertyDiff { key: key.clone(), a, b })
        })
        .collect()
}

/// `key: old -> new` for each property that differs; values of keys named like a
/// secret are never shown.
pub fn property_diff(old: &str, new: &str) -> Vec<String> {
    let shown = |v: &Option<String>| v.as_deref().map_or_else(|| "(none)".to_owned(), crate::table::printable);
    properties_diff(old, new)
        .into_iter()
        .map(|p| match (is_secret_key(&p.key), &p.a, &p.b) {
            (true, Some(_), Some(_)) => format!("{}: changed (secret, not shown)", crate::table::printable(&p.key)),
            _ => format!("{}: {} -> {}", crate::table::printable(&p.key), shown(&p.a), shown(&p.b)),
        })
        .collect()
}

impl AppPlan {
    fn new(
        environment: &Environment,
        app: &App,
        version: &str,
        action: history::Action,
        targets: &[Target],
        owner: &LockOwner,
        run_id: &str,
    ) -> AppPlan {
        AppPlan {
            env: environment.name.clone(),
            app: app.name.clone(),
            version: version.to_owned(),
            run_id: run_id.to_owned(),
            since: owner.since.clone(),
            action,
            lock: targets
                .iter()
                .map(|t| HostSteps { host: t.host.clone(), steps: lock_steps(owner, app.properties_file.as_deref()) })
                .collect(),
            stage: Vec::new(),
            roll: Vec::new(),
            waves: Vec::new(),
            on_failure: app.on_failure.unwrap_or(environment.on_failure),
            standby: Vec::new(),
            finish: Vec::new(),
            abort: Vec::new(),
            unlock: targets.iter().map(|t| HostSteps { host: t.host.clone(), steps: unlock_steps() }).collect(),
            targets: Vec::new(),
            local: None,
            promoted_from: None,
            notes: Vec::new(),
        }
    }
}

struct Planner<'a> {
    environment: &'a Environment,
    app: &'a App,
    /// The version being deployed (or rolled back to).
    version: &'a str,
    rotation: &'a Rotation<'a>,
    options: &'a Options,
    keep: usize,
    /// How long fetching and unpacking the artifact may take.
    fetch_timeout: Duration,
    owner: &'a LockOwner,
    action: history::Action,
    /// Set when the release is a local build.
    local: Option<&'a LocalBuild>,
    /// Set by `kai promote`.
    promoted_from: Option<&'a str>,
}

impl<'a> Planner<'a> {
    fn version(&self) -> &str {
        self.version
    }

    fn release_dir(&self) -> String {
        format!("releases/{}", self.version())
    }

    fn temp_dir(&self) -> String {
        format!("releases/.tmp-{}-{}", self.version(), self.options.run_id)
    }

    /// The properties file into `dir`: a release already there gets it atomically; the
    /// staging folder (`staging`), which nothing reads until it is renamed, in place.
    fn properties(&self, host: &str, dir: &str, staging: bool) -> Option<Step> {
        let file = self.app.properties_file.as_ref()?;
        let contents = rendered_properties(self.environment, self.app, host, self.version)?;
        let shown = properties_text(self.environment, self.app, host, self.version, true)?;
        let path = format!("{dir}/{file}");
        let write = if staging { remote::put_masked(&path, &contents, &shown) } else { remote::write_masked(&path, &contents, &shown) };
        Some(Step::run(StepKind::Properties, write))
    }

    /// The start script of a release running with `settings`, in `current`, its output
    /// to the script log.
    fn start(&self, settings: &RunSettings) -> Step {
        let limit = self.app.start_timeout;
        Step::run(StepKind::Start, remote::run_logged(&settings.start, limit, None)).limit(limit + SCRIPT_GRACE)
    }

    fn stop(&self, settings: &RunSettings) -> Step {
        let limit = self.app.stop_timeout;
        Step::run(StepKind::Stop, remote::run_logged(&settings.stop, limit, None)).limit(limit + SCRIPT_GRACE)
    }

    /// Stops `release` with its `settings` if `current` points to it: an undo does not
    /// know whether the failure came before or after the switch.
    fn stop_if(&self, release: &str, settings: &RunSettings) -> Step {
        let limit = self.app.stop_timeout;
        Step::run(StepKind::Stop, remote::run_logged(&settings.stop, limit, Some(release))).limit(limit + SCRIPT_GRACE)
    }

    fn health(&self, settings: &RunSettings) -> Option<Step> {
        settings.health_step(self.app.health.timeout, self.app.health.stable)
    }

    /// How `release` runs on `host`: as recorded there when it was installed, else as
    /// the configuration says today (unknown when its recorded fingerprint says it was
    /// installed otherwise, or there is none).
    fn runs(&self, host: &str, release: &str, facts: &HostFacts) -> Runs {
        if let Some(recorded) = facts.run_settings.get(release) {
            return Runs { settings: recorded.clone(), source: run_settings::Source::Recorded };
        }
        let settings = RunSettings::configured(self.environment, self.app, host, release);
        let same = facts.settings.get(release).is_some_and(|line| *line == settings_line(self.environment, self.app, host, release));
        Runs { settings, source: if same { run_settings::Source::Configured } else { run_settings::Source::Unknown } }
    }

    /// How the release this plan switches to runs on `host`: a deploy installs it with
    /// today's configuration; a rollback goes back to it as it was installed.
    fn target_runs(&self, host: &str, facts: &HostFacts) -> Runs {
        match self.action {
            history::Action::Rollback => self.runs(host, self.version(), facts),
            _ => Runs {
                settings: RunSettings::configured(self.environment, self.app, host, self.version()),
                source: run_settings::Source::Configured,
            },
        }
    }

    /// The balancer names of the active servers in rotation when the rollout begins:
    /// the all-but-one guard counts these (docs/deploy.md).
    fn counted(&self, targets: &[Target], facts: &BTreeMap<String, HostFacts>) -> Result<Vec<String>, PlanError> {
        targets
            .iter()
            .filter(|t| t.role == Role::Active && facts.get(&t.host).and_then(|f| f.in_rotation) != Some(false))
            .map(|t| self.rotation.member(&t.host).map_err(PlanError::from))
            .collect()
    }

    /// The standby switches and the rolling switch of the active servers, in waves,
    /// each server guarded by the others counted in rotation.
    fn switches(
        &self,
        plan: &mut AppPlan,
        targets: Vec<Target>,
        facts: &BTreeMap<String, HostFacts>,
        stager: Option<&Stager<'_>>,
    ) -> Result<(), PlanError> {
        let hosts: Vec<String> = targets.iter().map(|t| t.host.clone()).collect();
        let none = HostFacts::default();
        let facts_of = |host: &str| facts.get(host).unwrap_or(&none);
        for target in targets.iter().filter(|t| t.change && t.role == Role::Standby) {
            plan.standby.push(HostSteps { host: target.host.clone(), steps: self.standby(target, &hosts, stager, facts_of(&target.host)) });
        }
        plan.notes = self.unknown_settings(&targets, facts);
        let rolling: Vec<&Target> = targets.iter().filter(|t| t.change && t.role == Role::Active).collect();
        let policy = self.app.rollout.unwrap_or(self.environment.rollout);
        let canary = self.canary();
        plan.waves = match canary {
            Some(canary) => rollout::with_canary(rolling.len(), policy.batch, canary.hosts),
            None => rollout::waves(rolling.len(), policy),
        };
        let counted = self.counted(&targets, facts)?;
        for wave in &plan.waves {
            let this_wave: Vec<String> = wave.iter().map(|&i| self.rotation.member(&rolling[i].host)).collect::<Result<_, _>>()?;
            let others: Vec<String> = counted.iter().filter(|s| !this_wave.contains(s)).cloned().collect();
            for &i in wave {
                let target = rolling[i];
                let guard = counted.contains(&self.rotation.member(&target.host)?).then_some(others.as_slice());
                plan.roll.push(self.roll(target, guard, &hosts, stager, facts_of(&target.host))?);
            }
        }
        if let (Some(canary), Some(first)) = (canary, plan.waves.first().filter(|_| plan.waves.len() > 1)) {
            let canary_hosts: Vec<&Target> = first.iter().map(|&i| rolling[i]).collect();
            if let Some(judge) = self.judge(canary, &canary_hosts, &targets, &counted)? {
                plan.roll[first.len() - 1].roll.push(judge);
            }
        }
        plan.targets = targets;
        Ok(())
    }

    /// The `[canary]` a deploy is judged by: the app's, else its environment's; none
    /// for a rollback (it goes back to what ran).
    fn canary(&self) -> Option<&'a Canary> {
        if self.action != history::Action::Deploy {
            return None;
        }
        self.app.canary.as_ref().or(self.environment.canary.as_ref())
    }

    /// The step that judges the canary wave against the other active servers that run
    /// something and are in rotation; none when there are none (a first install).
    fn judge(&self, canary: &Canary, wave: &[&Target], targets: &[Target], counted: &[String]) -> Result<Option<Step>, PlanError> {
        let in_wave = |host: &str| wave.iter().any(|t| t.host == host);
        let mut baseline_hosts = Vec::new();
        let mut baseline = Vec::new();
        for t in targets.iter().filter(|t| t.role == Role::Active && !in_wave(&t.host) && t.from.is_some()) {
            let member = self.rotation.member(&t.host)?;
            if counted.contains(&member) {
                baseline_hosts.push(t.host.clone());
                baseline.push(member);
            }
        }
        if baseline.is_empty() {
            return Ok(None);
        }
        let canary_members: Vec<String> = wave.iter().map(|t| self.rotation.member(&t.host)).collect::<Result<_, _>>()?;
        // The configuration checked that one of the two is there.
        let by = if canary.judge_command.is_empty() {
            JudgeBy::Haproxy { admin: self.rotation.admin(), backend: self.rotation.haproxy_target(&wave[0].host)?.backend }
        } else {
            JudgeBy::Command(Command::new(canary.judge_command.iter().map(|w| self.rotation.render(w, &wave[0].host))))
        };
        let policy = canary.policy.clone();
        let limit = policy.window * policy.max_windows + self.environment.balancer.drain_timeout + SCRIPT_GRACE;
        let judge = crate::step::Judge {
            by,
            canary: canary_members,
            baseline,
            canary_hosts: wave.iter().map(|t| t.host.clone()).collect(),
            baseline_hosts,
            policy,
        };
        Ok(Some(Step::new(StepKind::Judge, Action::Judge(Box::new(judge))).limit(limit)))
    }

    /// `guard`: the servers that must be in rotation before this one leaves it;
    /// `None` when this one is not in rotation (nothing to guard).
    fn roll(
        &self,
        target: &Target,
        guard: Option<&[String]>,
        hosts: &[String],
        stager: Option<&Stager<'_>>,
        facts: &HostFacts,
    ) -> Result<ServerRoll, PlanError> {
        let in_place = target.in_place(self.version());
        let new = self.target_runs(&target.host, facts).settings;
        let old = target.from.as_deref().map(|from| self.runs(&target.host, from, facts).settings);
        let mut roll = vec![self.started(target, hosts)];
        roll.extend(self.rotation.take_out(&target.host, guard)?);
        if let Some(old) = &old {
            roll.push(self.stop(old));
        }
        match stager {
            Some(stager) if in_place => roll.extend(stager.reconfigure(&target.host)),
            _ if in_place => {}
            _ => roll.extend(switch_to(self.version(), StepKind::Switch)),
        }
        roll.push(self.start(&new));
        roll.extend(self.health(&new));
        if target.disabled && self.environment.balancer.kind != BalancerKind::HealthFile {
            roll.push(Step::run(StepKind::Enable, Command::new(["rm", "-f", "disabled"])));
        }
        roll.extend(self.rotation.put_back(&target.host)?);
        let restore = stager.filter(|_| in_place).map(|s| s.restore(facts)).unwrap_or_default();
        let undo = self.undo(target, guard, restore, &new, old.as_ref())?;
        Ok(ServerRoll { host: target.host.clone(), roll, undo })
    }

    /// What puts a server back as it was: the new release stopped with its settings
    /// (or the old one, if the failure came before the switch), then the release it ran,
    /// started and checked as that release runs. `restore`: for a server restarted in
    /// place, what puts its settings back.
    fn undo(
        &self,
        target: &Target,
        guard: Option<&[String]>,
        restore: Vec<Step>,
        new: &RunSettings,
        old: Option<&RunSettings>,
    ) -> Result<Vec<Step>, PlanError> {
        let mut undo = self.rotation.take_out(&target.host, guard)?;
        undo.push(self.stop_if(self.version(), new));
        match (&target.from, old) {
            (Some(_), Some(old)) if target.in_place(self.version()) => {
                undo.extend(restore);
                undo.push(self.start(old));
                undo.extend(self.health(old));
                undo.extend(self.rotation.put_back(&target.host)?);
            }
            (Some(from), Some(old)) => {
                undo.push(self.stop_if(from, old));
                undo.extend(switch_to(from, StepKind::SwitchBack));
                undo.push(self.start(old));
                undo.extend(self.health(old));
                undo.extend(self.rotation.put_back(&target.host)?);
            }
            _ => undo.push(Step::run(StepKind::SwitchBack, Command::new(["rm", "-f", "current"]))),
        }
        Ok(undo)
    }

    fn standby(&self, target: &Target, hosts: &[String], stager: Option<&Stager<'_>>, facts: &HostFacts) -> Vec<Step> {
        let mut steps = vec![self.started(target, hosts), Step::run(StepKind::Disable, Command::new(["touch", "disabled"]))];
        if let Some(from) = &target.from {
            steps.push(self.stop(&self.runs(&target.host, from, facts).settings));
        }
        match stager {
            Some(stager) if target.in_place(self.version()) => steps.extend(stager.reconfigure(&target.host)),
            _ if target.in_place(self.version()) => {}
            _ => steps.extend(switch_to(self.version(), StepKind::Switch)),
        }
        steps
    }

    /// What the plan should say about releases whose settings were not recorded: a
    /// release the plan may put back (or, for a rollback, goes back to) runs with
    /// today's configuration, which may not be what it was installed with.
    fn unknown_settings(&self, targets: &[Target], facts: &BTreeMap<String, HostFacts>) -> Vec<String> {
        let none = HostFacts::default();
        let mut unknown: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for target in targets.iter().filter(|t| t.change) {
            let facts = facts.get(&target.host).unwrap_or(&none);
            let mut releases: Vec<&str> = target.from.as_deref().into_iter().collect();
            if self.action == history::Action::Rollback {
                releases.push(self.version());
            }
            for release in releases {
                if self.runs(&target.host, release, facts).source == run_settings::Source::Unknown {
                    unknown.entry(release).or_default().push(&target.host);
                }
            }
        }
        unknown
            .into_iter()
            .map(|(release, hosts)| {
                format!(
                    "{release} on {} has no record of the start, stop and health settings it was installed with (an older kai \
                     installed it): stopping or putting it back uses today's",
                    hosts.join(", ")
                )
            })
            .collect()
    }

    /// The history line that says this deploy starts changing `target`: the first
    /// step on a server, so a deploy killed after it shows as interrupted there.
    fn started(&self, target: &Target, hosts: &[String]) -> Step {
        let mut record = started_record(
            self.owner,
            &self.options.run_id,
            &self.environment.name,
            &self.app.name,
            self.action.clone(),
            target,
            self.version,
            hosts,
        );
        record.local = self.local.cloned();
        record.promoted_from = self.promoted_from.map(str::to_owned);
        Step::run(StepKind::Started, remote::started(&record.to_line()))
    }

    /// Keeps the newest `keep` releases, never the new one or the one it replaced.
    fn prune(&self, target: &Target, facts: &HostFacts) -> Vec<Step> {
        let protected = |r: &str| r == self.version() || Some(r) == target.from.as_deref();
        let mut kept = 1 + usize::from(target.from.as_deref().is_some_and(|f| f != self.version()));
        let mut doomed = Vec::new();
        for release in facts.releases.iter().filter(|r| !protected(r)) {
            if kept < self.keep {
                kept += 1;
            } else {
                doomed.push(release.as_str());
            }
        }
        if doomed.is_empty() {
            return Vec::new();
        }
        vec![Step::run(StepKind::Prune, remote::prune(&doomed))]
    }
}

/// How much longer than its own limit kai waits for a step that runs an app script
/// (the host stops the script at the limit, then kills it 5 s later).
const SCRIPT_GRACE: Duration = Duration::from_secs(15);

/// How long a host may take to connect to the repository.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The planner with the artifact to install: everything staging needs.
struct Stager<'a> {
    planner: &'a Planner<'a>,
    release: &'a Release,
}

impl<'a> std::ops::Deref for Stager<'a> {
    type Target = Planner<'a>;

    fn deref(&self) -> &Planner<'a> {
        self.planner
    }
}

impl Stager<'_> {
    fn download(&self) -> String {
        format!("downloads/{}", self.release.file_name)
    }

    fn stage(&self, host: &str, facts: &HostFacts) -> Result<Vec<Step>, PlanError> {
        let mut dirs = vec!["kai_mkdir", "releases", "downloads", ".kai/checksums"];
        if self.release.local.is_some() {
            dirs.push(crate::local::BUILDS_DIR);
        }
        let mut steps = vec![Step::run(StepKind::Prepare, Command::new(dirs))];
        let recorded = facts.checksums.get(self.version());
        let expected = self.release.checksum.to_string();
        let present = facts.releases.iter().any(|r| r == self.version());
        if present && recorded == Some(&expected) {
            steps.extend(self.properties(host, &self.release_dir(), false));
            steps.extend(self.record(host));
            return Ok(steps);
        }
        self.check_current(host, facts)?;
        self.check_disk(host, facts)?;
        for stale in &facts.stale {
            steps.push(Step::run(StepKind::Prepare, Command::new(["rm", "-rf", &format!("releases/{stale}")])));
        }
        steps.push(self.fetch());
        steps.extend(self.unpack());
        steps.extend(self.properties(host, &self.temp_dir(), true));
        if present {
            steps.push(Step::run(StepKind::Install, remote::replace(self.version())));
        }
        steps.push(Step::run(StepKind::Install, Command::new(["mv", "-T", &self.temp_dir(), &self.release_dir()])));
        steps.extend(self.record(host));
        steps.push(Step::run(StepKind::Install, Command::new(["rm", "-f", &self.download()])));
        Ok(steps)
    }

    /// A host whose current release is this version but not this artifact is refused:
    /// kai never rewrites the release that runs.
    fn check_current(&self, host: &str, facts: &HostFacts) -> Result<(), PlanError> {
        let recorded = facts.checksums.get(self.version());
        let expected = self.release.checksum.to_string();
        let present = facts.releases.iter().any(|r| r == self.version());
        if present && facts.current.as_deref() == Some(self.version()) && recorded != Some(&expected) {
            return Err(PlanError::CurrentDiffers {
                app: self.app.name.clone(),
                host: host.into(),
                version: self.version().into(),
                recorded: recorded.cloned().unwrap_or_else(|| "nothing".into()),
                expected,
            });
        }
        Ok(())
    }

    /// The record of the release on `host`: its checksum, then its settings; for a
    /// local build, who pushed it from where.
    fn record(&self, host: &str) -> Vec<Step> {
        let runs = RunSettings::configured(self.environment, self.app, host, self.version).to_line();
        let contents = format!("{}\n{}\n{runs}\n", self.release.checksum, settings_line(self.environment, self.app, host, self.version));
        let mut steps = vec![Step::run(StepKind::Install, remote::write_file(&format!(".kai/checksums/{}", self.version()), &contents))];
        if let Some(local) = &self.release.local {
            let line = serde_json::to_string(local).expect("a local build always serializes");
            steps.push(Step::run(StepKind::Install, remote::write_file(&LocalBuild::record_path(self.version()), &format!("{line}\n"))));
        }
        steps
    }

    /// For a server that runs the version already, stopped: the new settings.
    fn reconfigure(&self, host: &str) -> Vec<Step> {
        let mut steps: Vec<Step> = self.properties(host, &self.release_dir(), false).into_iter().collect();
        steps.extend(self.record(host));
        steps
    }

    /// What puts back the settings a server ran with (read from it before the deploy).
    fn restore(&self, facts: &HostFacts) -> Vec<Step> {
        let mut steps = Vec::new();
        if let (Some(file), Some(old)) = (&self.app.properties_file, &facts.properties) {
            let shown: String = old
                .lines()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => format!("{k}={}\n", crate::mask::value(k, v)),
                    None => format!("{l}\n"),
                })
                .collect();
            steps.push(Step::run(StepKind::SwitchBack, remote::write_masked(&format!("{}/{file}", self.release_dir()), old, &shown)));
        }
        if let Some(sum) = facts.checksums.get(self.version()) {
            let mut settings = facts.settings.get(self.version()).map(|s| format!("{s}\n")).unwrap_or_default();
            if let Some(runs) = facts.run_settings.get(self.version()) {
                settings = format!("{}{}\n", if settings.is_empty() { "\n".to_owned() } else { settings }, runs.to_line());
            }
            let contents = format!("{sum}\n{settings}");
            steps.push(Step::run(StepKind::SwitchBack, remote::write_file(&format!(".kai/checksums/{}", self.version()), &contents)));
        }
        steps
    }

    fn check_disk(&self, host: &str, facts: &HostFacts) -> Result<(), PlanError> {
        let (Some(size), Some(free)) = (self.release.size, facts.free_bytes) else { return Ok(()) };
        let needed = size.saturating_mul(3);
        if free < needed {
            let mib = |b: u64| b.div_ceil(1024 * 1024);
            return Err(PlanError::DiskSpace {
                app: self.app.name.clone(),
                host: host.into(),
                free: free / (1024 * 1024),
                needed: mib(needed),
            });
        }
        Ok(())
    }

    fn download_part(&self) -> String {
        format!("{}.part", self.download())
    }

    /// After a failed stage: the temporary release and what was being downloaded.
    fn abort(&self) -> Vec<Step> {
        vec![Step::run(StepKind::CleanUp, Command::new(["rm", "-rf", &self.temp_dir(), &self.download_part()]))]
    }

    /// The artifact onto the host, verified against its checksum before it gets its
    /// name: uploaded by kai, or downloaded by the host.
    fn fetch(&self) -> Step {
        let (checksum, dest) = (&self.release.checksum, self.download());
        match &self.release.source {
            Source::Push { local } => {
                Step::new(StepKind::Fetch, Action::Upload { local: local.clone(), command: remote::receive(&dest, checksum) })
                    .limit(self.fetch_timeout)
            }
            Source::Pull { url, auth } => {
                let limits = DownloadLimits { connect: CONNECT_TIMEOUT, total: self.fetch_timeout };
                Step::run(StepKind::Fetch, remote::download(url, &dest, checksum, *auth, limits)).limit(self.fetch_timeout + SCRIPT_GRACE)
            }
        }
    }

    fn unpack(&self) -> Vec<Step> {
        let (download, temp) = (self.download(), self.temp_dir());
        let mkdir = Step::run(StepKind::Unpack, Command::new(["mkdir", "-p", &temp]));
        let links = Step::run(StepKind::Unpack, remote::contained(&temp)).limit(self.fetch_timeout);
        let inspect = |argv: &[&str]| {
            Step::new(StepKind::Unpack, Action::Inspect { command: Command::new(argv.iter().copied()), check: OutputCheck::ArchivePaths })
                .limit(self.fetch_timeout)
        };
        match self.app.packaging {
            Packaging::TarGz => vec![
                mkdir,
                inspect(&["tar", "-tzf", &download]),
                Step::run(StepKind::Unpack, Command::new(["tar", "-xzpf", &download, "-C", &temp, "--no-same-owner"]))
                    .limit(self.fetch_timeout),
                links,
            ],
            // unzip makes the folder it extracts into.
            Packaging::Zip => vec![
                inspect(&["unzip", "-Z1", &download]),
                Step::run(StepKind::Unpack, Command::new(["unzip", "-q", &download, "-d", &temp])).limit(self.fetch_timeout),
                links,
            ],
            Packaging::Jar => {
                vec![mkdir, Step::run(StepKind::Unpack, Command::new(["cp", &download, &format!("{temp}/{}.jar", self.app.artifact)]))]
            }
        }
    }
}

/// Points `current` at `releases/<version>` atomically: a new link beside it, then rename(2).
fn switch_to(version: &str, kind: StepKind) -> [Step; 2] {
    [
        Step::run(kind, Command::new(["ln", "-sfn", &format!("releases/{version}"), ".current.tmp"])),
        Step::run(kind, Command::new(["mv", "-T", ".current.tmp", "current"])),
    ]
}

/// `on_failure` as its configuration word in saved plans.
mod on_failure_word {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::OnFailure;

    pub fn serialize<S: Serializer>(value: &OnFailure, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match value {
            OnFailure::Rollback => "rollback",
            OnFailure::Halt => "halt",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OnFailure, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "rollback" => Ok(OnFailure::Rollback),
            "halt" => Ok(OnFailure::Halt),
            other => Err(serde::de::Error::custom(format!("unknown on_failure {other:?}"))),
        }
    }
}

fn escape_key(key: &str) -> String {
    escape_value(key).replace('=', "\\=").replace(':', "\\:").replace(' ', "\\ ")
}

fn escape_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r")
}
