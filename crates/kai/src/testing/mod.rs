//! What kai's own tests drive kai with: [`FakeTransport`], a scripted host with no
//! process and no socket, and [`deploy`], one app's deploy through it the way `kai
//! deploy` runs one (the deploy machine, the executor, the balancer, every wait). The
//! integration tests (`tests/drive.rs`) and the unit tests use the same.

mod fake;

use std::time::SystemTime;

use kai_core::config::Config;
use kai_core::deploy::{Context, Report, What};
use kai_core::facts::LockOwner;
use kai_core::plan::Options;

pub use fake::{Answer, FakeTransport};

use crate::balancer::Balancer;
use crate::drive::steps::Executor;
use crate::progress::Progress;
use crate::transport::Transport;

/// Deploys (or rolls back, as `what` says) `app` to `env` through `transport`, quietly,
/// as `ann@ws1` in run `r1`; `stop` is read before each round of work and while a wait
/// sleeps. What the deploy machine reported.
///
/// # Panics
///
/// When `env` or `app` is not in `config`.
pub async fn deploy<T: Transport>(
    transport: &T,
    config: &Config,
    env: &str,
    app: &str,
    what: What,
    stop: &(dyn Fn() -> bool + Sync),
) -> Report {
    let environment = &config.environments[env];
    let balancer = Balancer::new(transport, environment);
    let http = reqwest::Client::new();
    let exec = Executor { stop, ..Executor::silent(&balancer, &http) };
    let ctx = context(config, env, app, what);
    crate::drive::app::drive_app(&exec, environment, ctx, &Progress::new(env, true), stop).await
}

/// The deploy of `app` the tests run: ann's, from ws1, run `r1`, starting now.
fn context<'c>(config: &'c Config, env: &'c str, app: &str, what: What) -> Context<'c> {
    let owner = LockOwner {
        user: "ann".into(),
        machine: "ws1".into(),
        pid: 1,
        since: "2026-01-01T00:00:00Z".into(),
        command: "kai deploy".into(),
        hold: None,
    };
    Context {
        config,
        env,
        app: &config.apps[app],
        what,
        options: Options { run_id: "r1".into(), force: false, only: Vec::new() },
        owner,
        started: SystemTime::now(),
    }
}

/// [`deploy`] with `--lock-wait limit`: tried again while someone else holds a lock.
/// The last try's report and how the wait ended.
///
/// # Panics
///
/// When `env` or `app` is not in `config`.
pub async fn deploy_waiting<T: Transport>(
    transport: &T,
    config: &Config,
    env: &str,
    app: &str,
    what: What,
    limit: std::time::Duration,
) -> (Report, kai_core::lock_wait::Waited) {
    let environment = &config.environments[env];
    let balancer = Balancer::new(transport, environment);
    let http = reqwest::Client::new();
    let exec = Executor::silent(&balancer, &http);
    let context = || context(config, env, app, what.clone());
    let progress = Progress::new(env, true);
    crate::drive::lock_wait::drive_app_waiting(&exec, environment, limit, "this-machine", context, &progress).await
}
