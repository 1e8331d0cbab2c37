//! `kai rollback`: back to an earlier release still on the servers, the same rolling
//! path as a deploy.

use kai_core::config::TransportKind;
use kai_core::plan::{rollback_version, Options};

use super::deploy::{ask, can_ask, exit_code, preview, print_outcome};
use super::plan::{lock_owner, run_id};
use super::Globals;
use crate::balancer::Balancer;
use crate::deploy::{deploy_app, AppReport, Request, What};
use crate::error::CliError;
use crate::executor::Executor;
use crate::progress::Progress;
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
    /// Do not update the configuration repository first (see `kai deploy --help`).
    #[arg(long)]
    pub no_sync: bool,
    /// Roll back on a protected environment even though the configuration has
    /// uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
}

pub async fn run(globals: &Globals, args: RollbackArgs, settings: &Settings) -> Result<u8, CliError> {
    let root = super::config_root(&globals.config, settings)?;
    let synced = super::sync_config(&root, args.no_sync).await?;
    let config = super::load_config_at(&root)?;
    let environment = super::environment(&config, &args.env)?;
    super::refuse_dirty(synced.as_ref(), environment, args.allow_dirty)?;
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
    let confirm = environment.protected && !args.yes;
    if confirm {
        can_ask(&args.env, "roll back", settings)?;
    }
    let progress = Progress::with_look(&args.env, globals.look);
    let request = || Request {
        config: &config,
        env: &args.env,
        app,
        what: What::Rollback(args.to.clone()),
        options: Options { run_id: run_id(), force: false, only: args.only.clone() },
        owner: lock_owner(settings),
    };
    let report = match environment.transport {
        TransportKind::Local => rollback(&LocalTransport::default(), &progress, request(), confirm).await?,
        TransportKind::Ssh => {
            let transport = SshTransport::new(environment, SshOptions::for_environment(environment));
            let report = rollback(&transport, &progress, request(), confirm).await;
            transport.close().await;
            report?
        }
    };
    let reports = [report];
    let code = exit_code(&reports);
    print_outcome(globals, "rollback", &args.env, &reports, code)?;
    crate::notify::after_deploy(&config, &args.env, settings, &reports).await;
    Ok(code)
}

/// Asks first when `confirm` (showing where each host goes back to), then rolls back.
async fn rollback<T: Transport>(transport: &T, progress: &Progress, request: Request<'_>, confirm: bool) -> Result<AppReport, CliError> {
    let (config, env, app, only) = (request.config, request.env, request.app, &request.options.only);
    if confirm {
        let to = match &request.what {
            What::Rollback(to) => to.as_deref(),
            What::Deploy(release) => Some(release.version.as_str()),
        };
        let lines = preview(transport, config, env, app, only, |facts| match rollback_version(config, env, app, to, facts, only) {
            Ok(version) => version,
            Err(e) => format!("? ({e})"),
        })
        .await;
        ask(env, "roll back", &lines)?;
    }
    let http = reqwest::Client::builder().build().map_err(|e| CliError::Failed(e.into()))?;
    let balancer = Balancer::new(transport, &request.config.environments[request.env]);
    let exec = Executor { transport, balancer: &balancer, http: &http, progress, app: &request.app.name, download_credentials: None };
    progress.expect(&[app.name.as_str()]);
    let report = progress.while_running(deploy_app(&exec, request)).await;
    progress.finish(&report);
    Ok(report)
}
