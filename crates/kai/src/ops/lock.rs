//! `kai unlock`: the deploy lock broken on every host that holds one, after the one
//! confirmation, and recorded in each host's history.

use std::path::PathBuf;
use std::time::SystemTime;

use futures_util::future::join_all;
use kai_core::config::{App, Config, Environment};
use kai_core::facts::LockOwner;
use kai_core::history::{Record, Who};
use kai_core::plan::{history_step, unlock_steps};
use kai_core::status::{self, HostStatus};
use kai_core::step::StepKind;
use serde::Serialize;

use super::confirm;
use crate::balancer::Balancer;
use crate::drive::steps::Executor;
use crate::error::CliError;
use crate::progress::Progress;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// What `kai unlock` was asked.
pub struct UnlockRequest {
    pub env: String,
    pub app: String,
    /// Do not ask.
    pub yes: bool,
    pub json: bool,
}

/// What happened on one locked host.
#[derive(Debug, Serialize)]
struct Unlocked {
    host: String,
    lock: LockOwner,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Breaks the lock of `app` in `env` on every host that holds one, after the
/// confirmation (unless `yes`), and records that in each host's history.
pub async fn unlock(config: &Option<PathBuf>, quiet: bool, args: UnlockRequest, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    let app = crate::config_files::app_in(&config, &args.env, &args.app)?;
    let run = Unlock { config: &config, environment, app, args: &args, settings, quiet };
    let transport = EnvTransport::open(environment, settings);
    let result = run.with(&transport).await;
    transport.close().await;
    result
}

struct Unlock<'a> {
    config: &'a Config,
    environment: &'a Environment,
    app: &'a App,
    args: &'a UnlockRequest,
    settings: &'a Settings,
    quiet: bool,
}

impl Unlock<'_> {
    async fn with<T: Transport>(&self, transport: &T) -> Result<u8, CliError> {
        let (env, app) = (&self.args.env, &self.app.name);
        let balancer = Balancer::new(transport, self.environment).with_login(crate::balancer::login(self.environment, self.settings));
        let statuses = crate::fleet::read(&balancer, self.config, self.environment, &[self.app], false).await;
        for s in statuses.iter().filter(|s| !s.is_reachable()) {
            eprintln!("warning: {} in {env} could not be read, its lock (if any) stays: {}", s.host, s.error.as_deref().unwrap_or(""));
        }
        let unreachable = statuses.iter().any(|s| !s.is_reachable());
        let locked: Vec<&HostStatus> = statuses.iter().filter(|s| s.lock.is_some()).collect();
        if locked.is_empty() {
            if self.args.json {
                crate::output::emit("[]\n");
            } else {
                crate::output::emit(&format!("no deploy lock on any host of {app} in {env}\n"));
            }
            return Ok(u8::from(unreachable));
        }
        let now = SystemTime::now();
        if !self.args.yes {
            confirm(env, app, &locked, now, self.settings)?;
        }
        let time = humantime::format_rfc3339_seconds(now).to_string();
        let hosts: Vec<String> = locked.iter().map(|s| s.host.clone()).collect();
        let http = reqwest::Client::new();
        let progress = Progress::new(env, self.quiet);
        let on_step = |host: &str, step: &kai_core::step::Step, ok: bool| progress.step(app, host, step.kind.word(), ok);
        let exec = Executor {
            transport,
            balancer: &balancer,
            http: &http,
            download_credentials: None,
            on_step: &on_step,
            on_detail: &|_: &str| {},
            on_begin: &|_: &str, _: &str| {},
            stop: &crate::drive::never,
        };
        let places = crate::fleet::hosts_of(self.config, env, self.app);
        let results = join_all(locked.iter().map(|s| {
            let owner = s.lock.clone().expect("locked hosts have a lock");
            let who = Who { time: &time, user: &self.settings.user, machine: &self.settings.machine, env, app };
            let record = Record::unlock(&who, &s.host, &hosts, s.current.as_deref(), &owner);
            let place = places.iter().find(|p| p.host == s.host).map(Place::from).expect("read hosts are placed");
            let exec = &exec;
            async move {
                let mut steps = unlock_steps();
                steps.push(history_step(StepKind::Record, &record));
                let result = exec.run_task(&place, &steps).await;
                Unlocked { host: s.host.clone(), lock: owner, ok: result.ok(), error: result.failure.map(|f| f.to_string()) }
            }
        }))
        .await;
        if self.args.json {
            crate::output::emit_json(&results)?;
        } else {
            for r in &results {
                match &r.error {
                    None => crate::output::emit(&format!(
                        "{}: unlocked {app} in {env} (was held by {}); recorded in its history\n",
                        r.host, r.lock
                    )),
                    Some(error) => crate::output::emit(&format!("{}: could not unlock {app} in {env}: {error}\n", r.host)),
                }
            }
        }
        Ok(u8::from(unreachable || results.iter().any(|r| !r.ok)))
    }
}

/// The user types the application's name to go on (see [`crate::ops::confirm`]).
fn confirm(env: &str, app: &str, locked: &[&HostStatus], now: SystemTime, settings: &Settings) -> Result<(), CliError> {
    confirm::can_ask(settings, || {
        CliError::usage(
            format!("breaking the lock of {app} in {env} needs a confirmation, and there is no terminal to confirm on"),
            Some(format!("pass --yes to unlock without confirmation (`kai lock {env} {app}` shows who holds it)")),
        )
    })?;
    let held: Vec<HostStatus> = locked.iter().map(|s| (*s).clone()).collect();
    let lines: Vec<String> = status::render_locks(&held, now).lines().map(str::to_owned).collect();
    confirm::ask(&confirm::Prompt {
        heading: format!("The deploy lock of {app} in {env} is held:"),
        lines: &lines,
        warning: Some("Breaking it while that deploy still runs can leave servers half switched."),
        type_what: format!("the application name ({app})"),
        expected: app,
        nothing: "nothing was unlocked",
    })
}
