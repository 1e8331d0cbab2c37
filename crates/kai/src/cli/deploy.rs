//! `kai deploy`: stage, switch, verify.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use futures_util::stream::{self, StreamExt};
use kai_core::config::TransportKind;
use kai_core::plan::Options;

use kai_core::config::{App, Config};
use kai_core::facts::LockOwner;

use super::plan::{lock_owner, run_id, PlanArgs};
use crate::balancer::Balancer;
use crate::deploy::{deploy_app, AppReport, AppResult, Request, What};
use crate::error::CliError;
use crate::executor::Executor;
use crate::progress::{summary, Progress};
use crate::repository::Repository;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::{LocalTransport, SshOptions, SshTransport, Transport};

/// Deploy applications to an environment: stage on every host at once, then switch
/// the active servers one at a time (stop, switch, start, health check); standby
/// servers get the release but stay disabled and stopped. A failure puts that
/// application back as it was; the others carry on.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`.
    #[arg(required = true, value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Print the plan (every command, per host, in order) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation on protected environments.
    #[arg(long)]
    pub yes: bool,
    /// Applications deployed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Redeploy even where the version already runs.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(config: &Option<PathBuf>, quiet: bool, args: DeployArgs, settings: &Settings) -> Result<u8, CliError> {
    if args.dry_run {
        let plan = PlanArgs { env: args.env, apps: args.apps, only: args.only, force: args.force };
        return super::plan::run(config, plan, settings).await;
    }
    let config = super::load_config(config, settings)?;
    let environment = super::environment(&config, &args.env)?;
    super::check_only(environment, &args.only)?;
    let wanted = resolve::parse_apps(&config, &args.env, &args.apps)?;
    let repo = resolve::repository(&config, settings)?;
    let mut versions = Vec::new();
    for (app, wanted) in &wanted {
        versions.push((*app, resolve::resolve_version(&repo, app, wanted).await?));
    }
    if environment.protected && !args.yes {
        let lines: Vec<String> = versions.iter().map(|(app, version)| format!("{} {version}", app.name)).collect();
        confirm(&args.env, "deploy", &lines)?;
    }
    let batch = Batch {
        config: &config,
        env: &args.env,
        repo: &repo,
        progress: Progress::new(&args.env, quiet),
        http: reqwest::Client::builder().build().map_err(|e| CliError::Failed(e.into()))?,
        options: Options { run_id: run_id(), force: args.force, only: args.only.clone() },
        owner: lock_owner(settings),
        credentials: resolve::curl_credentials(&config, settings),
        jobs: usize::from(args.jobs),
    };
    let reports = match environment.transport {
        TransportKind::Local => batch.run(&LocalTransport::default(), versions).await,
        TransportKind::Ssh => {
            let transport = SshTransport::new(environment, SshOptions::for_environment(environment));
            let reports = batch.run(&transport, versions).await;
            transport.close().await;
            reports
        }
    };
    print!("{}", summary(&args.env, &reports));
    crate::notify::after_deploy(&config, &args.env, settings, &reports).await;
    Ok(exit_code(&reports))
}

/// Everything the apps of one `kai deploy` share.
struct Batch<'a> {
    config: &'a Config,
    env: &'a str,
    repo: &'a Repository,
    progress: Progress,
    http: reqwest::Client,
    options: Options,
    owner: LockOwner,
    credentials: Option<String>,
    jobs: usize,
}

impl Batch<'_> {
    /// Deploys the apps, up to `jobs` at once; reports in the order given.
    async fn run<T: Transport>(&self, transport: &T, versions: Vec<(&App, String)>) -> Vec<AppReport> {
        stream::iter(versions).map(|(app, version)| self.one(transport, app, version)).buffered(self.jobs).collect().await
    }

    async fn one<T: Transport>(&self, transport: &T, app: &App, version: String) -> AppReport {
        let release = match resolve::release(self.repo, self.config, app, &version, true).await {
            Ok(release) => release,
            Err(e) => return unavailable(&app.name, &version, e.to_string()),
        };
        self.progress.note(&format!("{} {version}: {}", app.name, describe_source(&release.source)));
        let balancer = Balancer::new(transport, &self.config.environments[self.env]);
        let exec = Executor {
            transport,
            balancer: &balancer,
            http: &self.http,
            progress: &self.progress,
            app: &app.name,
            download_credentials: self.credentials.as_deref(),
        };
        let request = Request {
            config: self.config,
            env: self.env,
            app,
            what: What::Deploy(release),
            options: self.options.clone(),
            owner: self.owner.clone(),
        };
        deploy_app(&exec, request).await
    }
}

fn describe_source(source: &kai_core::plan::Source) -> String {
    match source {
        kai_core::plan::Source::Push { local } => format!("artifact verified, pushing {}", local.display()),
        kai_core::plan::Source::Pull { url, .. } => format!("hosts download {url}"),
    }
}

/// A report for an app whose artifact could not be had: nothing was touched.
fn unavailable(app: &str, version: &str, reason: String) -> AppReport {
    AppReport {
        app: app.to_owned(),
        from: "?".into(),
        to: version.to_owned(),
        hosts: Vec::new(),
        result: AppResult::Failed,
        duration: std::time::Duration::ZERO,
        failure: None,
        message: Some(format!("{reason}; nothing was touched")),
    }
}

/// 0 when every app is deployed or up to date, 3 when the only trouble is a lock
/// held by someone else, 1 otherwise.
pub(super) fn exit_code(reports: &[AppReport]) -> u8 {
    if reports.iter().all(|r| r.result.is_ok()) {
        0
    } else if reports.iter().all(|r| r.result.is_ok() || matches!(r.result, AppResult::Locked(_))) {
        3
    } else {
        1
    }
}

/// On a protected environment, the user types its name to go on: `what` is about
/// to happen to each of `lines`.
pub(super) fn confirm(env: &str, what: &str, lines: &[String]) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            format!("{env} is protected and there is no terminal to confirm on"),
            Some(format!("pass --yes to {what} without confirmation")),
        ));
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{env} is protected. About to {what}:");
    for line in lines {
        let _ = writeln!(err, "  {line}");
    }
    let _ = write!(err, "Type the environment name to go on: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| CliError::Failed(e.into()))?;
    if answer.trim() == env {
        Ok(())
    } else {
        Err(CliError::usage(format!("confirmation {:?} does not match {env}; nothing was changed", answer.trim()), None))
    }
}
