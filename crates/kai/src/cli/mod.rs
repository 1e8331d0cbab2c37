//! The command line: one file per subcommand, each an `Args` struct whose doc
//! comments are its `--help`, and one function that calls into the library.

mod check;
mod completions;
mod deploy;
mod exec;
mod history;
mod init;
mod lock;
mod man;
mod notify;
mod plan;
mod ps;
mod rollback;
mod status;
mod survey;
mod versions;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use kai_core::config::{Config, Environment};
use kai_core::suggest::{did_you_mean, nearest};

use crate::error::CliError;
use crate::progress::Look;
use crate::settings::Settings;
use crate::sync::Synced;

/// Deploy versioned artifacts from a Maven repository to your servers, one server
/// at a time, without downtime.
///
/// Start with `kai plan <env> <app>` to see every command a deploy would run, then
/// `kai deploy <env> <app>[-<version>]...`.
#[derive(Debug, Parser)]
#[command(name = "kai", version, max_term_width = 100)]
pub struct Cli {
    /// The configuration repository (the folder holding kai.toml). Default: $KAI_CONFIG,
    /// else the nearest folder upwards holding kai.toml.
    #[arg(long, global = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub config: Option<PathBuf>,

    /// Print only warnings, failures and the summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Show every step on every host as it ends (on a terminal the default is one live
    /// line per application).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print one JSON document on standard output and nothing else there; progress and
    /// the summary go to standard error.
    #[arg(long, global = true)]
    pub json: bool,

    /// No colors (NO_COLOR set to anything does the same).
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Deploy(deploy::DeployArgs),
    Plan(plan::PlanArgs),
    Rollback(rollback::RollbackArgs),
    Check(check::CheckArgs),
    Versions(versions::VersionsArgs),
    Notify(notify::NotifyArgs),
    Exec(exec::ExecArgs),
    Status(status::StatusArgs),
    History(history::HistoryArgs),
    Ps(ps::PsArgs),
    Lock(lock::LockArgs),
    Unlock(lock::UnlockArgs),
    Init(init::InitArgs),
    Completions(completions::CompletionsArgs),
    #[command(hide = true)]
    Man(man::ManArgs),
}

/// The options given before (or after) the command that the commands share.
#[derive(Clone, Debug)]
pub struct Globals {
    pub config: Option<PathBuf>,
    pub json: bool,
    pub look: Look,
}

