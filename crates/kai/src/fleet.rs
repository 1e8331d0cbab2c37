//! Reading the fleet: what each host holds for its apps (one script per host,
//! [`kai_core::estate`]), whether each app is healthy there and in the balancer's
//! rotation, and what `kai status`, `serve`, `lock`, `diff` and `history` show. One
//! reader for all of them and for the deploy machine's "inspect" request, so a plan and
//! a status see the same facts the same way. A read creates nothing on a host.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use kai_core::config::{App, Config, Environment, HealthCheck};
use kai_core::deploy::Inspection;
use kai_core::estate::{self, Entry, Reading};
use kai_core::facts::{HostFacts, LockOwner};
use kai_core::history::{self, Record};
use kai_core::outcome::{Reason, StepFailure};
use kai_core::plan::{health_step, placements, Placement, Role};
use kai_core::shell::command::Command;
use kai_core::shell::session::Access;
use kai_core::status::{reported_version, HostStatus};
use kai_core::step::{Action, StepKind};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::balancer::Balancer;
use crate::drive::steps::Executor;
use crate::settings::Settings;
use crate::transport::send_command;
use crate::transport::{EnvTransport, Payload, Place, Transport};

/// How long a host already at the version gets to show it is healthy.
const SETTLED_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the app gets to answer with its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(2);
/// Apps whose HTTP health checks (and balancer reads) are asked from here at once.
const HTTP_AT_ONCE: usize = 32;
/// Commands run on one host at once: each command is a session
/// on the host's connection, and sshd allows 10 per connection by default (`MaxSessions`).
const AT_ONCE: usize = 8;
/// The longest a read-only command may take.
const READ_LIMIT: Duration = Duration::from_secs(60);

/// Whether the process holding a lock still runs: `Some(false)` when `owner` is a
/// process of this machine (`this_machine`) that is gone, or is no kai; `None` when it
/// is another machine's (nobody can tell from here) or held by hand (no process holds it).
pub fn lock_alive(owner: &LockOwner, this_machine: &str) -> Option<bool> {
    if owner.machine != this_machine || owner.pid == 0 || owner.hold.is_some() {
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

/// What to read besides each app's facts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Want {
    /// The health of the active hosts: command checks run on the host in the same
    /// script; HTTP checks are asked from here afterwards.
    pub health: bool,
    /// The newest this many bytes of each history.
    pub history: Option<u64>,
}

/// One app on one host, as one read of the host found it.
pub struct Found {
    pub app: String,
    pub placement: Placement,
    /// The facts, or why they could not be read (an app home that does not exist is
    /// an app not installed: no facts, no error).
    pub facts: Result<HostFacts, StepFailure>,
    /// The history text (when asked for), as [`history::read_text`] takes it.
    pub history: Option<String>,
    /// The command health check's verdict, when one ran on the host.
    pub command_healthy: Option<bool>,
}

/// Reads `apps` on every host of `environment`: one script per host (and login)
/// carrying every app placed there ([`kai_core::estate`]), all hosts at once. Creates
/// nothing on a host. In the order of `apps`, each app's hosts in placement order.
pub async fn read_hosts<T: Transport>(transport: &T, config: &Config, environment: &Environment, apps: &[&App], want: Want) -> Vec<Found> {
    let env = environment.name.as_str();
    let mut placed: Vec<(&App, Placement)> = Vec::new();
    for app in apps {
        placed.extend(hosts_of(config, env, app).into_iter().map(|p| (*app, p)));
    }
    read_placed(transport, &placed, want).await
}

/// [`read_hosts`] of the given (app, placement) pairs.
async fn read_placed<T: Transport>(transport: &T, placed: &[(&App, Placement)], want: Want) -> Vec<Found> {
    // One group per host and login: a script as that login reads them all.
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, (_, p)) in placed.iter().enumerate() {
        groups.entry((p.host.clone(), p.login.clone())).or_default().push(i);
    }
    let reads = groups.into_iter().map(|((host, login), members)| {
        let place = Place { host, login: Some(login), access: Access { home: None, sudo: None } };
        let entries: Vec<Entry> = members.iter().map(|&i| entry(placed[i].0, &placed[i].1, want)).collect();
        async move { (members, read_one(transport, &place, &entries).await) }
    });
    let mut found: Vec<Option<Found>> = placed.iter().map(|_| None).collect();
    for (members, readings) in join_all(reads).await {
        for (i, reading) in members.into_iter().zip(readings) {
            let (app, placement) = &placed[i];
            let (facts, history, command_healthy) = match reading {
                Ok(r) => {
                    let home = placement.access.home.clone().unwrap_or_default();
                    let facts = r.facts(&home).map_err(|why| failure(&placement.host, Reason::Refused(why)));
                    (facts, r.history, r.healthy)
                }
                Err(f) => (Err(f), None, None),
            };
            found[i] = Some(Found { app: app.name.clone(), placement: placement.clone(), facts, history, command_healthy });
        }
    }
    found.into_iter().flatten().collect()
}

