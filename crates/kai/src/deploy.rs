//! One app's deploy from start to end (DESIGN §4): lock every host, read what is
//! there, plan, stage everywhere, roll the active servers one by one under the
//! rollout state machine, switch the standby servers, prune, record, unlock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use kai_core::config::{App, Config};
use kai_core::facts::{parse_probe, probe_command, HostFacts, LockOwner};
use kai_core::history::{self, Record};
use kai_core::plan::{self, health_step, history_step, lock_steps, placements, unlock_steps, AppPlan, HostSteps, Options, Release};
use kai_core::rollout::{Next, Outcome, Rollout, ServerState};

use crate::executor::{Executor, StepFailure};
use crate::transport::{Place, Transport};

/// How one app's deploy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppResult {
    Deployed,
    /// Every host already ran the version.
    UpToDate,
    /// Nothing was switched (resolve, lock, probe, plan or stage failed).
    Failed,
    /// A server failed; it and the ones before it are back on their release.
    RolledBack,
    /// A server failed and is back; the ones before it were left (`on_failure = "halt"`).
    Halted,
    /// Putting a server back failed too: it is in an unknown state and the lock is kept.
    RollbackFailed,
    /// Someone else holds the lock.
    Locked(LockOwner),
    /// Ctrl-C: stopped safely (before a server was taken out).
    Interrupted,
}

impl AppResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, AppResult::Deployed | AppResult::UpToDate)
    }

    /// The result as a stable word for programs (JSON, webhooks); [`word`](Self::word)
    /// is for people.
    pub fn key(&self) -> &'static str {
        match self {
            AppResult::Deployed => "deployed",
            AppResult::UpToDate => "up-to-date",
            AppResult::Failed => "failed",
            AppResult::RolledBack => "rolled-back",
            AppResult::Halted => "halted",
            AppResult::RollbackFailed => "rollback-failed",
            AppResult::Locked(_) => "locked",
            AppResult::Interrupted => "interrupted",
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            AppResult::Deployed => "deployed",
            AppResult::UpToDate => "up to date",
            AppResult::Failed => "failed",
            AppResult::RolledBack => "failed, rolled back",
            AppResult::Halted => "failed, halted",
            AppResult::RollbackFailed => "FAILED, ROLLBACK FAILED",
            AppResult::Locked(_) => "locked",
            AppResult::Interrupted => "interrupted",
        }
    }
}

/// What happened to one app, for the summary.
#[derive(Clone, Debug)]
pub struct AppReport {
    pub app: String,
    pub from: String,
    pub to: String,
    pub hosts: Vec<String>,
    pub result: AppResult,
    pub duration: Duration,
    pub failure: Option<StepFailure>,
    /// What a person should know or do next.
    pub message: Option<String>,
}

/// A deploy of a release, or a rollback to one already on the hosts.
pub enum What {
    Deploy(Release),
    /// Back to this version, or to the one staged before the current one.
    Rollback(Option<String>),
}

/// Everything one deploy of one app needs besides the transport.
pub struct Request<'a> {
    pub config: &'a Config,
    pub env: &'a str,
    pub app: &'a App,
    pub what: What,
    pub options: Options,
    pub owner: LockOwner,
}

pub async fn deploy_app<T: Transport>(exec: &Executor<'_, T>, request: Request<'_>) -> AppReport {
    let started = Instant::now();
    let mut report = AppReport {
        app: request.app.name.clone(),
        from: "?".into(),
        to: match &request.what {
            What::Deploy(release) => release.version.clone(),
            What::Rollback(to) => to.clone().unwrap_or_else(|| "?".into()),
        },
        hosts: Vec::new(),
        result: AppResult::Failed,
        duration: Duration::ZERO,
        failure: None,
        message: None,
    };
    let placements = match placements(request.config, request.env, request.app, &request.options.only) {
        Ok(p) => p,
        Err(e) => return finished(report, started, Err(e.to_string())),
    };
    report.hosts = placements.iter().map(|p| p.host.clone()).collect();
    let places: Vec<Place> = placements.iter().map(Place::from).collect();
    exec.progress.phase(&report.app, "lock", places.len());
    let facts = match lock_and_probe(exec, &places, &request.owner).await {
        Ok(facts) => facts,
        Err((result, failure)) => {
            report.result = result;
            report.failure = failure;
            return finished(report, started, Ok(()));
        }
    };
    let outcome = deploy_locked(exec, &request, &places, facts, &mut report).await;
    finished(report, started, outcome)
}

