//! Reading the fleet for `kai status`, `history`, `ps`, `lock` and `unlock`: every host of
//! every app asked at once (one SSH connection per host and login, shared by the
//! transport); a host that cannot be read is reported as such, and the others are still shown.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use kai_core::command::Command;
use kai_core::config::{App, Config, Environment, TransportKind};
use kai_core::plan::{health_step, placements, Placement, Role};
use kai_core::status::{reported_version, HostStatus};
use kai_core::step::Action;
use tokio::sync::Semaphore;

use crate::balancer::Balancer;
use crate::deploy::{ask_health, probe};
use crate::error::CliError;
use crate::executor::Executor;
use crate::progress::Progress;
use crate::transport::{LocalTransport, Place, SshOptions, SshTransport, Transport, TransportError};

/// How long the app gets to answer with its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(2);
/// Apps read at once, and commands run on one host at once: each command is a session
/// on the host's connection, and sshd allows 10 per connection by default (`MaxSessions`).
const AT_ONCE: usize = 8;

/// The hosts of `app` in `env` (active first, then standby); none when the app is not
/// deployed there.
pub fn hosts_of(config: &Config, env: &str, app: &App) -> Vec<Placement> {
    placements(config, env, app, &[]).unwrap_or_default()
}

/// The apps deployed to `env`, by name.
pub fn apps_in<'c>(config: &'c Config, env: &str) -> Vec<&'c App> {
    config.apps.values().filter(|a| a.envs.contains_key(env)).collect()
}

/// The application named `name`, which must be deployed to `env`; else a usage error
/// naming the apps that are.
pub fn app_in<'c>(config: &'c Config, env: &str, name: &str) -> Result<&'c App, CliError> {
    let app = super::application(config, name)?;
    if app.envs.contains_key(env) {
        return Ok(app);
    }
    let here: Vec<&str> = apps_in(config, env).iter().map(|a| a.name.as_str()).collect();
    Err(CliError::usage(
        format!("{name} is not deployed to {env}: apps/{name}.toml has no [env.{env}] section"),
        Some(if here.is_empty() {
            format!("no application is deployed to {env}")
        } else {
            format!("deployed to {env}: {}", here.join(", "))
        }),
    ))
}

/// Reads `apps` on every host of `env` through the environment's transport.
pub async fn read_env(config: &Config, environment: &Environment, apps: &[&App], health: bool) -> Vec<HostStatus> {
    match environment.transport {
        TransportKind::Local => read(&LocalTransport::default(), config, environment, apps, health).await,
        TransportKind::Ssh => {
            let transport = SshTransport::new(environment, SshOptions::for_environment(environment));
            let statuses = read(&transport, config, environment, apps, health).await;
            transport.close().await;
            statuses
        }
    }
}

/// Reads `apps` on every host of `env`: the probe of each (app, host), and with
/// `health` the health check and reported version of the active hosts.
pub async fn read<T: Transport>(transport: &T, config: &Config, environment: &Environment, apps: &[&App], health: bool) -> Vec<HostStatus> {
    let http = reqwest::Client::new();
    let reads = stream::iter(apps).map(|app| read_app(transport, &http, config, environment, app, health)).buffered(AT_ONCE);
    reads.collect::<Vec<Vec<HostStatus>>>().await.concat()
}

async fn read_app<T: Transport>(
    transport: &T,
    http: &reqwest::Client,
    config: &Config,
    environment: &Environment,
    app: &App,
    health: bool,
) -> Vec<HostStatus> {
    let env = environment.name.as_str();
    let hosts = hosts_of(config, env, app);
    let places: Vec<Place> = hosts.iter().map(Place::from).collect();
    let probes = join_all(places.iter().map(|p| probe(transport, std::slice::from_ref(p)))).await;
    let mut facts = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (place, result) in places.iter().zip(probes) {
        match result {
            Ok(found) => facts.extend(found),
            Err(failure) => {
                let reason = without_host(&place.host, &failure.reason);
                let output = failure.output.lines().rfind(|l| !l.trim().is_empty()).map(|l| format!(": {l}")).unwrap_or_default();
                errors.insert(place.host.clone(), format!("{reason}{output}"));
            }
        }
    }
    let mut reported = BTreeMap::new();
    if health {
        let active: Vec<Place> = hosts.iter().filter(|p| p.role == Role::Active && facts.contains_key(&p.host)).map(Place::from).collect();
        let progress = Progress::new(env, true);
        let balancer = Balancer::new(transport, environment);
        let exec = Executor { transport, balancer: &balancer, http, progress: &progress, app: &app.name, download_credentials: None };
        let versions: BTreeSet<String> = active.iter().filter_map(|p| facts.get(&p.host).and_then(|f| f.current.clone())).collect();
        for version in &versions {
            ask_health(&exec, config, env, app, version, &active, &mut facts).await;
        }
        // What the balancer says beats the `disabled` marker; when it cannot be asked, the marker it is.
        if let Some(version) = versions.iter().next() {
            let _ = balancer.read_rotation(environment, app, version, &mut facts).await;
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
                Some(f) => HostStatus::read(env, &app.name, &p.host, standby, f, reported.remove(&p.host)),
                None => HostStatus::unreachable(env, &app.name, &p.host, standby, errors.remove(&p.host).unwrap_or_default()),
            }
        })
        .collect()
}

/// The version in the body of the app's HTTP health answer, when it is one.
async fn ask_version(http: &reqwest::Client, environment: &Environment, app: &App, host: &str, version: &str) -> Option<String> {
    let step = health_step(environment, app, host, version, VERSION_TIMEOUT)?;
    let Action::HttpHealth { url, .. } = step.action else { return None };
    let response = http.get(&url).timeout(VERSION_TIMEOUT).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    reported_version(&response.text().await.ok()?)
}

/// Runs `command` in every place at once; per place its standard output, or why it
/// could not be had (not reachable, or the command failed).
pub async fn run_everywhere<T: Transport>(transport: &T, places: &[Place], command: &Command) -> Vec<Result<String, String>> {
    let hosts: BTreeSet<&str> = places.iter().map(|p| p.host.as_str()).collect();
    let limits: BTreeMap<&str, Semaphore> = hosts.into_iter().map(|h| (h, Semaphore::new(AT_ONCE))).collect();
    let limits = &limits;
    join_all(places.iter().map(|place| async move {
        let _turn = limits[place.host.as_str()].acquire().await;
        match transport.run(place, command).await {
            Ok(out) if out.success() => Ok(out.stdout),
            Ok(out) => {
                let said = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no message");
                Err(format!("exit status {}: {said}", out.code.map_or_else(|| "(signal)".to_owned(), |c| c.to_string())))
            }
            Err(e) => Err(transport_reason(&place.host, &e)),
        }
    }))
    .await
}

fn transport_reason(host: &str, error: &TransportError) -> String {
    without_host(host, &error.to_string())
}

/// `web1: connection refused` → `connection refused`: tables and notes name the host already.
fn without_host(host: &str, text: &str) -> String {
    text.strip_prefix(&format!("{host}: ")).unwrap_or(text).to_owned()
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `value` as one pretty JSON document and a newline.
pub fn emit_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.into()))?;
    emit(&format!("{text}\n"));
    Ok(())
}
