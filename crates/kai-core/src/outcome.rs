//! What happened when a step ran: the output of a command, and a failure in the words
//! a person needs (which host, which step, the exact command, why, its last output).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::step::StepKind;

/// What a command printed and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last few lines it printed, standard error first.
    pub fn tail(&self) -> crate::untrusted::HostText {
        let text = format!("{}{}", self.stderr, self.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(20)..].join("\n").into()
    }
}

/// Why a step failed. Serialized as the sentence a person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The command ran and exited with this status.
    Exit(i32),
    /// The command was killed by a signal.
    Signal,
    /// The step took longer than its limit.
    TimedOut(Duration),
    /// The command ran, but what it printed is refused (an archive path, a link).
    Refused(String),
    /// Nothing ran: the host could not be reached or logged into.
    Unreachable(String),
    /// The connection broke while the step ran: its outcome on the host is unknown.
    ConnectionLost(String),
    /// A step kai does itself failed (a health check, the balancer).
    Kai(String),
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Reason {
    /// Whether the host may be in a state nobody knows (the step may have half run).
    pub fn state_unknown(&self) -> bool {
        matches!(self, Reason::ConnectionLost(_) | Reason::TimedOut(_))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Exit(code) => write!(f, "exit status {code}"),
            Reason::Signal => f.write_str("killed by a signal"),
            Reason::TimedOut(limit) => write!(f, "did not finish within {}", humantime::format_duration(*limit)),
            // What a host, a balancer or ssh said may be in these: shown escaped.
            Reason::Refused(why) | Reason::Kai(why) => f.write_str(&crate::table::printable(why)),
            Reason::Unreachable(why) => write!(f, "unreachable: {}", crate::table::printable(why)),
            Reason::ConnectionLost(why) => {
                write!(f, "connection lost, the state of the host is unknown ({})", crate::table::printable(why))
            }
        }
    }
}

/// A step that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepFailure {
    pub host: String,
    pub step: StepKind,
    /// The step's plan text.
    pub command: String,
    pub reason: Reason,
    /// The last lines the command printed.
    pub output: crate::untrusted::HostText,
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} failed: {}", self.host, self.step, self.reason)
    }
}