fn finished(mut report: AppReport, started: Instant, outcome: Result<(), String>) -> AppReport {
    if let Err(message) = outcome {
        report.result = AppResult::Failed;
        report.message = Some(message);
    }
    report.duration = started.elapsed();
    report
}

fn phase(places: &[Place], steps: impl Fn(&Place) -> Vec<plan::Step>) -> Vec<HostSteps> {
    places.iter().map(|p| HostSteps { host: p.host.clone(), steps: steps(p) }).collect()
}

/// Takes the lock on every host and reads what is there, in one round trip a host;
/// on any failure releases the locks taken.
async fn lock_and_probe<T: Transport>(
    exec: &Executor<'_, T>,
    places: &[Place],
    owner: &LockOwner,
) -> Result<BTreeMap<String, HostFacts>, (AppResult, Option<StepFailure>)> {
    let (lock, probe) = (lock_steps(owner), probe_command());
    let results = futures_util::future::join_all(places.iter().map(|p| exec.run_steps_then(p, &lock, "probe", &probe))).await;
    let Some(failure) = results.iter().find_map(|r| r.clone().err()) else {
        return Ok(places.iter().zip(results).filter_map(|(p, r)| r.ok().map(|out| (p.host.clone(), parse_probe(&out.stdout)))).collect());
    };
    // A host whose lock was taken got as far as the probe (or failed in it).
    let taken: Vec<Place> = places
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.as_ref().map_or_else(|f| f.step == "probe", |_| true))
        .map(|(p, _)| p.clone())
        .collect();
    exec.run_parallel(&taken, &phase(&taken, |_| unlock_steps())).await;
    let failed = places.iter().find(|p| p.host == failure.host).expect("the failure names one of the hosts");
    let holder = match exec.transport.run(failed, &probe_command()).await {
        Ok(out) if out.success() && failure.step == "lock" => parse_probe(&out.stdout).lock,
        _ => None,
    };
    Err(match holder {
        Some(owner) => (AppResult::Locked(owner), Some(failure)),
        None => (AppResult::Failed, Some(failure)),
    })
}

async fn deploy_locked<T: Transport>(
    exec: &Executor<'_, T>,
    request: &Request<'_>,
    places: &[Place],
    mut facts: BTreeMap<String, HostFacts>,
    report: &mut AppReport,
) -> Result<(), String> {
    let (config, env, app, options) = (request.config, request.env, request.app, &request.options);
    let version = match &request.what {
        What::Deploy(release) => Ok(release.version.clone()),
        What::Rollback(to) => plan::rollback_version(config, env, app, to.as_deref(), &facts, &options.only),
    };
    let planned = match version {
        Ok(version) => {
            report.to.clone_from(&version);
            ask_health(exec, config, env, app, &version, places, &mut facts).await;
            if let Err(reason) = exec.balancer.read_rotation(&config.environments[env], app, &version, &mut facts).await {
                let failure = StepFailure { host: "balancer".into(), step: "probe", command: String::new(), reason, output: String::new() };
                return fail_unlocked(exec, places, report, failure).await;
            }
            match &request.what {
                What::Deploy(release) => plan::plan_app(config, env, app, release, &facts, &request.owner, options),
                What::Rollback(_) => plan::plan_rollback(config, env, app, Some(&version), &facts, &request.owner, options),
            }
        }
        Err(e) => Err(e),
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) => {
            exec.run_parallel(places, &phase(places, |_| unlock_steps())).await;
            return Err(e.to_string());
        }
    };
    report.from = from_versions(&plan);
    if plan.is_noop() {
        exec.run_parallel(places, &plan.unlock).await;
        report.result = AppResult::UpToDate;
        return Ok(());
    }
    let started = SystemTime::now();
    exec.progress.phase(&plan.app, "stage", plan.stage.len());
    let staged = exec.run_parallel(places, &plan.stage).await;
    if crate::interrupt::requested() {
        exec.run_parallel(places, &plan.abort).await;
        exec.run_parallel(places, &plan.unlock).await;
        report.result = AppResult::Interrupted;
        report.message = Some("interrupted before any server was switched; nothing changed".into());
        return Ok(());
    }
    if let Some(failure) = staged.into_iter().find_map(Result::err) {
        exec.run_parallel(places, &plan.abort).await;
        return fail_unlocked(exec, places, report, failure).await;
    }
    exec.progress.phase(&plan.app, "roll", plan.roll.len());
    let (outcome, states, failure) = roll(exec, &plan, places).await;
    report.failure = failure;
    report.result = match outcome {
        Outcome::Succeeded => AppResult::Deployed,
        Outcome::RolledBack => AppResult::RolledBack,
        Outcome::Halted if crate::interrupt::requested() => AppResult::Interrupted,
        Outcome::Halted => AppResult::Halted,
        Outcome::RollbackFailed => AppResult::RollbackFailed,
    };
    if outcome == Outcome::Succeeded {
        exec.progress.phase(&plan.app, "standby", plan.standby.len());
        let standby = exec.run_parallel(places, &plan.standby).await;
        if let Some(failure) = standby.into_iter().find_map(Result::err) {
            report.result = AppResult::Failed;
            report.message = Some("every active server runs the new release, but a standby server could not be switched".into());
            report.failure = Some(failure);
        }
    }
    let keep_lock = report.result == AppResult::RollbackFailed;
    if keep_lock {
        report.message = Some(format!(
            "a server could not be put back and is in an unknown state; the deploy lock is kept on every host of {}. \
             Look at the host, then run `kai unlock {} {}` and deploy again",
            plan.app, plan.env, plan.app
        ));
    }
    exec.progress.phase(&plan.app, "record", places.len());
    record_and_unlock(exec, request, &plan, places, &states, report, started, keep_lock).await;
    Ok(())
}

