//! A run of `kai plan`, `kai deploy` (also `--dry-run` and `--plan FILE`) or `kai
//! rollback`, from one preparation: bring the configuration up to date and read it,
//! resolve every app's release with its size and the source its hosts will get it
//! from. Then either plan (read the hosts once, plan; print or save) or deploy (each
//! app through its deploy machine, up to `--jobs` at once). There is one way to make a
//! plan, so what `kai plan` prints is what `kai deploy` runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, StreamExt};
use kai_core::config::{App, Config, Environment};
use kai_core::deploy::{Context, What};
use kai_core::facts::{HostFacts, LockOwner};
use kai_core::fingerprint::{self, HostSummary};
use kai_core::plan::saved::{SavedApp, SavedPlan};
use kai_core::plan::{self, placements, AppPlan, Options, Release, Source};

use crate::balancer::Balancer;
use crate::drive::steps::Executor;
use crate::error::CliError;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::{Place, Transport};
use kai_core::deploy::{AppResult, Report};

/// A run that went: what it did to each app, and the configuration it ran with.
pub struct Ran {
    pub config: Config,
    pub env: String,
    pub reports: Vec<Report>,
}

impl Ran {
    /// Prints the outcome (the summary; with `--json` the document too), sends the
    /// notices, and says the exit status.
    pub async fn finish(self, json: bool, command: &'static str, settings: &Settings) -> Result<u8, CliError> {
        let code = crate::report::exit_code(&self.reports);
        crate::json::print_outcome(json, command, &self.env, &self.reports, code)?;
        crate::notify::after_run(&self.config, command, &self.env, settings, &self.reports).await;
        Ok(code)
    }
}

/// What one app of a run is to do.
pub enum Work<'c> {
    Deploy {
        app: &'c App,
        version: String,
    },
    /// A release resolved already: a build pushed from this machine, a promotion.
    Release {
        app: &'c App,
        release: Box<Release>,
    },
    Rollback {
        app: &'c App,
        to: Option<String>,
    },
    Saved {
        app: &'c App,
        saved: Box<SavedApp>,
    },
}

impl Work<'_> {
    pub fn app(&self) -> &App {
        match self {
            Work::Deploy { app, .. } | Work::Release { app, .. } | Work::Rollback { app, .. } | Work::Saved { app, .. } => app,
        }
    }

    fn version(&self) -> String {
        match self {
            Work::Deploy { version, .. } => version.clone(),
            Work::Release { release, .. } => release.version.clone(),
            Work::Rollback { to, .. } => to.clone().unwrap_or_else(|| "?".into()),
            Work::Saved { saved, .. } => saved.plan.version.clone(),
        }
    }
}

/// Everything the apps of one run share.
pub struct Runner<'a> {
    pub config: &'a Config,
    pub env: &'a str,
    pub environment: &'a Environment,
    pub repo: &'a Repository,
    pub progress: &'a Progress,
    pub http: reqwest::Client,
    pub options: Options,
    pub owner: LockOwner,
    pub credentials: Option<String>,
    pub jobs: usize,
    /// `--lock-wait`: how long an app waits for a deploy lock someone else holds.
    pub lock_wait: Option<Duration>,
    pub started: SystemTime,
    /// This machine's name: a lock held by a gone process of it is stale.
    machine: String,
    /// The login of httpd's balancer-manager, when the environment has one.
    balancer_login: crate::balancer::Login,
    /// What was read of every app's hosts at once, before each app is planned.
    pub ahead: Option<crate::fleet::ReadAhead>,
}