/// What the read asks of `placement` for `app`.
fn entry(app: &App, placement: &Placement, want: Want) -> Entry {
    let health = match &app.health.check {
        HealthCheck::Command { argv } if want.health && placement.role == Role::Active => {
            Some((argv.clone(), SETTLED_HEALTH_TIMEOUT.min(app.health.timeout)))
        }
        _ => None,
    };
    Entry { access: placement.access.clone(), properties_file: app.properties_file.clone(), history: want.history, health }
}

/// Sends one read script to `place` (a login, no home); per entry its reading, or why
/// the host could not be read at all.
async fn read_one<T: Transport>(transport: &T, place: &Place, entries: &[Entry]) -> Vec<Result<Reading, StepFailure>> {
    let token = crate::transport::token();
    let text = estate::script(entries, &token);
    let sent = transport.send(place, &place.access.entry(), Payload::Script { real: text.as_bytes(), shown: &text }, READ_LIMIT).await;
    match sent {
        Ok(out) if out.success() => estate::parse(&out.stdout, &token, entries).into_iter().map(Ok).collect(),
        Ok(out) => {
            let said = kai_core::shell::session::could_not_run("kai's read", &out);
            entries.iter().map(|_| Err(failure(&place.host, Reason::ConnectionLost(said.clone())))).collect()
        }
        Err(e) => {
            let reason = e.reason();
            entries.iter().map(|_| Err(failure(&place.host, reason.clone()))).collect()
        }
    }
}

fn failure(host: &str, reason: Reason) -> StepFailure {
    StepFailure {
        host: host.to_owned(),
        step: StepKind::Probe,
        command: "kai_probe".into(),
        reason,
        output: kai_core::untrusted::HostText::default(),
    }
}

/// The facts of many apps read ahead, one script per host, for the reads of each app
/// that follow ([`probe_ahead`]): `kai plan` and a deploy's confirmation read every host
/// once, not once per app. Each fact is handed out once.
#[derive(Default)]
pub struct ReadAhead(std::sync::Mutex<BTreeMap<(String, String), Result<HostFacts, StepFailure>>>);

impl ReadAhead {
    /// Reads `apps` (their hosts `only` selects) on their hosts.
    pub async fn read<T: Transport>(transport: &T, config: &Config, env: &str, apps: &[&App], only: &[String]) -> ReadAhead {
        let mut placed: Vec<(&App, Placement)> = Vec::new();
        for app in apps {
            placed.extend(placements(config, env, app, only).unwrap_or_default().into_iter().map(|p| (*app, p)));
        }
        let found = read_placed(transport, &placed, Want::default()).await;
        ReadAhead(std::sync::Mutex::new(found.into_iter().map(|f| ((f.app, f.placement.host), f.facts)).collect()))
    }

    fn take(&self, app: &str, host: &str) -> Option<Result<HostFacts, StepFailure>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&(app.to_owned(), host.to_owned()))
    }
}

