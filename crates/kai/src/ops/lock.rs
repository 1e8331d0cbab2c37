//! `kai unlock`: the deploy lock broken on every host that holds one, after the one
//! confirmation, and recorded in each host's history; `kai lock --hold`: the lock taken
//! by hand on every host of an app (a freeze), and recorded there too.

use std::path::PathBuf;
use std::time::SystemTime;

use futures_util::future::join_all;
use kai_core::config::{App, Config, Environment};
use kai_core::deploy::TaskResult;
use kai_core::facts::{parse_lock_owner, parse_probe, LockOwner};
use kai_core::history::{Record, Who};
use kai_core::plan::{history_step, lock_steps, unlock_steps};
use kai_core::shell::helpers::LOCK_HELD;
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
        let exec = Executor::plain(&balancer, &http, &on_step);
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
        // A lock held by hand has no deploy behind it.
        warning: locked
            .iter()
            .any(|s| s.lock.as_ref().is_some_and(|l| l.hold.is_none()))
            .then_some("Breaking it while that deploy still runs can leave servers half switched."),
        type_what: format!("the application name ({app})"),
        expected: app,
        nothing: "nothing was unlocked",
    })
}

/// What `kai lock --hold` was asked.
pub struct HoldRequest {
    pub env: String,
    pub app: String,
    /// Why, shown to whoever meets the lock.
    pub message: String,
    pub json: bool,
}

/// How taking the hold went on one host.
enum Taken {
    /// Locked; the release the host runs.
    Held(Option<String>),
    /// Someone else holds its lock.
    Busy(LockOwner),
    Failed(String),
}

/// Holds the lock of `app` in `env` by hand on every host of the app, or on none: the
/// first host alone, then the others at once (the order every deploy locks in), and
/// every lock taken released again when any host could not be locked. Once held
/// everywhere, each host's history records it. Then shows the locks as `kai lock` does.
pub async fn hold(config: &Option<PathBuf>, quiet: bool, args: HoldRequest, settings: &Settings) -> Result<u8, CliError> {
    if let Some(problem) = LockOwner::hold_message_problem(&args.message) {
        let shown = kai_core::table::printable(&kai_core::table::cut(&args.message, 80));
        return Err(CliError::usage(
            format!("--message \"{shown}\": {problem}"),
            Some(format!("kai lock {} {} --hold --message \"deploys frozen: incident 4711, ask ann\"", args.env, args.app)),
        ));
    }
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    let app = crate::config_files::app_in(&config, &args.env, &args.app)?;
    let transport = EnvTransport::open(environment, settings);
    let code = Hold { config: &config, environment, app, args: &args, settings, quiet }.with(&transport).await;
    transport.close().await;
    show(&config, environment, app, args.json, settings).await?;
    Ok(code)
}

/// Reads and prints the deploy lock of `app` on each host (`kai lock`); true when every
/// host could be read.
pub async fn show(config: &Config, environment: &Environment, app: &App, json: bool, settings: &Settings) -> Result<bool, CliError> {
    let mut statuses = crate::fleet::read_env(settings, config, environment, &[app], false).await;
    crate::fleet::judge_locks(&mut statuses, &settings.machine);
    let now = SystemTime::now();
    if json {
        crate::output::emit_json(&status::lock_views(&statuses, now))?;
    } else {
        crate::output::emit(&status::render_locks(&statuses, now));
    }
    Ok(statuses.iter().all(|s| s.is_reachable()))
}

struct Hold<'a> {
    config: &'a Config,
    environment: &'a Environment,
    app: &'a App,
    args: &'a HoldRequest,
    settings: &'a Settings,
    quiet: bool,
}