impl<'a> Runner<'a> {
    pub fn new(
        prepared: &'a super::prepare::Prepared,
        env: &'a str,
        repo: &'a Repository,
        settings: &Settings,
        progress: &'a Progress,
        options: Options,
    ) -> Runner<'a> {
        let config = &prepared.config;
        Runner {
            config,
            env,
            environment: &config.environments[env],
            repo,
            progress,
            http: reqwest::Client::new(),
            options,
            owner: lock_owner(settings),
            credentials: resolve::curl_credentials(config, settings),
            jobs: 4,
            lock_wait: None,
            started: SystemTime::now(),
            machine: settings.machine.clone(),
            balancer_login: crate::balancer::login(&config.environments[env], settings),
            ahead: None,
        }
    }

    /// Deploys every app, up to `jobs` at once; reports in the order given.
    pub async fn deploy<T: Transport>(&self, transport: &T, work: Vec<Work<'_>>) -> Vec<Report> {
        self.progress.expect(&work.iter().map(|w| w.app().name.as_str()).collect::<Vec<_>>());
        let deploys = stream::iter(work).map(|w| self.one(transport, w)).buffered(self.jobs.max(1)).collect();
        self.progress.while_running(deploys).await
    }

    async fn one<T: Transport>(&self, transport: &T, work: Work<'_>) -> Report {
        let app = work.app();
        let what = match self.what(&work).await {
            Ok(what) => what,
            Err(report) => {
                self.progress.finish(&report);
                return report;
            }
        };
        let balancer = Balancer::new(transport, self.environment).with_login(self.balancer_login.clone());
        let progress = self.progress;
        let waits = self.lock_wait.is_some();
        let on_step = |host: &str, step: &kai_core::step::Step, ok: bool| {
            // While it waits for a lock, the wait tells who holds it, not each try.
            if !(waits && !ok && step.kind == kai_core::step::StepKind::Lock) {
                progress.step(&app.name, host, step.kind.word(), ok);
            }
        };
        let on_detail = |text: &str| progress.detail(&app.name, text);
        let on_begin = |host: &str, what: &str| progress.begin(&app.name, host, what);
        let exec = Executor {
            transport,
            balancer: &balancer,
            http: &self.http,
            download_credentials: self.credentials.as_deref(),
            on_step: &on_step,
            on_detail: &on_detail,
            on_begin: &on_begin,
            stop: &crate::interrupt::requested,
        };
        let ctx = |owner: LockOwner| Context {
            config: self.config,
            env: self.env,
            app,
            what: what.clone(),
            options: self.options.clone(),
            owner,
            started: SystemTime::now(),
        };
        let (mut report, waited) = match self.lock_wait {
            None => {
                let ran = crate::drive::app::drive_app(
                    &exec,
                    self.environment,
                    ctx(self.owner.clone()),
                    self.progress,
                    &crate::interrupt::requested,
                );
                (ran.await, None)
            }
            Some(limit) => {
                // Each try's lock says when that try took it.
                let tried =
                    || ctx(LockOwner { since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(), ..self.owner.clone() });
                let (report, waited) =
                    crate::drive::lock_wait::drive_app_waiting(&exec, self.environment, limit, &self.machine, tried, self.progress).await;
                (report, Some(waited))
            }
        };
        if app.health.check == kai_core::config::HealthCheck::None && report.result != AppResult::UpToDate {
            report.notes.push(kai_core::config::no_health_check(&app.name));
        }
        if let AppResult::Locked(owner) = &report.result {
            report.message = Some(held_lock(owner, crate::fleet::lock_alive(owner, &self.machine), self.env, &app.name));
        }
        if let Some(waited) = waited {
            waited.tell(&mut report);
        }
        self.progress.finish(&report);
        report
    }

    /// The deploy machine's `What`: a release resolved (and in push mode downloaded
    /// and verified here), a rollback, or a saved plan whose artifact still matches.
    async fn what(&self, work: &Work<'_>) -> Result<What, Report> {
        let app = work.app();
        let unavailable = |reason: String| Report::unavailable(&app.name, &work.version(), &reason);
        match work {
            Work::Deploy { version, .. } => {
                self.progress.phase(&app.name, "artifact", 0);
                let release = resolve::release(self.repo, self.config, app, version).await.map_err(|e| unavailable(e.to_string()))?;
                Ok(What::Deploy(Box::new(release)))
            }
            Work::Release { release, .. } => Ok(What::Deploy(release.clone())),
            Work::Rollback { to, .. } => Ok(What::Rollback(to.clone())),
            Work::Saved { saved, .. } => {
                let refused = |reason: String| {
                    let mut report = unavailable(reason);
                    report.result = AppResult::Refused;
                    report
                };
                let owner = saved.owner().ok_or_else(|| refused("the plan names no maker kai wrote (was the file changed?)".into()))?;
                let release = match &saved.release {
                    Some(planned) if planned.local.is_some() => {
                        let file = match &planned.source {
                            Source::Push { local } => local.as_path(),
                            Source::Pull { .. } => Path::new(""),
                        };
                        let now = resolve::sha256_of(file).await;
                        Some(kai_core::plan::saved::same_local_build(planned, now).map_err(refused)?)
                    }
                    Some(planned) => {
                        self.progress.phase(&app.name, "artifact", 0);
                        let now = resolve::release(self.repo, self.config, app, &planned.version)
                            .await
                            .map_err(|e| unavailable(e.to_string()))?;
                        Some(kai_core::plan::saved::same_artifact(planned, now).map_err(refused)?)
                    }
                    None => None,
                };
                Ok(What::Saved { plan: Box::new(saved.plan.clone()), facts: saved.facts.clone(), release: release.map(Box::new), owner })
            }
        }
    }

    /// Plans one app from the hosts as they are now (read once, without a lock).
    pub async fn plan<T: Transport>(
        &self,
        transport: &T,
        app: &App,
        release: &Release,
    ) -> Result<(AppPlan, BTreeMap<String, HostFacts>), CliError> {
        let facts = self.read(transport, app, &release.version).await?;
        let plan = plan::plan_app(self.config, self.env, app, release, &facts, &self.owner, &self.options)
            .map_err(|e| CliError::Failed(e.into()))?;
        Ok((plan, facts))
    }

    /// Reads every host of `app`: the probe, then health and rotation for `version`.
    pub async fn read<T: Transport>(&self, transport: &T, app: &App, version: &str) -> Result<BTreeMap<String, HostFacts>, CliError> {
        let placed = placements(self.config, self.env, app, &self.options.only).map_err(|e| CliError::Failed(e.into()))?;
        let places: Vec<Place> = placed.iter().map(Place::from).collect();
        let mut facts = BTreeMap::new();
        for (place, read) in places.iter().zip(crate::fleet::probe_ahead(self.ahead.as_ref(), transport, app, &places).await) {
            let found = read.map_err(|f| {
                CliError::Failed(anyhow::anyhow!("{}: reading the current state failed: {} {}", f.host, f.reason, f.output))
            })?;
            facts.insert(place.host.clone(), found);
        }
        let balancer = Balancer::new(transport, self.environment).with_login(self.balancer_login.clone());
        let health = plan::health_checked(&placed, &facts, version);
        let health: Vec<Place> = places.iter().filter(|p| health.contains(&p.host)).cloned().collect();
        let inspected = crate::fleet::inspect(&self.http, &balancer, self.environment, app, version, &health, &facts)
            .await
            .into_result()
            .map_err(|e| CliError::Failed(anyhow::anyhow!("{e}")))?;
        for (host, inspection) in inspected {
            if let Some(f) = facts.get_mut(&host) {
                f.healthy = inspection.healthy;
                f.in_rotation = inspection.in_rotation;
            }
        }
        Ok(facts)
    }
}

