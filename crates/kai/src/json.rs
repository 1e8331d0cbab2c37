//! The documents `--json` prints for `deploy` and `rollback` (one per run, on
//! standard output, while progress and the summary go to standard error), and the
//! one every command prints instead when it ends in an error.

use kai_core::facts::LockOwner;
use serde::Serialize;

use crate::error::CliError;
use kai_core::deploy::{AppResult, Report};

/// What `--json` prints when a command stops with an error: `{"error": {...}}`.
#[derive(Debug, Serialize)]
pub struct ErrorDoc {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// `usage` (a wrong name, version, flag or value), `configuration` (the files have
    /// problems: see `problems`) or `failed` (anything else).
    pub kind: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// The exit code kai ends with.
    pub exit_code: u8,
    /// Every problem found in the configuration (only for `configuration`).
    pub problems: Vec<ProblemDoc>,
}

/// One problem in the configuration: where it is and what is wrong.
#[derive(Debug, Serialize)]
pub struct ProblemDoc {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ErrorDoc {
    pub fn new(error: &crate::error::CliError) -> ErrorDoc {
        use crate::error::CliError;
        let (kind, message, problems) = match error {
            CliError::Usage { message, .. } => ("usage", message.clone(), Vec::new()),
            CliError::Config(errors) => {
                let n = errors.0.len();
                let problems = errors
                    .0
                    .iter()
                    .map(|e| ProblemDoc {
                        file: e.file.display().to_string(),
                        line: e.line,
                        key: e.key.clone(),
                        message: e.message.clone(),
                        hint: e.hint.clone(),
                    })
                    .collect();
                ("configuration", format!("{} in the configuration; nothing was touched", kai_core::table::count(n, "problem")), problems)
            }
            CliError::Failed(e) => ("failed", format!("{e:#}"), Vec::new()),
        };
        ErrorDoc { error: ErrorBody { kind, message, hint: error.hint().map(str::to_owned), exit_code: error.exit_code(), problems } }
    }

    /// A command line clap could not read.
    pub fn usage(message: String, hint: Option<String>) -> ErrorDoc {
        ErrorDoc { error: ErrorBody { kind: "usage", message, hint, exit_code: 2, problems: Vec::new() } }
    }

    /// Prints the document on standard output.
    pub fn print(&self) {
        if let Ok(text) = serde_json::to_string_pretty(self) {
            crate::output::emit(&format!("{text}\n"));
        }
    }
}

/// The summary for people, and with `--json` the document for programs: then the
/// summary goes to standard error and the document alone to standard output.
pub fn print_outcome(json: bool, command: &'static str, env: &str, reports: &[Report], code: u8) -> Result<(), CliError> {
    if json {
        crate::terminal::write_stderr(&crate::report::summary(env, reports, crate::color::stderr()));
        crate::output::emit_json(&RunDoc::new(command, env, reports, code))
    } else {
        crate::output::emit(&crate::report::summary(env, reports, crate::color::stdout()));
        Ok(())
    }
}

/// The `--json` document (also `kai serve`'s /api/status).
#[derive(Serialize)]
pub struct StatusDoc<'a> {
    pub hosts: &'a [kai_core::status::HostStatus],
    pub problems: &'a [kai_core::status::Problem],
}

#[derive(Serialize)]
/// The `--json` document of `kai history` (also `kai serve`'s /api/history).
pub struct HistoryDoc<'a> {
    pub events: &'a [kai_core::history::Entry],
    pub unread: &'a [crate::fleet::Unread],
}

/// The outcome of one `kai deploy` or `kai rollback`.
#[derive(Debug, Serialize)]
pub struct RunDoc<'r> {
    /// `deploy`, `rollback` or `promote`.
    pub command: &'static str,
    pub env: &'r str,
    /// Every app deployed (or already up to date).
    pub ok: bool,
    /// The exit code kai ends with (docs/commands.md).
    pub exit_code: u8,
    pub apps: Vec<AppDoc<'r>>,
}

