//! `kai rollback`: back to an earlier release still on the servers, the same rolling
//! path as a deploy.

use std::path::PathBuf;

use kai_core::config::TransportKind;
use kai_core::plan::Options;

use super::deploy::{confirm, exit_code};
use super::plan::{lock_owner, run_id};
use crate::balancer::Balancer;
use crate::deploy::{deploy_app, AppReport, Request, What};
use crate::error::CliError;
use crate::executor::Executor;
use crate::progress::{summary, Progress};
use crate::settings::Settings;
use crate::transport::{LocalTransport, SshOptions, SshTransport, Transport};

/// Put an application back on the release before the current one (or the one given
/// with --to), server by server behind the load balancer, as a deploy would. Only
/// releases still on the servers can be rolled back to; nothing is downloaded.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// The application (a file in apps/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: String,
    /// The release to go back to (default: the one staged before the current one).
    #[arg(long, value_name = "VERSION", add = clap_complete::ArgValueCompleter::new(crate::complete::versions_of_named_app))]
    pub to: Option<String>,
    /// Do not ask for confirmation on protected environments.
    #[arg(long)]
    pub yes: bool,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
}

pub async fn run(config: &Option<PathBuf>, quiet: bool, args: RollbackArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = super::load_config(config, settings)?;
    let environment = super::environment(&config, &args.env)?;
    super::check_only(environment, &args.only)?;
    let app = super::application(&config, &args.app)?;
    if !app.envs.contains_key(&args.env) {
        return Err(CliError::usage(
            format!("{} is not deployed to {}: apps/{}.toml has no [env.{}] section", app.name, args.env, app.name, args.env),
            None,
        ));
    }
    if let Some(problem) = args.to.as_deref().and_then(kai_core::ident::problem) {
        return Err(CliError::usage(format!("--to {:?}: {problem}", args.to.as_deref().unwrap_or_default()), None));
    }
    if environment.protected && !args.yes {
        let target = args.to.clone().unwrap_or_else(|| "the release before the current one".into());
        confirm(&args.env, "roll back", &[format!("{} to {target}", app.name)])?;
    }
    let progress = Progress::new(&args.env, quiet);
    let request = || Request {
        config: &config,
        env: &args.env,
        app,
        what: What::Rollback(args.to.clone()),
        options: Options { run_id: run_id(), force: false, only: args.only.clone() },
        owner: lock_owner(settings),
    };
    let report = match environment.transport {
        TransportKind::Local => rollback(&LocalTransport::default(), &progress, request()).await?,
        TransportKind::Ssh => {
            let transport = SshTransport::new(environment, SshOptions::for_environment(environment));
            let report = rollback(&transport, &progress, request()).await;
            transport.close().await;
            report?
        }
    };
    let reports = [report];
    print!("{}", summary(&args.env, &reports));
    crate::notify::after_deploy(&config, &args.env, settings, &reports).await;
    Ok(exit_code(&reports))
}

async fn rollback<T: Transport>(transport: &T, progress: &Progress, request: Request<'_>) -> Result<AppReport, CliError> {
    let http = reqwest::Client::builder().build().map_err(|e| CliError::Failed(e.into()))?;
    let balancer = Balancer::new(transport, &request.config.environments[request.env]);
    let exec = Executor { transport, balancer: &balancer, http: &http, progress, app: &request.app.name, download_credentials: None };
    Ok(deploy_app(&exec, request).await)
}
