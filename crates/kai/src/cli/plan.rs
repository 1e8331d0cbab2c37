//! `kai plan`: every command a deploy would run, per host, in order; runs nothing.

use std::collections::BTreeMap;
use std::time::SystemTime;

use kai_core::config::{App, Config, TransportKind};
use kai_core::facts::{HostFacts, LockOwner};
use kai_core::plan::{placements, plan_app, Options};

use super::Globals;
use crate::balancer::Balancer;
use crate::deploy::{ask_health, probe};
use crate::error::CliError;
use crate::executor::Executor;
use crate::progress::Progress;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::{LocalTransport, Place, SshOptions, SshTransport, Transport};

/// Show the plan of a deploy: every command, per host, in order. Reads the hosts'
/// current state; changes nothing.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`.
    #[arg(required = true, value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Plan a redeploy even where the version already runs.
    #[arg(long)]
    pub force: bool,
}

/// The `--json` document: every app's plan.
#[derive(serde::Serialize)]
struct PlanOutput<'p> {
    env: &'p str,
    apps: Vec<PlanEntry<'p>>,
}

/// One app's plan in the `--json` document, with the locks found on its hosts.
#[derive(serde::Serialize)]
struct PlanEntry<'p> {
    #[serde(flatten)]
    plan: kai_core::plan_json::PlanDoc<'p>,
    /// Hosts locked by someone else: a deploy now would stop there.
    locked: Vec<Locked<'p>>,
}

#[derive(serde::Serialize)]
struct Locked<'p> {
    host: &'p str,
    by: &'p LockOwner,
}

pub async fn run(globals: &Globals, args: PlanArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = super::load_config(&globals.config, settings)?;
    let environment = super::environment(&config, &args.env)?;
    super::check_only(environment, &args.only)?;
    let wanted = resolve::parse_apps(&config, &args.env, &args.apps)?;
    let repo = resolve::repository(&config, settings)?;
    let mut versions = Vec::new();
    for (app, wanted) in &wanted {
        versions.push((*app, resolve::resolve_version(&repo, app, wanted).await?));
    }
    let options = Options { run_id: run_id(), force: args.force, only: args.only };
    let owner = lock_owner(settings);
    let mut planned = Vec::new();
    for (app, version) in &versions {
        let release = resolve::release(&repo, &config, app, version, false)
            .await
            .map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", app.name)))?;
        let facts = match environment.transport {
            TransportKind::Local => {
                read_facts(&LocalTransport::default(), &config, &args.env, app, &release.version, &options.only).await?
            }
            TransportKind::Ssh => {
                let transport = SshTransport::new(environment, SshOptions::for_environment(environment));
                let facts = read_facts(&transport, &config, &args.env, app, &release.version, &options.only).await;
                transport.close().await;
                facts?
            }
        };
        let plan = plan_app(&config, &args.env, app, &release, &facts, &owner, &options).map_err(|e| CliError::Failed(e.into()))?;
        planned.push((plan, facts));
    }
    if globals.json {
        let entries: Vec<PlanEntry<'_>> = planned
            .iter()
            .map(|(plan, facts)| PlanEntry {
                plan: plan.to_doc(),
                locked: facts.iter().filter_map(|(host, f)| Some(Locked { host, by: f.lock.as_ref()? })).collect(),
            })
            .collect();
        super::survey::emit_json(&PlanOutput { env: &args.env, apps: entries })?;
        return Ok(0);
    }
    let mut text = String::new();
    for (i, (plan, facts)) in planned.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&plan.to_string());
        for (host, f) in facts {
            if let Some(holder) = &f.lock {
                text.push_str(&format!("  note: {host} is locked by {holder}; a deploy now would stop there\n"));
            }
        }
    }
    super::survey::emit(&text);
    Ok(0)
}

/// Reads every host's facts for `app`, all hosts at once, and asks the hosts that
/// already run `version` whether they are healthy.
async fn read_facts<T: Transport>(
    transport: &T,
    config: &Config,
    env: &str,
    app: &App,
    version: &str,
    only: &[String],
) -> Result<BTreeMap<String, HostFacts>, CliError> {
    let places: Vec<Place> = placements(config, env, app, only).map_err(|e| CliError::Failed(e.into()))?.iter().map(Place::from).collect();
    let mut facts = probe(transport, &places)
        .await
        .map_err(|f| CliError::Failed(anyhow::anyhow!("{}: reading the current state failed: {} {}", f.host, f.reason, f.output)))?;
    let http = reqwest::Client::new();
    let progress = Progress::new(env, true);
    let balancer = Balancer::new(transport, &config.environments[env]);
    let exec = Executor { transport, balancer: &balancer, http: &http, progress: &progress, app: &app.name, download_credentials: None };
    ask_health(&exec, config, env, app, version, &places, &mut facts).await;
    balancer
        .read_rotation(&config.environments[env], app, version, &mut facts)
        .await
        .map_err(|e| CliError::Failed(anyhow::anyhow!("{e}")))?;
    Ok(facts)
}

/// Who kai says holds the lock.
pub fn lock_owner(settings: &Settings) -> LockOwner {
    LockOwner {
        user: settings.user.clone(),
        machine: settings.machine.clone(),
        pid: std::process::id(),
        since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        command: settings.command_line.clone(),
    }
}

/// Unique enough for temporary folder names: time and process.
pub fn run_id() -> String {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    format!("{secs}-{}", std::process::id())
}
