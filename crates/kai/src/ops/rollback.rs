//! `kai rollback`: back to an earlier release still on the servers, the same rolling
//! path as a deploy; with `--dry-run`, its plan.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kai_core::config::{App, Config};
use kai_core::facts::HostFacts;
use kai_core::plan::{placements, plan_rollback, rollback_version, Options};

use super::confirm::{self, current_versions, preview_lines};
use super::prepare::{self, SyncWish};
use super::run::{run_id, Ran, Runner, Work};
use crate::error::CliError;
use crate::progress::{Look, Progress};
use crate::resolve;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// What `kai rollback` was asked.
pub struct RollbackRequest {
    pub env: String,
    pub app: String,
    /// The release to go back to (default: the one staged before the current one).
    pub to: Option<String>,
    pub only: Vec<String>,
    /// Print the plan instead (every command with `commands`).
    pub dry_run: bool,
    pub commands: bool,
    pub yes: bool,
    pub sync: SyncWish,
    /// How long to wait for a deploy lock someone else holds.
    pub lock_wait: Option<std::time::Duration>,
}

/// Rolls `app` back; with `dry_run`, prints the plan (its `--json` document with
/// `json`) and runs nothing (`None`).
pub async fn rollback(
    config_dir: &Option<PathBuf>,
    look: Look,
    json: bool,
    args: RollbackRequest,
    settings: &Settings,
) -> Result<Option<Ran>, CliError> {
    let prepared = prepare::prepare(config_dir, settings, &args.env, args.sync).await?;
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
    let progress = Progress::with_look(&args.env, look);
    let options = Options { run_id: run_id(), force: false, only: args.only.clone() };
    let mut runner = Runner::new(&prepared, &args.env, &repo, settings, &progress, options.clone());
    runner.lock_wait = args.lock_wait;
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
            if json {
                super::plan::emit_json(env, std::iter::once((&plan, &facts)))?;
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
    let reports = reports?;
    drop(runner);
    Ok(reports.map(|reports| Ran { config: prepared.config, env: args.env, reports }))
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