/// The saved form of one app's plan.
pub fn saved_app(plan: &AppPlan, release: Option<&Release>, facts: &BTreeMap<String, HostFacts>) -> SavedApp {
    let summaries: BTreeMap<String, HostSummary> = fingerprint::summaries(facts);
    SavedApp {
        app: plan.app.clone(),
        release: release.cloned(),
        plan: plan.clone(),
        fingerprint: fingerprint::of(&summaries),
        facts: summaries,
    }
}

/// A saved plan of the apps of one run.
pub fn saved_plan(prepared: &super::prepare::Prepared, env: &str, runner: &Runner<'_>, apps: Vec<SavedApp>) -> SavedPlan {
    SavedPlan {
        kai_plan: kai_core::plan::saved::FORMAT,
        env: env.to_owned(),
        config: prepared.fingerprint.clone(),
        commit: prepared.commit.clone(),
        made: humantime::format_rfc3339_seconds(runner.started).to_string(),
        by: format!("{}@{}", runner.owner.user, runner.owner.machine),
        force: runner.options.force,
        only: runner.options.only.clone(),
        apps,
    }
}

/// What a person facing a held lock should know: whether its kai still runs (known
/// only when it runs on this machine), and the exact commands to look and to break it.
pub fn held_lock(owner: &LockOwner, alive: Option<bool>, env: &str, app: &str) -> String {
    let unlock = format!("kai unlock {env} {app}");
    // The owner is what a host holds: shown escaped.
    let p = kai_core::table::printable;
    let owner = LockOwner { user: p(&owner.user), machine: p(&owner.machine), ..owner.clone() };
    let owner = &owner;
    if owner.hold.is_some() {
        return format!(
            "{}@{} holds it by hand (`kai lock --hold`): it stays until `{unlock}` releases it; \
             `--lock-wait DURATION` waits for that",
            owner.user, owner.machine
        );
    }
    match alive {
        Some(false) => format!(
            "the lock is stale: kai pid {} no longer runs on {}. Break it with `{unlock}`, then deploy again: \
             it brings back the hosts the interrupted deploy left",
            owner.pid, owner.machine
        ),
        Some(true) => format!(
            "that kai (pid {}) still runs on this machine: wait for it to end. `kai lock {env} {app}` shows the lock; \
             `{unlock}` breaks it, only if that run is stuck",
            owner.pid
        ),
        None => format!(
            "kai cannot see from here whether pid {} still runs on {}: ask {} or look there. `kai lock {env} {app}` \
             shows the lock; `{unlock}` breaks it when that run is dead",
            owner.pid, owner.machine, owner.user
        ),
    }
}

/// Who kai says holds the lock.
pub fn lock_owner(settings: &Settings) -> LockOwner {
    LockOwner {
        user: settings.user.clone(),
        machine: settings.machine.clone(),
        pid: std::process::id(),
        since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        command: LockOwner::short_command(&settings.command_line),
        hold: None,
    }
}

/// Unique enough for temporary folder names and history runs: time and process.
pub fn run_id() -> String {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    format!("{secs}-{}", std::process::id())
}
