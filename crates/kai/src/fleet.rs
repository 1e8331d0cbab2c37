//! Reading the fleet: what each host holds for an app (the probe), whether the app is
//! healthy there and in the balancer's rotation, and what `kai status`, `lock`, `ps`
//! and `history` show. One reader for all of them and for the deploy machine's
//! "inspect" request, so a plan and a status see the same facts the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use kai_core::config::{App, Config, Environment};
use kai_core::deploy::Inspection;
use kai_core::facts::{parse_probe, probe_command, HostFacts, LockOwner};
use kai_core::history::{self, Record};
use kai_core::outcome::StepFailure;
use kai_core::plan::{health_step, placements, Placement, Role};
use kai_core::shell::command::Command;
use kai_core::status::{reported_version, HostStatus};
use kai_core::step::{Action, Step, StepKind};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::balancer::Balancer;
use crate::drive::steps::Executor;
use crate::settings::Settings;
use crate::transport::send_command;
use crate::transport::{EnvTransport, Place, Transport};

/// How long a host already at the version gets to show it is healthy.
const SETTLED_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the app gets to answer with its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(2);
/// Apps read at once, and commands run on one host at once: each command is a session
/// on the host's connection, and sshd allows 10 per connection by default (`MaxSessions`).
const AT_ONCE: usize = 8;
/// The longest a read-only command may take.
const READ_LIMIT: Duration = Duration::from_secs(60);

