//! `kai rollback`: back to an earlier release still on the servers, the same rolling
//! path as a deploy.

use kai_core::plan::{rollback_version, Options};

use super::deploy::{ask, can_ask, exit_code, preview, print_outcome};
use super::globals::Globals;
use crate::error::CliError;
use crate::progress::Progress;
use crate::resolve;
use crate::runner::{self, run_id, Runner, SyncWish, Work};
use crate::settings::Settings;
use crate::transport::EnvTransport;

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
    let prepared =
        runner::prepare(&globals.config, settings, &args.env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    let config = &prepared.config;
    let environment = &config.environments[&args.env];
    crate::config_files::check_only(environment, &args.only)?;
    let app = crate::config_files::application(config, &args.app)?;
    if !app.envs.contains_key(&args.env) {
        return Err(CliError::usage(
            format!("{} is not deployed to {}: apps/{}.toml has no [env.{}] section", app.name, args.env, app.name, args.env),
            None,
        ));
    }
    if let Some(problem) = args.to.as_deref().and_then(kai_core::ident::problem) {
        return Err(CliError::usage(format!("--to {:?}: {problem}", args.to.as_deref().unwrap_or_default()), None));
    }
    let repo = resolve::repository(config, settings)?;
    let progress = Progress::with_look(&args.env, globals.look);
    let runner =
        Runner::new(&prepared, &args.env, &repo, settings, &progress, Options { run_id: run_id(), force: false, only: args.only.clone() });
    let transport = EnvTransport::open(environment, settings);
    let confirm = environment.protected && !args.yes;
    let reports = async {
        if confirm {
            can_ask(&args.env, "roll back", settings)?;
            let (env, only, to) = (args.env.as_str(), &args.only, args.to.as_deref());
            let lines = preview(&transport, config, env, app, only, |facts| match rollback_version(config, env, app, to, facts, only) {
                Ok(version) => version,
                Err(e) => format!("? ({e})"),
            })
            .await;
            ask(env, "roll back", &lines)?;
        }
        Ok::<_, CliError>(runner.deploy(&transport, vec![Work::Rollback { app, to: args.to.clone() }]).await)
    }
    .await;
    transport.close().await;
    let reports = reports?;
    let code = exit_code(&reports);
    print_outcome(globals, "rollback", &args.env, &reports, code)?;
    crate::notify::after_deploy(config, &args.env, settings, &reports).await;
    Ok(code)
}
