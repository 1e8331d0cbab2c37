//! `kai plan` (and `--dry-run`): every command a deploy would run, per host, in order;
//! runs nothing. Made the one way a deploy makes it (see [`super::run`]); saved with
//! `--out FILE` for `kai deploy --plan FILE`.

use std::path::PathBuf;

use kai_core::facts::LockOwner;
use kai_core::plan::Options;

use super::prepare::{self, SyncWish};
use super::run::{self, run_id, saved_app, Runner};
use crate::error::CliError;
use crate::progress::Progress;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::EnvTransport;

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
    plan: kai_core::plan::json::PlanDoc<'p>,
    /// Hosts locked by someone else: a deploy now would stop there.
    locked: Vec<Locked<'p>>,
}

/// Prints the `--json` document of these plans (`kai plan`, `kai rollback --dry-run`).
pub fn emit_json<'p>(
    env: &'p str,
    plans: impl Iterator<Item = (&'p kai_core::plan::AppPlan, &'p std::collections::BTreeMap<String, kai_core::facts::HostFacts>)>,
) -> Result<(), CliError> {
    let apps = plans
        .map(|(plan, facts)| PlanEntry {
            plan: plan.to_doc(),
            locked: facts.iter().filter_map(|(host, f)| Some(Locked { host, by: f.lock.as_ref()? })).collect(),
        })
        .collect();
    crate::output::emit_json(&PlanOutput { env, apps })
}

#[derive(serde::Serialize)]
struct Locked<'p> {
    host: &'p str,
    by: &'p LockOwner,
}

/// What to plan: `kai plan`, and `kai deploy --dry-run`, `kai promote --dry-run`.
pub struct PlanRequest {
    pub env: String,
    pub apps: Vec<String>,
    /// Every app placed in the environment, each at its newest release (`apps` is empty).
    pub all: bool,
    /// Promote what FROM runs.
    pub from: Option<String>,
    pub local: resolve::LocalWish,
    pub only: Vec<String>,
    pub force: bool,
    pub sync: SyncWish,
    /// Show every command.
    pub commands: bool,
    /// Save the plan here.
    pub out: Option<PathBuf>,
}

/// Makes the plan of each app from the hosts as they are, prints it (or its `--json`
/// document) and saves it when asked.
pub async fn show(config: &Option<PathBuf>, json: bool, args: PlanRequest, settings: &Settings) -> Result<u8, CliError> {
    let prepared = prepare::prepare(config, settings, &args.env, args.sync).await?;
    let config = &prepared.config;
    let environment = &config.environments[&args.env];
    crate::config_files::check_only(environment, &args.only)?;
    let repo = resolve::repository(config, settings)?;
    let (mut releases, wanted) = match &args.from {
        Some(from) => {
            crate::config_files::environment(config, from)?;
            crate::ops::promote::same_environment(from, &args.env)?;
            let apps = crate::ops::promote::apps(config, from, &args.env, &args.apps)?;
            (crate::ops::promote::releases(config, from, &apps, &repo, settings).await?, Vec::new())
        }
        None => {
            let (releases, named) = resolve::locals(config, &args.env, &args.apps, &args.local, settings).await?;
            let wanted = if args.all { resolve::all_placed(config, &args.env)? } else { resolve::parse_apps(config, &args.env, &named)? };
            (releases, wanted)
        }
    };
    for (app, wanted) in &wanted {
        let version = resolve::resolve_version(&repo, config, app, wanted).await?;
        let release =
            resolve::release(&repo, config, app, &version).await.map_err(|e| resolve::configuration_error(&repo, config, app, e))?;
        releases.push((*app, release));
    }
    let progress = Progress::new(&args.env, true);
    let runner = Runner::new(
        &prepared,
        &args.env,
        &repo,
        settings,
        &progress,
        Options { run_id: run_id(), force: args.force, only: args.only.clone() },
    );
    let transport = EnvTransport::open(environment, settings);
    let mut runner = runner;
    if releases.len() > 1 {
        // Every app's hosts at once, one script per host, rather than once per app.
        let apps: Vec<&kai_core::config::App> = releases.iter().map(|(app, _)| *app).collect();
        runner.ahead = Some(crate::fleet::ReadAhead::read(&transport, config, &args.env, &apps, &args.only).await);
    }
    let mut planned = Vec::new();
    let mut failed = None;
    for (app, release) in &releases {
        match runner.plan(&transport, app, release).await {
            Ok((plan, facts)) => planned.push((plan, facts, release)),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    transport.close().await;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(out) = &args.out {
        let apps = planned.iter().map(|(plan, facts, release)| saved_app(plan, Some(release), facts)).collect();
        let saved = run::saved_plan(&prepared, &args.env, &runner, apps);
        let text = serde_json::to_string_pretty(&saved).map_err(|e| CliError::Failed(e.into()))?;
        write_private(out, &(text + "\n")).map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", out.display())))?;
    }
    if json {
        emit_json(&args.env, planned.iter().map(|(plan, facts, _)| (plan, facts)))?;
        return Ok(0);
    }
    let mut text = String::new();
    for (i, (plan, facts, _)) in planned.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&if args.commands { plan.to_string() } else { plan.summary() });
        for (host, f) in facts {
            if let Some(holder) = &f.lock {
                text.push_str(&format!("  note: {host} is locked by {holder}; a deploy now would stop there\n"));
            }
        }
    }
    if args.commands {
        text.push_str("\nEvery script above starts with kai's helper functions (then the `kai_enter` line); they are:\n");
        for line in kai_core::shell::helpers::HELPERS.lines() {
            text.push_str(&format!("    {line}\n"));
        }
    } else if planned.iter().any(|(plan, _, _)| !plan.is_noop()) {
        text.push_str("\nevery command, per host, as it is sent: add --commands\n");
    }
    if let Some(out) = &args.out {
        text.push_str(&format!(
            "\nsaved to {} (readable by you only): `kai deploy --plan {}` makes the plan again and runs it only if it is this plan, step for step\n",
            out.display(),
            out.display()
        ));
    }
    crate::output::emit(&text);
    Ok(0)
}

/// Writes `text` to `path`, readable and writable by its owner only (a plan names the
/// hosts, the homes and the commands; its secrets are digests, but it is nobody else's).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}