/// [`probe`], taking what `ahead` read of these places instead of asking again.
pub async fn probe_ahead<T: Transport>(
    ahead: Option<&ReadAhead>,
    transport: &T,
    app: &App,
    places: &[Place],
) -> Vec<Result<HostFacts, StepFailure>> {
    let taken: Vec<Option<Result<HostFacts, StepFailure>>> =
        places.iter().map(|p| ahead.and_then(|a| a.take(&app.name, &p.host))).collect();
    let missing: Vec<Place> = places.iter().zip(&taken).filter(|(_, t)| t.is_none()).map(|(p, _)| p.clone()).collect();
    let mut read = probe(transport, app, &missing).await.into_iter();
    taken.into_iter().map(|t| t.unwrap_or_else(|| read.next().expect("one read per missing place"))).collect()
}

/// Reads every place's facts for `app`, all at once, in order; creates nothing.
pub async fn probe<T: Transport>(transport: &T, app: &App, places: &[Place]) -> Vec<Result<HostFacts, StepFailure>> {
    join_all(places.iter().map(|place| async move {
        let entry = Entry { access: place.access.clone(), properties_file: app.properties_file.clone(), history: None, health: None };
        let reader = Place { host: place.host.clone(), login: place.login.clone(), access: Access { home: None, sudo: None } };
        let home = place.access.home.clone().unwrap_or_default();
        let mut read = read_one(transport, &reader, std::slice::from_ref(&entry)).await;
        read.remove(0).and_then(|r| r.facts(&home).map_err(|why| failure(&place.host, Reason::Refused(why))))
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
    let exec = Executor::silent(balancer, http);
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
    read_env_with(settings, config, environment, apps, Want { health, history: None }).await.0
}

/// [`read_env`], and the history tail of each host when `want` asks for it (for
/// [`histories`]).
pub async fn read_env_with(
    settings: &Settings,
    config: &Config,
    environment: &Environment,
    apps: &[&App],
    want: Want,
) -> (Vec<HostStatus>, Vec<HostHistory>) {
    let transport = EnvTransport::open(environment, settings);
    let balancer = Balancer::new(&transport, environment).with_login(crate::balancer::login(environment, settings)).reading();
    let read = read_with(&balancer, config, environment, apps, want).await;
    transport.close().await;
    read
}

/// Reads `apps` on every host of `env`: the facts of each (app, host), one script per
/// host, and with `health` the health check, rotation and reported version of the
/// active hosts. The balancer (with its transport) asks the hosts and the proxies.
pub async fn read<T: Transport>(
    balancer: &Balancer<'_, T>,
    config: &Config,
    environment: &Environment,
    apps: &[&App],
    health: bool,
) -> Vec<HostStatus> {
    read_with(balancer, config, environment, apps, Want { health, history: None }).await.0
}

/// One host's history of one app, as read (when asked for), or why it could not be.
pub struct HostHistory {
    pub app: String,
    pub placement: Placement,
    pub text: Result<String, String>,
}

impl HostHistory {
    /// The history a read found (taken out of it), or why the host could not be read; a
    /// home that is not there has an empty history.
    fn of(found: &mut Found) -> HostHistory {
        let text = match &found.facts {
            Ok(_) => Ok(found.history.take().unwrap_or_default()),
            Err(failure) => Err(failure.reason.to_string()),
        };
        HostHistory { app: found.app.clone(), placement: found.placement.clone(), text }
    }
}

/// [`read`] as `want` says, and the histories when it asks for them.
async fn read_with<T: Transport>(
    balancer: &Balancer<'_, T>,
    config: &Config,
    environment: &Environment,
    apps: &[&App],
    want: Want,
) -> (Vec<HostStatus>, Vec<HostHistory>) {
    let found = read_hosts(balancer.transport, config, environment, apps, want).await;
    let http = reqwest::Client::new();
    let mut per_app: Vec<Vec<Found>> = apps.iter().map(|_| Vec::new()).collect();
    let mut histories = Vec::new();
    for mut f in found {
        if want.history.is_some() {
            histories.push(HostHistory::of(&mut f));
        }
        if let Some(i) = apps.iter().position(|a| a.name == f.app) {
            per_app[i].push(f);
        }
    }
    let reads = stream::iter(apps.iter().zip(per_app)).map(|(app, found)| settle(balancer, &http, environment, app, found, want.health));
    let statuses = reads.buffered(HTTP_AT_ONCE).collect::<Vec<Vec<HostStatus>>>().await.concat();
    (statuses, histories)
}

/// One app's statuses from what its hosts said: with `health`, the HTTP health checks
/// asked from here, the balancer's rotation and the version the app reports.
async fn settle<T: Transport>(
    balancer: &Balancer<'_, T>,
    http: &reqwest::Client,
    environment: &Environment,
    app: &App,
    found: Vec<Found>,
    health: bool,
) -> Vec<HostStatus> {
    let env = environment.name.as_str();
    let mut facts = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut checked = BTreeMap::new();
    for f in &found {
        match &f.facts {
            Ok(read) => {
                facts.insert(f.placement.host.clone(), read.clone());
            }
            Err(failure) => {
                let output = failure.output.last_line().map(|l| format!(": {l}")).unwrap_or_default();
                errors.insert(f.placement.host.clone(), format!("{}{output}", failure.reason));
            }
        }
        if let Some(healthy) = f.command_healthy {
            checked.insert(f.placement.host.clone(), healthy);
        }
    }
    let mut reported = BTreeMap::new();
    let mut unread: Option<String> = None;
    if health {
        let active: Vec<Place> = found
            .iter()
            .filter(|f| f.placement.role == Role::Active && facts.contains_key(&f.placement.host))
            .map(|f| Place::from(&f.placement))
            .collect();
        // Command checks ran on the hosts, in the read; HTTP checks are asked from here.
        let asked: &[Place] = if matches!(app.health.check, HealthCheck::Http { .. }) { &active } else { &[] };
        let versions: BTreeSet<String> = active.iter().filter_map(|p| facts.get(&p.host).and_then(|f| f.current.clone())).collect();
        for version in &versions {
            // What the balancer says beats the `disabled` marker; one that cannot be read
            // leaves rotation unknown (and says why), never guessed.
            let inspected = inspect(http, balancer, environment, app, version, asked, &facts).await;
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
        for (host, healthy) in checked {
            if let Some(f) = facts.get_mut(&host) {
                f.healthy = Some(healthy);
            }
        }
        let asks = active.iter().filter_map(|p| {
            let version = facts.get(&p.host)?.current.clone()?;
            Some(async move { (p.host.clone(), ask_version(http, environment, app, &p.host, &version).await) })
        });
        reported = join_all(asks).await.into_iter().filter_map(|(host, v)| Some((host, v?))).collect();
    }
    found
        .iter()
        .map(|f| {
            let p = &f.placement;
            let standby = p.role == Role::Standby;
            match facts.remove(&p.host) {
                Some(read) => {
                    let mut status = HostStatus::read(env, &app.name, &p.host, standby, read, reported.remove(&p.host));
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
pub async fn read_history(
    config: &Config,
    environment: &Environment,
    apps: &[&App],
    settings: &Settings,
    warn: bool,
    cap: u64,
) -> (Vec<Record>, Vec<Unread>) {
    let transport = EnvTransport::open(environment, settings);
    let found = read_hosts(&transport, config, environment, apps, Want { health: false, history: Some(cap) }).await;
    transport.close().await;
    let read = found.into_iter().map(|mut f| HostHistory::of(&mut f)).collect();
    histories(&environment.name, read, cap, warn)
}

/// The records of histories read in `env`, and the hosts that could not be read. A
/// record is shown as where it was read (environment, app, host): one whose own fields
/// say otherwise is flagged in its details, never moved.
pub fn histories(env: &str, read: Vec<HostHistory>, cap: u64, warn: bool) -> (Vec<Record>, Vec<Unread>) {
    let mut records: Vec<Record> = Vec::new();
    let mut unread = Vec::new();
    for HostHistory { app, placement, text } in read {
        match text {
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
                records.extend(found.into_iter().map(|r| history::as_read(r, env, &app, &placement.host)));
            }
            Err(reason) => unread.push(Unread { host: placement.host.clone(), app, reason }),
        }
    }
    (records, unread)
}
