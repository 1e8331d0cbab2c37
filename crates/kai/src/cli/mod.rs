//! The command line: one file per subcommand, each an `Args` struct whose doc
//! comments are its `--help`, and one function that calls into the library.

mod args;
mod check;
mod completions;
mod deploy;
mod diff;
mod exec;
mod globals;
pub(crate) mod history;
mod init;
mod lock;
mod man;
mod notify;
mod plan;
mod promote;
mod ps;
mod rollback;
mod secrets;
mod serve;
mod status;
mod versions;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::progress::Look;
use crate::settings::Settings;
pub use globals::Globals;

/// Deploy versioned artifacts from a Maven repository to your servers, one server
/// at a time, without downtime.
///
/// Start with `kai plan <env> <app>` to see every command a deploy would run, then
/// `kai deploy <env> <app>[-<version>]...`.
#[derive(Debug, Parser)]
#[command(name = "kai", version = env!("KAI_VERSION"), max_term_width = 100)]
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
    Promote(promote::PromoteArgs),
    Diff(diff::DiffArgs),
    Check(check::CheckArgs),
    Versions(versions::VersionsArgs),
    Notify(notify::NotifyArgs),
    Exec(exec::ExecArgs),
    Status(status::StatusArgs),
    History(history::HistoryArgs),
    Ps(ps::PsArgs),
    Serve(serve::ServeArgs),
    Lock(lock::LockArgs),
    Unlock(lock::UnlockArgs),
    Init(init::InitArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
    Secrets(secrets::SecretsArgs),
}

impl Cli {
    /// What to do after kai was stopped at once in the middle of this command (a second
    /// Ctrl-C): where to look, and how to finish what it left, with its names.
    pub fn stop_hint(&self) -> String {
        let (env, app) = match &self.command {
            Command::Deploy(args) => (args.env.clone(), None),
            Command::Rollback(args) => (Some(args.env.clone()), Some(args.app.clone())),
            Command::Promote(args) => (Some(args.to.clone()), None),
            _ => (None, None),
        };
        match (env, app) {
            (Some(env), Some(app)) => format!(
                "`kai status {env} {app}` shows what runs where and the lock left; `kai unlock {env} {app}`, then a new deploy, finishes it"
            ),
            (Some(env), None) => format!(
                "`kai status {env}` shows what runs where and which locks are left; `kai unlock {env} APP` for each, then a new deploy, finishes it"
            ),
            _ => "`kai status` shows what runs where and which locks are left".to_owned(),
        }
    }
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
    if cli.json
        && matches!(cli.command, Command::Notify(_) | Command::Init(_) | Command::Completions(_) | Command::Man(_) | Command::Serve(_))
    {
        return Err(CliError::usage(
            "--json: this command has no JSON output",
            Some(
                "--json works with plan, deploy, rollback, promote, diff, versions, check, exec, status, history, ps, lock and unlock"
                    .into(),
            ),
        ));
    }
    match cli.command {
        Command::Deploy(args) => deploy::run(&globals, args, &settings).await,
        Command::Plan(args) => plan::run(&globals, args, &settings).await,
        Command::Rollback(args) => rollback::run(&globals, args, &settings).await,
        Command::Promote(args) => promote::run(&globals, args, &settings).await,
        Command::Diff(args) => diff::run(&globals, args, &settings).await,
        Command::Check(args) => check::run(&cli.config, args, &settings).await,
        Command::Versions(args) => versions::run(&globals, args, &settings).await,
        Command::Notify(args) => notify::run(&cli.config, args, &settings).await,
        Command::Exec(args) => exec::run(&cli.config, args, &settings).await,
        Command::Status(args) => status::run(&cli.config, args, &settings).await,
        Command::History(args) => history::run(&cli.config, args, &settings).await,
        Command::Ps(args) => ps::run(&cli.config, args, &settings).await,
        Command::Serve(args) => serve::run(&cli.config, args, &settings).await,
        Command::Lock(args) => lock::show(&cli.config, args, &settings).await,
        Command::Unlock(args) => lock::unlock(&cli.config, cli.quiet, args, &settings).await,
        Command::Init(args) => init::run(args, &settings),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args, &settings),
        Command::Secrets(args) => secrets::run(&cli.config, args, &settings).await,
    }
}