async fn fail_unlocked<T: Transport>(
    exec: &Executor<'_, T>,
    places: &[Place],
    report: &mut AppReport,
    failure: StepFailure,
) -> Result<(), String> {
    exec.run_parallel(places, &phase(places, |_| unlock_steps())).await;
    report.failure = Some(failure);
    report.result = AppResult::Failed;
    report.message = Some("nothing was switched".into());
    Ok(())
}

/// Reads every host's facts, all hosts at once.
pub async fn probe<T: Transport>(transport: &T, places: &[Place]) -> Result<BTreeMap<String, HostFacts>, StepFailure> {
    let command = probe_command();
    let outputs = futures_util::future::join_all(places.iter().map(|p| transport.run(p, &command))).await;
    let mut facts = BTreeMap::new();
    for (place, output) in places.iter().zip(outputs) {
        let failure = |reason: String, output: String| StepFailure {
            host: place.host.clone(),
            step: "probe",
            command: "kai-probe".into(),
            reason,
            output,
        };
        match output {
            Ok(out) if out.success() => {
                facts.insert(place.host.clone(), parse_probe(&out.stdout));
            }
            Ok(out) => return Err(failure(format!("exit status {:?}", out.code), out.stderr)),
            Err(e) => return Err(failure(e.to_string(), String::new())),
        }
    }
    Ok(facts)
}

/// How long a host already at the version gets to show it is healthy.
const SETTLED_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks every active server that already runs `version` whether the app is healthy
/// there: only then may a deploy skip it (DESIGN §6). Standby servers are stopped.
pub async fn ask_health<T: Transport>(
    exec: &Executor<'_, T>,
    config: &Config,
    env: &str,
    app: &App,
    version: &str,
    places: &[Place],
    facts: &mut BTreeMap<String, HostFacts>,
) {
    let environment = &config.environments[env];
    let active = |host: &str| app.envs.get(env).is_some_and(|placement| placement.servers.iter().any(|s| s == host));
    let at_version = |host: &str| facts.get(host).is_some_and(|f| f.current.as_deref() == Some(version));
    let asks = places.iter().filter(|p| active(&p.host) && at_version(&p.host)).filter_map(|p| {
        let step = health_step(environment, app, &p.host, version, SETTLED_HEALTH_TIMEOUT.min(app.health.timeout))?;
        Some(async move { (p.host.clone(), exec.run_step(p, &step).await.is_ok()) })
    });
    for (host, healthy) in futures_util::future::join_all(asks).await {
        if let Some(f) = facts.get_mut(&host) {
            f.healthy = Some(healthy);
        }
    }
}

