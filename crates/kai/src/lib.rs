//! `kai`: deploy versioned artifacts from a Maven repository to fleets of servers.
//! The binary is [`main`]; the library exists for it and for kai's own tests
//! ([`testing`]: a scripted [`transport::Transport`] and a deploy driven through it).
//!
//! A tour: [`cli`] parses the command line (one file per command) and prints; what
//! the commands do is in [`ops`]: one preparation (bring the configuration up to date,
//! read and validate it), one confirmation, the plan, and the run of every app of a
//! deploy, rollback or promotion. [`settings`] reads the environment once;
//! [`config_files`] finds and reads the configuration repository (validated by
//! `kai_core::config`); [`resolve`] turns arguments into releases with the
//! [`repository`] client. [`drive`] is the one driver of kai-core's machines: it runs
//! one app's deploy machine, each host's steps through a [`transport`] (local folders
//! or SSH), the balancer steps through [`balancer`], and every wait (health, drain,
//! canary) by answering what the wait asks; it is the only code here that sleeps,
//! besides the transports' deadlines and `kai serve`. [`fleet`] reads what runs where
//! (status, history, ps). [`progress`] tells the person what happens, [`output`] and
//! [`json`] print the result, [`notify`] tells everyone else afterwards. [`sync`]
//! brings a git configuration repository up to date; [`complete`] and
//! [`version_cache`] serve shell completion; [`interrupt`] turns Ctrl-C into a safe stop.

// The tour above names the private modules: kai's documentation is read with
// `--document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

mod balancer;
mod bounded;
mod cli;
mod color;
mod complete;
mod config_files;
mod drive;
mod error;
mod fleet;
mod interrupt;
mod json;
mod limits;
mod listener;
mod notify;
mod ops;
mod output;
mod progress;
mod report;
mod repository;
mod resolve;
mod secrets;
mod settings;
mod sync;
mod terminal;
#[doc(hidden)]
pub mod testing;
pub mod transport;
mod version_cache;

use std::process::ExitCode;

/// The whole of `kai`: the command line read, the command run, its exit status.
pub fn main() -> ExitCode {
    // `COMPLETE=<shell> kai ...`: answer the shell and exit, before anything slow.
    complete::complete_if_asked(cli::command);
    let cli = match cli::Cli::read() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let shown = matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !shown && std::env::args_os().take_while(|a| a != "--").any(|a| a == "--json") {
                let rendered = e.render().to_string();
                // The message is the first paragraph (a list of missing arguments or
                // possible values continues it); the usage and tips follow.
                let first: Vec<&str> = rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
                let message = first.join(" ").trim_start_matches("error: ").to_owned();
                let hint = rendered.lines().find_map(|l| l.trim().strip_prefix("tip: ")).map(str::to_owned);
                json::ErrorDoc::usage(message, hint).print();
            }
            e.exit()
        }
    };
    let json = cli.json;
    let stop_hint = cli.stop_hint();
    limits::raise_open_files();
    let settings = match settings::Settings::from_environment() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: cannot read the working directory: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = cli::run(cli, settings) => Some(outcome),
            () = interrupt::second_signal() => None,
        }
    });
    let say = |text: &str| terminal::write_stderr(&format!("{text}\n"));
    let Some(outcome) = outcome else {
        say("\nstopped at once: what was running stopped where it was; a deploy under way keeps its locks.");
        say(&format!("  hint: {stop_hint}"));
        return ExitCode::from(interrupt::exit_code());
    };
    match outcome {
        Ok(_) if interrupt::requested() => ExitCode::from(interrupt::exit_code()),
        Ok(code) => ExitCode::from(code),
        Err(e) if json => {
            json::ErrorDoc::new(&e).print();
            say(&format!("error: {e}"));
            ExitCode::from(e.exit_code())
        }
        Err(error::CliError::Config(errors)) => {
            for e in &errors.0 {
                say(&format!("error: {e}"));
            }
            let n = errors.0.len();
            say(&format!("{n} problem{} in the configuration; nothing was touched", if n == 1 { "" } else { "s" }));
            ExitCode::from(2)
        }
        Err(e) => {
            say(&format!("error: {e}"));
            if let Some(hint) = e.hint() {
                say(&format!("  hint: {hint}"));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