impl Hold<'_> {
    /// 0 held everywhere; 3 someone else holds a lock; 1 a host could not be locked.
    async fn with<T: Transport>(&self, transport: &T) -> u8 {
        let (env, app) = (&self.args.env, &self.app.name);
        let balancer = Balancer::new(transport, self.environment).with_login(crate::balancer::login(self.environment, self.settings));
        let http = reqwest::Client::new();
        let progress = Progress::new(env, self.quiet);
        let on_step = |host: &str, step: &kai_core::step::Step, ok: bool| progress.step(app, host, step.kind.word(), ok);
        let exec = Executor::plain(&balancer, &http, &on_step);
        let places: Vec<Place> = crate::fleet::hosts_of(self.config, env, self.app).iter().map(Place::from).collect();
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let owner = LockOwner {
            user: self.settings.user.clone(),
            machine: self.settings.machine.clone(),
            pid: 0,
            since: now.clone(),
            command: format!("kai lock {env} {app} --hold"),
            hold: Some(self.args.message.clone()),
        };
        // The lock, then the host read under it (for the release its history names).
        let steps = lock_steps(&owner, self.app.properties_file.as_deref());
        let take = |place: &Place| {
            let (exec, steps) = (&exec, &steps);
            let place = place.clone();
            async move { (place.host.clone(), taken(&exec.run_task(&place, steps).await)) }
        };
        let Some((first, rest)) = places.split_first() else {
            eprintln!("error: {app} has no host in {env}: apps/{app}.toml places it on none");
            return 1;
        };
        let mut results = vec![take(first).await];
        if matches!(results[0].1, Taken::Held(_)) {
            results.extend(join_all(rest.iter().map(take)).await);
        }
        if results.len() == places.len() && results.iter().all(|(_, t)| matches!(t, Taken::Held(_))) {
            let hosts: Vec<String> = places.iter().map(|p| p.host.clone()).collect();
            let who = Who { time: &now, user: &self.settings.user, machine: &self.settings.machine, env, app };
            let run = super::run::run_id();
            let records = places.iter().zip(&results).map(|(place, (_, taken))| {
                let current = match taken {
                    Taken::Held(current) => current.as_deref(),
                    _ => None,
                };
                let record = Record::hold(&who, &place.host, &hosts, current, &self.args.message, &run);
                let exec = &exec;
                async move { (place.host.clone(), exec.run_task(place, &[history_step(StepKind::Record, &record)]).await) }
            });
            for (host, result) in join_all(records).await {
                if let Some(failure) = result.failure {
                    eprintln!("warning: {host}: the hold is taken, but its history could not record it: {failure}");
                }
            }
            eprintln!(
                "{app} in {env} is held by hand on {}: deploys stop (or wait, with --lock-wait) until `kai unlock {env} {app}`",
                hosts.join(", ")
            );
            return 0;
        }
        let mut code = 1;
        for (host, taken) in &results {
            match taken {
                Taken::Held(_) => {}
                Taken::Busy(holder) => {
                    code = 3;
                    eprintln!("error: {host}: the deploy lock of {app} in {env} is held by {holder}");
                }
                Taken::Failed(why) => eprintln!("error: {host}: could not lock {app} in {env}: {why}"),
            }
        }
        let release =
            results.iter().filter(|(_, t)| matches!(t, Taken::Held(_))).filter_map(|(host, _)| places.iter().find(|p| &p.host == host));
        let released = join_all(release.map(|place| {
            let exec = &exec;
            async move { (place.host.clone(), exec.run_task(place, &unlock_steps()).await) }
        }))
        .await;
        let mut kept = false;
        for (host, result) in released {
            if let Some(failure) = result.failure {
                eprintln!("warning: {host}: the lock this hold took could not be released: {failure}; `kai unlock {env} {app}` breaks it");
                (code, kept) = (1, true);
            }
        }
        if !kept {
            eprintln!("nothing was held (a lock taken on the way was released)");
        }
        code
    }
}

/// What the lock steps of the hold did on one host.
fn taken(result: &TaskResult) -> Taken {
    match &result.failure {
        None => Taken::Held(parse_probe(result.outputs.get(1).map_or("", |o| o.stdout.as_str())).current),
        Some(f) if f.step == StepKind::Lock && result.outputs.first().and_then(|o| o.code) == Some(LOCK_HELD) => {
            Taken::Busy(parse_lock_owner(result.outputs.first().map_or("", |o| o.stdout.trim())))
        }
        // The lock was taken when a later step (the read) failed: released with the others.
        Some(f) if f.step != StepKind::Lock => Taken::Held(None),
        Some(f) => Taken::Failed(f.to_string()),
    }
}