/// Runs the command; `Ok` carries the exit code of a command that ran to its end.
///
/// `--json` is global; the commands that had their own `--json` (check, exec, status,
/// history, ps, lock, unlock) keep it: clap gives both the same value.
pub async fn run(cli: Cli, settings: Settings) -> Result<u8, CliError> {
    let globals = Globals {
        config: cli.config.clone(),
        json: cli.json,
        look: Look {
            quiet: cli.quiet,
            verbose: cli.verbose,
            live_terminal: settings.stderr_is_live_terminal,
            color: !cli.no_color && !settings.no_color,
        },
    };
    if cli.json && matches!(cli.command, Command::Notify(_) | Command::Init(_) | Command::Completions(_) | Command::Man(_)) {
        return Err(CliError::usage(
            "--json: this command has no JSON output",
            Some("--json works with plan, deploy, rollback, versions, check, exec, status, history, ps, lock and unlock".into()),
        ));
    }
    match cli.command {
        Command::Deploy(args) => deploy::run(&globals, args, &settings).await,
        Command::Plan(args) => plan::run(&globals, args, &settings).await,
        Command::Rollback(args) => rollback::run(&globals, args, &settings).await,
        Command::Check(args) => check::run(&cli.config, args, &settings).await,
        Command::Versions(args) => versions::run(&globals, args, &settings).await,
        Command::Notify(args) => notify::run(&cli.config, args, &settings).await,
        Command::Exec(args) => exec::run(&cli.config, args, &settings).await,
        Command::Status(args) => status::run(&cli.config, args, &settings).await,
        Command::History(args) => history::run(&cli.config, args, &settings).await,
        Command::Ps(args) => ps::run(&cli.config, args, &settings).await,
        Command::Lock(args) => lock::show(&cli.config, args, &settings).await,
        Command::Unlock(args) => lock::unlock(&cli.config, cli.quiet, args, &settings).await,
        Command::Init(args) => init::run(args, &settings),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

/// Finds, reads and validates the configuration repository.
pub fn load_config(explicit: &Option<PathBuf>, settings: &Settings) -> Result<Config, CliError> {
    load_config_at(&config_root(explicit, settings)?)
}

/// The folder of the configuration repository: `--config`, `KAI_CONFIG`, or upwards.
pub fn config_root(explicit: &Option<PathBuf>, settings: &Settings) -> Result<PathBuf, CliError> {
    crate::config_files::find_root(explicit.as_deref(), settings.kai_config.as_deref(), &settings.cwd)
        .map_err(|e| CliError::usage(e.to_string(), Some(e.hint().to_string())))
}

/// Reads and validates the configuration repository at `root`.
pub fn load_config_at(root: &Path) -> Result<Config, CliError> {
    let sources = crate::config_files::read_sources(root).map_err(|e| CliError::usage(e.to_string(), None))?;
    Ok(kai_core::config::load(&sources)?)
}

/// Brings the configuration repository up to date before a deploy or rollback (unless
/// `--no-sync`), telling on stderr what changed; the configuration is loaded after it.
pub async fn sync_config(root: &Path, no_sync: bool) -> Result<Option<Synced>, CliError> {
    if no_sync {
        return Ok(None);
    }
    match crate::sync::sync(root).await {
        Ok(synced) => {
            if let Some(synced) = &synced {
                eprint!("{}", synced.describe());
            }
            Ok(synced)
        }
        Err(e) => Err(CliError::usage(
            format!("{e}; nothing was deployed"),
            Some(format!("resolve it in {} (git status, git pull), or pass --no-sync to deploy what you have", root.display())),
        )),
    }
}

/// Uncommitted configuration changes are only a warning, except on a protected
/// environment without `--allow-dirty`.
pub fn refuse_dirty(synced: Option<&Synced>, environment: &Environment, allow_dirty: bool) -> Result<(), CliError> {
    match synced {
        Some(synced) if !synced.dirty.is_empty() && environment.protected && !allow_dirty => Err(CliError::usage(
            format!(
                "{} is protected and the configuration in {} has uncommitted changes; nothing was deployed",
                environment.name,
                synced.root.display()
            ),
            Some("commit and push them first, or pass --allow-dirty to deploy them anyway".into()),
        )),
        _ => Ok(()),
    }
}

/// The environment named `env`, or a usage error naming the nearest ones.
pub fn environment<'c>(config: &'c Config, env: &str) -> Result<&'c kai_core::config::Environment, CliError> {
    config.environments.get(env).ok_or_else(|| {
        let names = nearest(env, config.environments.keys().map(String::as_str));
        let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
        CliError::usage(
            format!("unknown environment {env:?} (no environments/{env}.toml in {})", config.root.display()),
            Some(did_you_mean(&names).unwrap_or_else(|| format!("known environments: {}", known.join(", ")))),
        )
    })
}

/// The application named `name`, or a usage error naming the nearest ones.
pub fn application<'c>(config: &'c Config, name: &str) -> Result<&'c kai_core::config::App, CliError> {
    config.apps.get(name).ok_or_else(|| {
        let names = nearest(name, config.apps.keys().map(String::as_str));
        CliError::usage(format!("unknown application {name:?} (no apps/{name}.toml in {})", config.root.display()), did_you_mean(&names))
    })
}

/// `--only` hosts must be hosts of the environment.
pub fn check_only(environment: &kai_core::config::Environment, only: &[String]) -> Result<(), CliError> {
    for host in only {
        if !environment.hosts.contains_key(host) {
            let names = nearest(host, environment.hosts.keys().map(String::as_str));
            return Err(CliError::usage(
                format!("--only {host}: no such host in environment {}", environment.name),
                Some(
                    did_you_mean(&names)
                        .unwrap_or_else(|| format!("hosts: {}", environment.hosts.keys().cloned().collect::<Vec<_>>().join(", "))),
                ),
            ));
        }
    }
    Ok(())
}
