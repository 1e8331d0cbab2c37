//! `kai plan`: every command a deploy would run, per host, in order; runs nothing.
//! Made the one way a deploy makes it (see [`crate::runner`]); `--out FILE` saves it
//! for `kai deploy --plan FILE`.

use std::path::PathBuf;

use kai_core::facts::LockOwner;
use kai_core::plan::Options;

use super::globals::Globals;
use crate::error::CliError;
use crate::progress::Progress;
use crate::resolve;
use crate::runner::{self, run_id, saved_app, Runner, SyncWish};
use crate::settings::Settings;
use crate::transport::EnvTransport;

/// Show the plan of a deploy: per app, each host's version now and after, and what
/// each phase does where; with --commands, every command, per host, in order, exactly
/// as kai sends it. Reads the hosts' current state; changes nothing. With --out FILE,
/// also saves it (always with every command; readable by you only; secrets as digests):
/// `kai deploy --plan FILE` then makes the plan again and runs it only when it is
/// that plan, step for step, or refuses if anything it was made from has changed.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`;
    /// or a local build: a path to an artifact file (see `kai deploy --help`).
    #[arg(required_unless_present = "from", value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Plan promoting what FROM runs (as `kai promote FROM ENV` would): the apps are
    /// names, every app placed in both when none is given.
    #[arg(long, value_name = "FROM", add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub from: Option<String>,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Plan a redeploy even where the version already runs.
    #[arg(long)]
    pub force: bool,
    /// Do not update the configuration repository first (see `kai deploy --help`).
    #[arg(long)]
    pub no_sync: bool,
    /// Plan for a protected environment even though the configuration has uncommitted
    /// changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Show every command, per host, in order, exactly as kai sends it.
    #[arg(long)]
    pub commands: bool,
    /// Also save the plan to FILE (mode 0600), for `kai deploy --plan FILE`.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub local: LocalArgs,
}

/// What a local build's file name does not say.
#[derive(Debug, Default, clap::Args)]
pub struct LocalArgs {
    /// With a local build: the app it is a build of, when its file name does not say.
    #[arg(long = "app", value_name = "APP", add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub app: Option<String>,
    /// With a local build: its version, when its file name does not say.
    #[arg(long = "version", value_name = "VERSION")]
    pub version: Option<String>,
}

impl LocalArgs {
    pub fn wish(&self) -> resolve::LocalWish {
        resolve::LocalWish { app: self.app.clone(), version: self.version.clone() }
    }
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

/// Prints the `--json` document of these plans (`kai plan`, `kai rollback --dry-run`).
pub(super) fn emit_json<'p>(
    env: &'p str,
    plans: impl Iterator<Item = (&'p kai_core::plan::AppPlan, &'p std::collections::BTreeMap<String, kai_core::facts::HostFacts>)>,
) -> Result<(), CliError> {
    let apps = plans
        .map(|(plan, facts)| PlanEntry {
            plan: plan.to_doc(),
            locked: facts.iter().filter_map(|(host, f)| Some(Locked { host, by: f.lock.as_ref()? })).collect(),
        })
        .collect();
    super::survey::emit_json(&PlanOutput { env, apps })
}

#[derive(serde::Serialize)]
struct Locked<'p> {
    host: &'p str,
    by: &'p LockOwner,
}

pub async fn run(globals: &Globals, args: PlanArgs, settings: &Settings) -> Result<u8, CliError> {
    let prepared =
        runner::prepare(&globals.config, settings, &args.env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    let config = &prepared.config;
    let environment = &config.environments[&args.env];
    crate::config_files::check_only(environment, &args.only)?;
    let repo = resolve::repository(config, settings)?;
    let (mut releases, wanted) = match &args.from {
        Some(from) => {
            crate::config_files::environment(config, from)?;
            crate::promote::same_environment(from, &args.env)?;
            let apps = crate::promote::apps(config, from, &args.env, &args.apps)?;
            (crate::promote::releases(config, from, &apps, &repo, settings).await?, Vec::new())
        }
        None => {
            let (releases, named) = resolve::locals(config, &args.env, &args.apps, &args.local.wish(), settings).await?;
            (releases, resolve::parse_apps(config, &args.env, &named)?)
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
        let saved = runner::saved_plan(&prepared, &args.env, &runner, apps);
        let text = serde_json::to_string_pretty(&saved).map_err(|e| CliError::Failed(e.into()))?;
        write_private(out, &(text + "\n")).map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", out.display())))?;
    }
    if globals.json {
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
        for line in kai_core::remote::HELPERS.lines() {
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
    super::survey::emit(&text);
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