#[derive(Debug, Serialize)]
pub struct AppDoc<'r> {
    pub app: &'r str,
    /// The version the hosts ran before (several, comma-separated, when they differed);
    /// null when nothing was installed or kai stopped before reading it.
    pub from: Option<&'r str>,
    pub to: &'r str,
    pub hosts: &'r [String],
    /// `deployed`, `reverted` (a rollback done), `up-to-date`, `failed`, `rolled-back`,
    /// `halted`, `rollback-failed`, `locked`, `interrupted` or `refused`.
    pub result: &'static str,
    pub ok: bool,
    pub duration_ms: u64,
    pub failure: Option<FailureDoc<'r>>,
    /// Who holds the lock, when the result is `locked`.
    pub locked_by: Option<&'r LockOwner>,
    /// What a person should know or do next.
    pub message: Option<&'r str>,
    /// Set when the release is a local build: its sha256, who deployed it, from which
    /// machine and file.
    pub local: Option<&'r kai_core::local_build::LocalBuild>,
    /// Set by `kai promote`: the environment the release came from.
    pub promoted_from: Option<&'r str>,
    /// The canary's verdict and figures, when the canary wave was judged.
    pub canary: Option<&'r kai_core::canary::Verdict>,
}

#[derive(Debug, Serialize)]
pub struct FailureDoc<'r> {
    pub host: &'r str,
    pub step: &'r str,
    /// The plan text of the failed step.
    pub command: &'r str,
    pub reason: String,
    /// The last lines the command printed.
    pub output: &'r str,
}

impl<'r> RunDoc<'r> {
    pub fn new(command: &'static str, env: &'r str, reports: &'r [Report], exit_code: u8) -> RunDoc<'r> {
        RunDoc { command, env, ok: reports.iter().all(|r| r.result.is_ok()), exit_code, apps: reports.iter().map(app_doc).collect() }
    }
}

fn app_doc(r: &Report) -> AppDoc<'_> {
    AppDoc {
        app: &r.app,
        from: Some(r.from.as_str()).filter(|from| !matches!(*from, "-" | "?")),
        to: &r.to,
        hosts: &r.hosts,
        result: r.result.key(),
        ok: r.result.is_ok(),
        duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
        failure: r.failure.as_ref().map(|f| FailureDoc {
            host: &f.host,
            step: f.step.word(),
            command: &f.command,
            reason: f.reason.to_string(),
            output: f.output.raw(),
        }),
        locked_by: match &r.result {
            AppResult::Locked(owner) => Some(owner),
            _ => None,
        },
        message: r.message.as_deref(),
        local: r.local.as_ref(),
        promoted_from: r.promoted_from.as_deref(),
        canary: r.canary.as_ref(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use kai_core::outcome::{Reason, StepFailure};
    use kai_core::step::StepKind;

    #[test]
    fn a_failed_app_carries_its_failure_and_a_first_install_has_no_from() {
        let reports = [
            Report {
                app: "hello".into(),
                from: "-".into(),
                to: "1.0.0".into(),
                hosts: vec!["web1".into()],
                result: AppResult::RolledBack,
                duration: Duration::from_millis(1500),
                failure: Some(StepFailure {
                    host: "web1".into(),
                    step: StepKind::Health,
                    command: "[kai] poll GET http://x/ready".into(),
                    reason: Reason::Kai("HTTP 500".into()),
                    output: Default::default(),
                }),
                message: None,
                notes: Vec::new(),
                local: None,
                promoted_from: None,
                canary: None,
                outcomes: Default::default(),
                lock_kept: false,
            },
            Report {
                app: "other".into(),
                from: "1.0.0".into(),
                to: "1.0.0".into(),
                hosts: vec![],
                result: AppResult::UpToDate,
                duration: Duration::ZERO,
                failure: None,
                message: None,
                notes: Vec::new(),
                local: None,
                promoted_from: None,
                canary: None,
                outcomes: Default::default(),
                lock_kept: false,
            },
        ];
        let doc = serde_json::to_value(RunDoc::new("deploy", "prod", &reports, 1)).expect("serializes");
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["apps"][0]["from"], serde_json::Value::Null);
        assert_eq!(doc["apps"][0]["result"], "rolled-back");
        assert_eq!(doc["apps"][0]["duration_ms"], 1500);
        assert_eq!(doc["apps"][0]["failure"]["step"], "health");
        assert_eq!(doc["apps"][1]["from"], "1.0.0");
        assert_eq!(doc["apps"][1]["result"], "up-to-date");
    }
}
