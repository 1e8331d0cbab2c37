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
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub config: Option<PathBuf>,

    /// Print only warnings, failures and the summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// Show every step on every host as it ends (on a terminal the default is one live
    /// line per application).
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print one JSON document on standard output and nothing else there; progress and
    /// the summary go to standard error.
    #[arg(long)]
    pub json: bool,

    /// Color on a terminal (auto), always or never. NO_COLOR set to anything turns auto
    /// off.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: crate::color::When,

    /// The same as --color never.
    #[arg(long, hide = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,

    /// The command's name (`status`), as [`Cli::read`] found it.
    #[arg(skip)]
    pub command_name: String,
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

/// The shared flags, each with the commands it means something to: given before the
/// command (`kai -v deploy`) or after it (`kai deploy -v`, `kai secrets set --config
/// DIR`), shown only in those commands' help.
const SHARED: [(&str, &[&str]); 6] = [
    (
        "config",
        &[
            "deploy", "plan", "rollback", "promote", "diff", "check", "versions", "notify", "exec", "status", "history", "ps", "serve",
            "lock", "unlock", "secrets",
        ],
    ),
    ("quiet", &["deploy", "rollback", "promote", "lock", "unlock"]),
    ("verbose", &["deploy", "rollback", "promote", "lock", "unlock"]),
    ("color", &["deploy", "rollback", "promote", "status", "unlock"]),
    ("no_color", &["deploy", "rollback", "promote", "status", "unlock"]),
    // The commands with a --json of their own (status, check, ...) keep it.
    ("json", &["deploy", "plan", "rollback", "promote", "diff", "versions"]),
];

/// The command line as kai reads it, shows in `--help` and completes: [`Cli`], its
/// shared flags also taken after the commands they mean something to.
pub fn command() -> clap::Command {
    let mut command = <Cli as clap::CommandFactory>::command();
    for (flag, commands) in SHARED {
        let Some(arg) = command.get_arguments().find(|a| a.get_id() == flag).cloned() else { continue };
        for name in commands {
            command = command.mut_subcommand(name, |sub| with_arg(sub, &arg));
        }
    }
    command
}

/// `command` and its subcommands (`kai secrets set`) taking `arg`, unless they have
/// one of that name already.
fn with_arg(mut command: clap::Command, arg: &clap::Arg) -> clap::Command {
    if !command.get_arguments().any(|a| a.get_id() == arg.get_id()) {
        command = command.arg(arg.clone());
    }
    let names: Vec<String> = command.get_subcommands().map(|c| c.get_name().to_owned()).collect();
    for name in names {
        command = command.mut_subcommand(&name, |sub| with_arg(sub, arg));
    }
    command
}