/// Whether the process holding a lock still runs: `Some(false)` when `owner` is a
/// process of this machine (`this_machine`) that is gone, or is no kai; `None` when it
/// is another machine's (nobody can tell from here).
pub fn lock_alive(owner: &LockOwner, this_machine: &str) -> Option<bool> {
    if owner.machine != this_machine || owner.pid == 0 {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", owner.pid)).unwrap_or_default();
    Some(comm.trim() == "kai")
}

/// Fills in, for every lock found, whether its process still runs.
pub fn judge_locks(statuses: &mut [HostStatus], this_machine: &str) {
    for s in statuses {
        s.lock_alive = s.lock.as_ref().and_then(|owner| lock_alive(owner, this_machine));
    }
}

/// The hosts of `app` in `env` (active first, then standby); none when the app is not
/// deployed there.
pub fn hosts_of(config: &Config, env: &str, app: &App) -> Vec<Placement> {
    placements(config, env, app, &[]).unwrap_or_default()
}

/// Reads every place's facts for `app`, all at once, in order.
pub async fn probe<T: Transport>(transport: &T, app: &App, places: &[Place]) -> Vec<Result<HostFacts, StepFailure>> {
    let step = Step::run(StepKind::Probe, probe_command(app.properties_file.as_deref()));
    join_all(places.iter().map(|place| {
        let step = &step;
        async move {
            let command = step.scripted().expect("the probe is a command");
            match send_command(transport, place, command, READ_LIMIT).await {
                Ok(out) if out.success() => Ok(parse_probe(&out.stdout)),
                Ok(out) => Err(StepFailure {
                    host: place.host.clone(),
                    step: StepKind::Probe,
                    command: step.action.to_string(),
                    reason: out.code.map_or(kai_core::outcome::Reason::Signal, kai_core::outcome::Reason::Exit),
                    output: out.tail(),
                }),
                Err(reason) => Err(StepFailure {
                    host: place.host.clone(),
                    step: StepKind::Probe,
                    command: step.action.to_string(),
                    reason,
                    output: kai_core::untrusted::HostText::default(),
                }),
            }
        }
    }))
    .await
}

/// What [`inspect`] found: per host its health and rotation; when the balancer could
/// not be read, why (rotation is then unknown: `None`, never a guess).
pub struct Inspected {
    pub hosts: BTreeMap<String, Inspection>,
    pub unread: Option<String>,
}

impl Inspected {
    /// For a deploy, which must not go on without knowing the balancer.
    pub fn into_result(self) -> Result<BTreeMap<String, Inspection>, String> {
        match self.unread {
            Some(reason) => Err(reason),
            None => Ok(self.hosts),
        }
    }
}

/// Whether the hosts of `health` are healthy (the ones kai-core chose:
/// `plan::health_checked`), and which hosts of `facts` are in the balancer's rotation
/// (when it can be asked).
pub async fn inspect<T: Transport>(
    http: &reqwest::Client,
    balancer: &Balancer<'_, T>,
    environment: &Environment,
    app: &App,
    version: &str,
    health: &[Place],
    facts: &BTreeMap<String, HostFacts>,
) -> Inspected {
    let quiet = |_: &str, _: &Step, _: bool| {};
    let exec = Executor {
        transport: balancer.transport,
        balancer,
        http,
        download_credentials: None,
        on_step: &quiet,
        on_detail: &|_: &str| {},
        stop: &crate::drive::never,
    };
    let asks = health.iter().filter_map(|p| {
        let step = health_step(environment, app, &p.host, version, SETTLED_HEALTH_TIMEOUT.min(app.health.timeout), Duration::ZERO)?;
        let exec = &exec;
        Some(async move { (p.host.clone(), exec.run_task(p, std::slice::from_ref(&step)).await.ok()) })
    });
    let healthy: BTreeMap<String, bool> = join_all(asks).await.into_iter().collect();
    let mut rotation = facts.clone();
    let unread = balancer.read_rotation(environment, app, version, &mut rotation).await.err();
    let hosts = facts
        .keys()
        .map(|host| {
            let in_rotation = if unread.is_some() { None } else { rotation.get(host).and_then(|f| f.in_rotation) };
            (host.clone(), Inspection { healthy: healthy.get(host).copied(), in_rotation })
        })
        .collect();
    Inspected { hosts, unread }
}

/// Reads `apps` on every host of `env` through the environment's transport.
pub async fn read_env(settings: &Settings, config: &Config, environment: &Environment, apps: &[&App], health: bool) -> Vec<HostStatus> {
    let transport = EnvTransport::open(environment, settings);
    let balancer = Balancer::new(&transport, environment).with_login(crate::balancer::login(environment, settings));
    let statuses = read(&balancer, config, environment, apps, health).await;
    transport.close().await;
    statuses
}

/// Reads `apps` on every host of `env`: the probe of each (app, host), and with
/// `health` the health check, rotation and reported version of the active hosts.
/// The balancer (with its transport) asks the hosts and the proxies.
pub async fn read<T: Transport>(
    balancer: &Balancer<'_, T>,
    config: &Config,
    environment: &Environment,
    apps: &[&App],
    health: bool,
) -> Vec<HostStatus> {
    let http = reqwest::Client::new();
    let reads = stream::iter(apps).map(|app| read_app(balancer, &http, config, environment, app, health)).buffered(AT_ONCE);
    reads.collect::<Vec<Vec<HostStatus>>>().await.concat()
}

async fn read_app<T: Transport>(
    balancer: &Balancer<'_, T>,
    http: &reqwest::Client,
    config: &Config,
    environment: &Environment,
    app: &App,
    health: bool,
) -> Vec<HostStatus> {
    let transport = balancer.transport;
    let env = environment.name.as_str();
    let hosts = hosts_of(config, env, app);
    let places: Vec<Place> = hosts.iter().map(Place::from).collect();
    let mut facts = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (place, result) in places.iter().zip(probe(transport, app, &places).await) {
        match result {
            Ok(found) => {
                facts.insert(place.host.clone(), found);
            }
            Err(failure) => {
                let output = failure.output.last_line().map(|l| format!(": {l}")).unwrap_or_default();
                errors.insert(place.host.clone(), format!("{}{output}", failure.reason));
            }
        }
    }
    let mut reported = BTreeMap::new();
    let mut unread: Option<String> = None;
    if health {
        let active: Vec<Place> = hosts.iter().filter(|p| p.role == Role::Active && facts.contains_key(&p.host)).map(Place::from).collect();
        let versions: BTreeSet<String> = active.iter().filter_map(|p| facts.get(&p.host).and_then(|f| f.current.clone())).collect();
        for version in &versions {
            // What the balancer says beats the `disabled` marker; one that cannot be read
            // leaves rotation unknown (and says why), never guessed.
            let inspected = inspect(http, balancer, environment, app, version, &active, &facts).await;
            for (host, inspection) in inspected.hosts {
                let Some(f) = facts.get_mut(&host) else { continue };
                if f.current.as_deref() == Some(version.as_str()) {
                    f.healthy = inspection.healthy.or(f.healthy);
                }
                f.in_rotation = inspection.in_rotation.or(f.in_rotation);
            }
            if let Some(reason) = inspected.unread {
                unread = Some(reason);
            }
        }
        let asks = active.iter().filter_map(|p| {
            let version = facts.get(&p.host)?.current.clone()?;
            Some(async move { (p.host.clone(), ask_version(http, environment, app, &p.host, &version).await) })
        });
        reported = join_all(asks).await.into_iter().filter_map(|(host, v)| Some((host, v?))).collect();
    }
    hosts
        .iter()
        .map(|p| {
            let standby = p.role == Role::Standby;
            match facts.remove(&p.host) {
                Some(f) => {
                    let mut status = HostStatus::read(env, &app.name, &p.host, standby, f, reported.remove(&p.host));
                    if let Some(reason) = unread.as_ref().filter(|_| !standby) {
                        status.rotation_unknown(reason);
                    }
                    status
                }
                None => HostStatus::unreachable(env, &app.name, &p.host, standby, errors.remove(&p.host).unwrap_or_default()),
            }
        })
        .collect()
}

/// The version in the body of the app's HTTP health answer, when it is one.
async fn ask_version(http: &reqwest::Client, environment: &Environment, app: &App, host: &str, version: &str) -> Option<String> {
    let step = health_step(environment, app, host, version, VERSION_TIMEOUT, Duration::ZERO)?;
    let Action::HttpHealth { url, .. } = step.action else { return None };
    let response = http.get(&url).timeout(VERSION_TIMEOUT).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    reported_version(&crate::bounded::body(response, crate::bounded::SMALL, "").await.ok()?)
}

/// Runs `command` in every place at once; per place its standard output, or why it
/// could not be had (not reachable, or the command failed).
pub async fn run_everywhere<T: Transport>(transport: &T, places: &[Place], command: &Command) -> Vec<Result<String, String>> {
    let hosts: BTreeSet<&str> = places.iter().map(|p| p.host.as_str()).collect();
    let limits: BTreeMap<&str, Semaphore> = hosts.into_iter().map(|h| (h, Semaphore::new(AT_ONCE))).collect();
    let limits = &limits;
    join_all(places.iter().map(|place| async move {
        let _turn = limits[place.host.as_str()].acquire().await;
        match send_command(transport, place, command, READ_LIMIT).await {
            Ok(out) if out.success() => Ok(out.stdout),
            Ok(out) => {
                let said = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no message");
                Err(format!("exit status {}: {said}", out.code.map_or_else(|| "(signal)".to_owned(), |c| c.to_string())))
            }
            Err(reason) => Err(reason.to_string()),
        }
    }))
    .await
}

/// A host whose history could not be read.
#[derive(Debug, Serialize)]
pub struct Unread {
    pub host: String,
    pub app: String,
    pub reason: String,
}

/// The history records of `apps` on every host of `environment` (all at once), at most
/// the newest `cap` bytes of each host's file, and the hosts that could not be read;
/// with `warn`, a damaged line and a history read only in part are reported on stderr.
/// A record is shown as where it was read (environment, app, host): one whose own
/// fields say otherwise is flagged in its details, never moved.
pub async fn read_history(
    config: &kai_core::config::Config,
    environment: &kai_core::config::Environment,
    apps: &[&kai_core::config::App],
    settings: &Settings,
    warn: bool,
    cap: u64,
) -> (Vec<Record>, Vec<Unread>) {
    let env = environment.name.as_str();
    let hosts: Vec<(String, Placement)> =
        apps.iter().flat_map(|app| crate::fleet::hosts_of(config, env, app).into_iter().map(|p| (app.name.clone(), p))).collect();
    let places: Vec<Place> = hosts.iter().map(|(_, p)| Place::from(p)).collect();
    let command = history::read_command(cap);
    let transport = EnvTransport::open(environment, settings);
    let outputs = crate::fleet::run_everywhere(&transport, &places, &command).await;
    transport.close().await;
    let mut records: Vec<Record> = Vec::new();
    let mut unread = Vec::new();
    for ((app, placement), output) in hosts.iter().zip(outputs) {
        match output {
            Ok(text) => {
                let (text, cut) = history::read_text(&text);
                let (found, bad) = history::parse_history(text);
                if cut && warn {
                    eprintln!(
                        "warning: {} ({app} in {env}): .kai/history.jsonl is larger than {} KiB: only its newest part was read",
                        placement.host,
                        cap / 1024
                    );
                }
                for line in bad.iter().filter(|_| warn) {
                    eprintln!(
                        "warning: {} ({app} in {env}): .kai/history.jsonl line {} is not a history record, skipped: {}",
                        placement.host, line.number, line.error
                    );
                }
                records.extend(found.into_iter().map(|r| history::as_read(r, env, app, &placement.host)));
            }
            Err(reason) => unread.push(Unread { host: placement.host.clone(), app: app.clone(), reason }),
        }
    }
    (records, unread)
}