/// Drives the rollout state machine: the servers of a wave at once, each through its
/// steps in order; the machine says what comes next.
async fn roll<T: Transport>(exec: &Executor<'_, T>, plan: &AppPlan, places: &[Place]) -> (Outcome, Vec<ServerState>, Option<StepFailure>) {
    let mut rollout = Rollout::new(plan.waves.clone(), plan.on_failure);
    let mut undoing = false;
    let mut first_failure = None;
    loop {
        let (servers, undo) = match rollout.poll() {
            Next::Done(outcome) => return (outcome, rollout.servers().to_vec(), first_failure),
            Next::Roll(_) if crate::interrupt::requested() => return (Outcome::Halted, rollout.servers().to_vec(), first_failure),
            Next::Roll(servers) => (servers, false),
            Next::Undo(servers) => {
                if !undoing {
                    undoing = true;
                    let out = rollout.servers().iter().filter(|s| **s != ServerState::Pending).count();
                    exec.progress.phase(&plan.app, "roll back", out);
                }
                (servers, true)
            }
        };
        let runs = servers.iter().map(|&i| {
            let server = &plan.roll[i];
            let place = places.iter().find(|p| p.host == server.host).expect("planned hosts are placed");
            exec.run_steps(place, if undo { &server.undo } else { &server.roll })
        });
        let results = futures_util::future::join_all(runs).await;
        for failure in results.iter().filter_map(|r| r.as_ref().err()) {
            first_failure.get_or_insert_with(|| failure.clone());
        }
        let outcomes: Vec<(usize, bool)> = servers.iter().zip(&results).map(|(&i, r)| (i, r.is_ok())).collect();
        rollout.handle(&outcomes);
    }
}

/// One history line on every host that was to change, the pruning of old releases
/// (after a deploy), then (unless the lock must stay) the unlock: one round trip a
/// host. A host where an earlier step failed is still unlocked.
#[allow(clippy::too_many_arguments)]
async fn record_and_unlock<T: Transport>(
    exec: &Executor<'_, T>,
    request: &Request<'_>,
    plan: &AppPlan,
    places: &[Place],
    states: &[ServerState],
    report: &AppReport,
    started: SystemTime,
    keep_lock: bool,
) {
    let hosts: Vec<String> = plan.targets.iter().map(|t| t.host.clone()).collect();
    let state_of = |host: &str| plan.roll.iter().position(|s| s.host == host).map(|i| states[i]);
    let ok = report.result == AppResult::Deployed;
    let phases: Vec<HostSteps> = plan
        .targets
        .iter()
        .filter(|t| t.change)
        .map(|t| {
            let result = match state_of(&t.host) {
                Some(ServerState::Switched) => history::Outcome::Ok,
                Some(ServerState::Stuck | ServerState::Failed) => history::Outcome::Failed,
                Some(ServerState::RolledBack | ServerState::Pending) => history::Outcome::RolledBack,
                None if ok => history::Outcome::Ok,
                None => history::Outcome::RolledBack,
            };
            let record = Record {
                time: humantime::format_rfc3339_seconds(started).to_string(),
                user: request.owner.user.clone(),
                machine: request.owner.machine.clone(),
                env: plan.env.clone(),
                app: plan.app.clone(),
                action: plan.action.clone(),
                from: t.from.clone(),
                to: plan.version.clone(),
                result,
                duration_ms: u64::try_from(started.elapsed().unwrap_or_default().as_millis()).unwrap_or(u64::MAX),
                host: t.host.clone(),
                hosts: hosts.clone(),
                detail: report.failure.as_ref().map(ToString::to_string),
            };
            HostSteps { host: t.host.clone(), steps: vec![history_step(&record)] }
        })
        .collect();
    let mut phases = phases;
    if report.result == AppResult::Deployed {
        exec.progress.phase(&plan.app, "finish", plan.finish.len());
        append(&mut phases, &plan.finish);
    }
    if !keep_lock {
        append(&mut phases, &plan.unlock);
    }
    let mut unlock_after = Vec::new();
    for result in exec.run_parallel(places, &phases).await {
        if let Err(failure) = result {
            exec.progress.warn(&format!("{}: {} failed: {}", failure.host, failure.step, failure.reason));
            if !keep_lock && failure.step != "unlock" {
                unlock_after.extend(plan.unlock.iter().filter(|u| u.host == failure.host).cloned());
            }
        }
    }
    exec.run_parallel(places, &unlock_after).await;
}

/// "1.1.0", "1.0.0, 1.1.0" (hosts differ) or "-" (first install).
fn from_versions(plan: &AppPlan) -> String {
    let mut versions: Vec<&str> = plan.targets.iter().filter_map(|t| t.from.as_deref()).collect();
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        "-".into()
    } else {
        versions.join(", ")
    }
}

/// Adds each host's `steps` to its phase in `phases` (or a new one).
fn append(phases: &mut Vec<HostSteps>, steps: &[HostSteps]) {
    for more in steps {
        match phases.iter_mut().find(|p| p.host == more.host) {
            Some(phase) => phase.steps.extend(more.steps.iter().cloned()),
            None => phases.push(more.clone()),
        }
    }
}
