//! `kai exec`: one command on every host of an environment (or of one app), at once.

use std::path::PathBuf;

use futures_util::future::join_all;
use kai_core::config::Config;
use kai_core::plan::placements;
use kai_core::shell::command::Command;
use serde::Serialize;

use crate::error::CliError;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Output, Payload, Place, Transport};

/// The longest a command of `kai exec` may run.
const EXEC_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Run a shell command on every host of an environment (or of one application there)
/// in parallel. Each output line is prefixed with its host; the exit status is 1 when
/// any host failed.
///
/// With an application, the command runs as its user in its home; without one, as
/// the host's login (or your ssh configuration's user), in the host's `root` or the
/// login's home. `{host}` in the command is each host's name (as in `[hosts]`).
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    env: String,
    /// Only the hosts of this application, as its user, in its home.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    app: Option<String>,
    /// The command, as you would give it to ssh (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    only: Vec<String>,
    /// Print one JSON document: per host, stdout, stderr and exit code.
    #[arg(long)]
    pub(super) json: bool,
    /// This file (on this machine) is the command's standard input on every host.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    input: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct HostResult {
    host: String,
    exit_code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Set when the command could not run at all (unreachable host, refused login).
    error: Option<String>,
}

pub async fn run(config: &Option<PathBuf>, args: ExecArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    crate::config_files::check_only(environment, &args.only)?;
    let places = places(&config, &args)?;
    if let Some(file) = &args.input {
        if !file.is_file() {
            let hint = "give a file on this machine: it is sent to every host as the command's standard input";
            return Err(CliError::usage(format!("--input {}: no such file", file.display()), Some(hint.into())));
        }
    }
    let text = args.command.join(" ");
    let transport = EnvTransport::open(environment, settings);
    let results = run_all(&transport, &places, &text, args.input.as_deref()).await;
    transport.close().await;
    let failed = results.iter().any(|r| r.exit_code != Some(0));
    if args.json {
        crate::output::emit_json(&results)?;
    } else {
        print_prefixed(&results);
    }
    Ok(u8::from(failed))
}

fn places(config: &Config, args: &ExecArgs) -> Result<Vec<Place>, CliError> {
    let environment = &config.environments[&args.env];
    match &args.app {
        Some(name) => {
            let app = crate::config_files::application(config, name)?;
            Ok(placements(config, &args.env, app, &args.only)
                .map_err(|e| CliError::usage(e.to_string(), None))?
                .iter()
                .map(Place::from)
                .collect())
        }
        None => {
            Ok(environment.hosts.values().filter(|h| args.only.is_empty() || args.only.contains(&h.name)).map(Place::host_level).collect())
        }
    }
}

/// The command for one host: `{host}` is its name (a checked identifier: plain text
/// in any shell context). The text is one quoted word given to `eval` (after the line
/// that enters the home): shell text as `sh -c` would take it, without starting
/// another shell.
fn command_for(text: &str, place: &Place) -> Command {
    Command::new(["eval", &text.replace("{host}", &place.host)])
}

async fn run_all<T: Transport>(transport: &T, places: &[Place], text: &str, input: Option<&std::path::Path>) -> Vec<HostResult> {
    join_all(places.iter().map(|place| async move {
        // One command a host: the login shell runs it (a channel of its own over SSH),
        // not a kept shell reading a script. The marker line says it got into the home.
        let marker = crate::transport::token();
        let remote = place.access.single_marked(&command_for(text, place), &marker);
        let input = input.map_or(Payload::Nothing, Payload::File);
        let sent = match transport.send(place, &remote, input, EXEC_LIMIT).await {
            Ok(out) => after_marker(out, &marker),
            Err(e) => Err(e.reason().to_string()),
        };
        match sent {
            Ok(out) => HostResult { host: place.host.clone(), exit_code: out.code, stdout: out.stdout, stderr: out.stderr, error: None },
            Err(reason) => {
                HostResult { host: place.host.clone(), exit_code: None, stdout: String::new(), stderr: String::new(), error: Some(reason) }
            }
        }
    }))
    .await
}

/// The command's own output (the marker line taken away), or why the host could not
/// run it when the marker never came (a home that cannot be entered, sudo refusing).
fn after_marker(out: Output, marker: &str) -> Result<Output, String> {
    match out.stdout.strip_prefix(&format!("{marker}\n")) {
        Some(stdout) => Ok(Output { stdout: stdout.to_owned(), ..out }),
        None => Err(kai_core::shell::session::could_not_run("the command", &out)),
    }
}

fn print_prefixed(results: &[HostResult]) {
    let width = results.iter().map(|r| r.host.len()).max().unwrap_or(0);
    for r in results {
        // What the hosts printed, escaped (a tab kept): a command's output cannot move
        // this terminal's cursor or forge another host's line. `--json` has it as it was.
        let shown = |line: &str| line.split('\t').map(kai_core::table::printable).collect::<Vec<_>>().join("\t");
        for line in r.stdout.lines() {
            println!("{:width$}: {}", r.host, shown(line));
        }
        for line in r.stderr.lines() {
            eprintln!("{:width$}! {}", r.host, shown(line));
        }
        match (&r.error, r.exit_code) {
            (Some(error), _) => {
                let reason = error.strip_prefix(&format!("{}: ", r.host)).unwrap_or(error);
                eprintln!("{:width$}! could not run: {}", r.host, kai_core::table::printable(reason));
            }
            (None, Some(0)) => {}
            (None, Some(code)) => eprintln!("{:width$}! exit status {code}", r.host),
            (None, None) => eprintln!("{:width$}! killed by a signal", r.host),
        }
    }
}