impl Cli {
    /// The command line of this process, read against [`command`].
    pub fn read() -> Result<Cli, clap::Error> {
        use clap::parser::ValueSource;
        use clap::FromArgMatches;
        let matches = command().try_get_matches()?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.command_name = matches.subcommand_name().unwrap_or_default().to_owned();
        // The shared flags given after the command (or after `kai secrets set`).
        let mut under = matches.subcommand();
        while let Some((_, sub)) = under {
            if let Ok(Some(dir)) = sub.try_get_one::<PathBuf>("config") {
                cli.config = Some(dir.clone());
            }
            let flag = |id: &str| sub.try_get_one::<bool>(id).ok().flatten().copied().unwrap_or(false);
            cli.quiet |= flag("quiet");
            cli.verbose |= flag("verbose");
            cli.json |= flag("json");
            cli.no_color |= flag("no_color");
            // (The id is asked for only where the command has it: clap checks that.)
            if let Ok(Some(when)) = sub.try_get_one::<crate::color::When>("color") {
                if sub.value_source("color") == Some(ValueSource::CommandLine) {
                    cli.color = *when;
                }
            }
            under = sub.subcommand();
        }
        if cli.quiet && cli.verbose {
            return Err(command().error(clap::error::ErrorKind::ArgumentConflict, "-q and -v cannot be used together"));
        }
        Ok(cli)
    }

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
    let when = if cli.no_color { crate::color::When::Never } else { cli.color };
    crate::color::choose(when, settings.no_color, settings.term_is_dumb);
    let globals = Globals {
        config: cli.config.clone(),
        json: cli.json,
        look: Look {
            quiet: cli.quiet,
            verbose: cli.verbose,
            live_terminal: settings.stderr_is_live_terminal,
            color: crate::color::stderr(),
        },
    };
    if (cli.quiet || cli.verbose)
        && !matches!(cli.command, Command::Deploy(_) | Command::Rollback(_) | Command::Promote(_) | Command::Unlock(_))
    {
        return Err(CliError::usage(
            format!("{}: `kai {}` shows no progress", if cli.quiet { "-q" } else { "-v" }, cli.command_name),
            Some("-q and -v work with deploy, rollback, promote, lock and unlock".into()),
        ));
    }
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
        Command::Check(mut args) => {
            args.json |= cli.json;
            check::run(&cli.config, args, &settings).await
        }
        Command::Versions(args) => versions::run(&globals, args, &settings).await,
        Command::Notify(args) => notify::run(&cli.config, args, &settings).await,
        Command::Exec(mut args) => {
            args.json |= cli.json;
            exec::run(&cli.config, args, &settings).await
        }
        Command::Status(mut args) => {
            args.json |= cli.json;
            status::run(&cli.config, args, &settings).await
        }
        Command::History(mut args) => {
            args.json |= cli.json;
            history::run(&cli.config, args, &settings).await
        }
        Command::Ps(mut args) => {
            args.json |= cli.json;
            ps::run(&cli.config, args, &settings).await
        }
        Command::Serve(args) => serve::run(&cli.config, args, &settings).await,
        Command::Lock(mut args) => {
            args.json |= cli.json;
            lock::show(&cli.config, cli.quiet, args, &settings).await
        }
        Command::Unlock(mut args) => {
            args.json |= cli.json;
            lock::unlock(&cli.config, cli.quiet, args, &settings).await
        }
        Command::Init(args) => init::run(args, &settings),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args, &settings),
        Command::Secrets(args) => secrets::run(&cli.config, args, &settings).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags a command's help shows.
    fn shown(path: &[&str]) -> Vec<String> {
        let mut command = command();
        command.build();
        let mut at = &command;
        for name in path {
            at = at.find_subcommand(name).unwrap_or_else(|| panic!("no command {name}"));
        }
        at.get_arguments().filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long().map(str::to_owned)).collect()
    }

    #[test]
    fn shared_flags_show_only_where_they_mean_something() {
        let has = |path: &[&str], flag: &str| shown(path).iter().any(|f| f == flag);
        for flag in ["verbose", "quiet", "color", "json", "config"] {
            assert!(has(&["deploy"], flag), "deploy --{flag}");
        }
        for flag in ["verbose", "quiet", "color", "json", "config"] {
            assert!(!has(&["man"], flag) && !has(&["init"], flag) && !has(&["completions"], flag), "--{flag} in man, init or completions");
        }
        assert!(!has(&["status"], "verbose") && has(&["status"], "color") && has(&["status"], "json"));
        assert!(!has(&["plan"], "verbose") && has(&["plan"], "json"));
        assert!(has(&["secrets", "set"], "config") && !has(&["secrets", "set"], "json"));
    }

    #[test]
    fn shared_flags_are_read_before_or_after_the_command() {
        use clap::FromArgMatches;
        let read = |words: &[&str]| {
            let matches = command().try_get_matches_from(std::iter::once("kai").chain(words.iter().copied()))?;
            Cli::from_arg_matches(&matches)
        };
        assert!(read(&["status", "-v"]).is_err(), "status shows no progress");
        assert!(read(&["man", "--json"]).is_err());
        assert!(read(&["deploy", "test", "hello", "-v"]).is_ok());
        assert!(read(&["-v", "deploy", "test", "hello"]).unwrap().verbose);
    }
}
