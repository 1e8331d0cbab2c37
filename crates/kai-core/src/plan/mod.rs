//! The planner: from the configuration, the release to install and the facts read
//! from each host, every step of one app's deploy, per host, in order, with what
//! undoes each switch. Pure: the caller passes everything in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod json;
mod properties;
mod roll;
pub mod saved;
mod stage;
pub mod text;

pub use properties::*;
use roll::*;
use stage::*;

use crate::checksum::Checksum;
use crate::config::{App, BalancerKind, Canary, Config, Environment, HealthCheck, OnFailure};
use crate::deploy::rollout;
use crate::facts::{probe_command, HostFacts, LockOwner};
use crate::history;
use crate::local_build::LocalBuild;
pub use crate::mask::is_secret_key;
use crate::maven::Packaging;
use crate::placement::host_vars;
pub use crate::placement::{access, app_home, placements, Placement, PlacementError, Role};
use crate::rotation::{BalancerNameError, Rotation};
use crate::run_settings::{self, RunSettings, Runs};
use crate::shell::command::Command;
use crate::shell::helpers::{self, DownloadLimits};
use crate::shell::session::Access;
pub use crate::step::Step;
use crate::step::{Action, JudgeBy, OutputCheck, StepKind};

/// The artifact to install, resolved and checksummed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release's name on the hosts: the version, or for a local build the version
    /// and its checksum ([`crate::local_build::label`]).
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
    pub action: history::Kind,
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
    action: history::Kind,
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
    Step::run(kind, helpers::append_line(HISTORY_FILE, &record.to_line()))
}

/// Takes the deploy lock (see [`helpers::LOCK_HELD`]), then reads the host again: what a
/// deploy plans from is what the host holds once nobody else can change it.
pub fn lock_steps(owner: &LockOwner, properties_file: Option<&str>) -> Vec<Step> {
    let owner = serde_json::to_string(owner).expect("a lock owner always serializes");
    vec![Step::run(StepKind::Lock, helpers::lock(&owner)), Step::run(StepKind::Probe, probe_command(properties_file))]
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
        action: history::Kind::Deploy,
        local: release.local.as_ref(),
        promoted_from: release.promoted_from.as_deref(),
    };
    let stager = Stager { planner: &planner, release };
    let mut plan = AppPlan::new(environment, app, &release.version, history::Kind::Deploy, &targets, owner, &options.run_id);
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
        action: history::Kind::Rollback,
        local: facts.values().find_map(|f| f.builds.get(&version)),
        promoted_from: None,
    };
    let mut plan = AppPlan::new(environment, app, &version, history::Kind::Rollback, &targets, owner, &options.run_id);
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

/// The hosts whose health a deploy (or plan) of `version` asks: the active ones that
/// run it already, since only they may be left alone (docs/deploy.md).
pub fn health_checked(placements: &[Placement], facts: &BTreeMap<String, HostFacts>, version: &str) -> Vec<String> {
    placements
        .iter()
        .filter(|p| p.role == Role::Active && facts.get(&p.host).is_some_and(|f| f.current.as_deref() == Some(version)))
        .map(|p| p.host.clone())
        .collect()
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
