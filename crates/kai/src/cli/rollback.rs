//! `kai rollback`: back to an earlier release still on the servers, the same rolling
//! path as a deploy.

use std::collections::BTreeMap;

use kai_core::config::{App, Config};
use kai_core::facts::HostFacts;
use kai_core::plan::{placements, plan_rollback, rollback_version, Options};

use super::globals::Globals;
use crate::error::CliError;
use crate::ops::confirm::{self, current_versions, preview_lines};
use crate::ops::prepare::{self, SyncWish};
use crate::ops::run::{run_id, Runner, Work};
use crate::progress::Progress;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// Put an application back on the release before the current one (or the one given
/// with --to), server by server behind the load balancer, as a deploy would. Only
/// releases still on the servers can be rolled back to; nothing is downloaded. A
/// release staged after the current one (by a deploy stopped or put back before it
/// switched that server) never ran there and is not chosen.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// The application (a file in apps/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: String,
    /// The release to go back to (default: the one staged before the current one).
    #[arg(long, value_name = "VERSION", add = clap_complete::ArgValueCompleter::new(crate::complete::releases_on_servers))]
    pub to: Option<String>,
    /// Print what the rollback would do and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: every command, per host, in order, exactly as kai sends it.
    #[arg(long, requires = "dry_run")]
    pub commands: bool,
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
        prepare::prepare(&globals.config, settings, &args.env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
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
    let options = Options { run_id: run_id(), force: false, only: args.only.clone() };
    let runner = Runner::new(&prepared, &args.env, &repo, settings, &progress, options.clone());
    let env = args.env.as_str();
    let confirm = environment.protected && !args.yes && !args.dry_run;
    if confirm {
        confirm::can_ask_protected(env, "roll back", settings)?;
    }
    let transport = EnvTransport::open(environment, settings);
    let reports = async {
        // Read before anything is locked: a release that is not there is said now (exit 2).
        let facts = read_unlocked(&transport, config, env, app, &args.only).await?;
        let version = rollback_version(config, env, app, args.to.as_deref(), &facts, &args.only).map_err(|e| {
            CliError::usage(format!("{e}; nothing was touched"), Some(format!("`kai status {env} {}` lists what runs where", app.name)))
        })?;
        if args.dry_run {
            let plan =
                plan_rollback(config, env, app, Some(&version), &facts, &runner.owner, &options).map_err(|e| CliError::Failed(e.into()))?;
            if globals.json {
                crate::ops::plan::emit_json(env, std::iter::once((&plan, &facts)))?;
                return Ok(None);
            }
            let text = if args.commands { plan.to_string() } else { plan.summary() };
            crate::output::emit(&format!(
                "{text}\nnothing was changed (--dry-run){}\n",
                if args.commands { "" } else { "; every command: add --commands" }
            ));
            return Ok(None);
        }
        if confirm {
            let placements = placements(config, env, app, &args.only).map_err(|e| CliError::Failed(e.into()))?;
            confirm::ask_protected(env, "roll back", &preview_lines(&app.name, &placements, &current_versions(&facts), &version, false))?;
        }
        Ok::<_, CliError>(Some(runner.deploy(&transport, vec![Work::Rollback { app, to: Some(version) }]).await))
    }
    .await;
    transport.close().await;
    let Some(reports) = reports? else { return Ok(0) };
    let code = crate::report::exit_code(&reports);
    crate::json::print_outcome(globals.json, "rollback", &args.env, &reports, code)?;
    crate::notify::after_run(config, "rollback", &args.env, settings, &reports).await;
    Ok(code)
}

/// What each host of `app` holds, read without taking a lock.
async fn read_unlocked<T: Transport>(
    transport: &T,
    config: &Config,
    env: &str,
    app: &App,
    only: &[String],
) -> Result<BTreeMap<String, HostFacts>, CliError> {
    let places: Vec<Place> = placements(config, env, app, only).map_err(|e| CliError::Failed(e.into()))?.iter().map(Place::from).collect();
    let mut facts = BTreeMap::new();
    for (place, read) in places.iter().zip(crate::fleet::probe(transport, app, &places).await) {
        let found =
            read.map_err(|f| CliError::Failed(anyhow::anyhow!("{} could not be read: {}; nothing was touched", f.host, f.reason)))?;
        facts.insert(place.host.clone(), found);
    }
    Ok(facts)
}
