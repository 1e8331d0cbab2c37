//! The settings a release runs with on a host: its start and stop commands and its
//! health check, recorded beside its checksum when it is installed
//! (`.kai/checksums/<release>`, third line, JSON). Whatever starts, stops or checks a
//! release later (a put-back, `kai rollback`, the stop of the release a deploy
//! replaces) uses what that release was installed with, not what the configuration
//! says today: a typo in today's `start` must not take down the release it would put
//! back. A release installed by an older kai has no record; it runs with today's
//! configuration, and the plan says so when that may not be what it ran with.

use serde::{Deserialize, Serialize};

use crate::config::{App, Environment, HealthCheck};
use crate::placement::{app_home, host_vars};
use crate::shell::command::Command;
use crate::step::{Action, Step, StepKind};

/// How a release is started, stopped and checked on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Run in `<home>/current`.
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub health: RecordedHealth,
}

/// A health check as it was rendered for one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RecordedHealth {
    Http { url: String },
    Command { argv: Vec<String> },
    None,
}

impl RunSettings {
    /// What the configuration says today for `app` on `host` running `version`.
    pub fn configured(environment: &Environment, app: &App, host: &str, version: &str) -> RunSettings {
        let home = app_home(&environment.hosts[host], app);
        let vars = host_vars(environment, app, host, version, &home);
        let health = match &app.health.check {
            HealthCheck::Http { url } => RecordedHealth::Http { url: url.render(&vars) },
            HealthCheck::Command { argv } => RecordedHealth::Command { argv: argv.clone() },
            HealthCheck::None => RecordedHealth::None,
        };
        RunSettings { start: app.start.clone(), stop: app.stop.clone(), health }
    }

    /// The record's line: one line of JSON (no newline or tab in it).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("run settings always serialize")
    }

    /// A record's line; `None` when it is not one (damaged, or from a newer kai).
    pub fn parse(line: &str) -> Option<RunSettings> {
        serde_json::from_str(line.trim()).ok()
    }

    /// The health step that checks a release running with these settings, polled for
    /// at most `timeout`, then for `stable` more; `None` without a check.
    pub fn health_step(&self, timeout: std::time::Duration, stable: std::time::Duration) -> Option<Step> {
        let action = match &self.health {
            RecordedHealth::Http { url } => Action::HttpHealth { url: url.clone(), timeout, stable },
            RecordedHealth::Command { argv } => {
                Action::CommandHealth { command: Command::new(argv.clone()).cwd("current"), timeout, stable }
            }
            RecordedHealth::None => return None,
        };
        Some(Step::new(StepKind::Health, action))
    }
}

/// The settings a release on a host runs with, and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runs {
    pub settings: RunSettings,
    pub source: Source,
}

/// Where a release's [`RunSettings`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Recorded on the host when the release was installed.
    Recorded,
    /// Today's configuration: the release is the one being installed, or was installed
    /// with the same settings (its recorded fingerprint matches).
    Configured,
    /// Today's configuration, although the release may have been installed with other
    /// settings: it has no record (an older kai installed it) and its fingerprint
    /// differs or is missing.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_and_reads_back() {
        let settings = RunSettings {
            start: vec!["bin/start.sh".into(), "--tab\there".into()],
            stop: vec!["bin/stop.sh".into()],
            health: RecordedHealth::Http { url: "http://10.0.0.1:8080/ready".into() },
        };
        let line = settings.to_line();
        assert!(!line.contains('\n') && !line.contains('\t'), "{line}");
        assert_eq!(RunSettings::parse(&line), Some(settings));
        assert_eq!(RunSettings::parse("settings sha256:00"), None);
        assert_eq!(
            RunSettings::parse(r#"{"start":[],"stop":[],"health":"none","more":1}"#),
            None,
            "a newer kai's record is not guessed at"
        );
    }
}
