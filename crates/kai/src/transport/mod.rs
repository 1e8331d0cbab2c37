//! Transports: how kai reaches a host. The executor only knows the [`Transport`]
//! trait; `local` (hosts are folders on this machine) and, later, `ssh` implement it.

mod batch;
mod local;
mod ssh;

use std::future::Future;
use std::path::{Path, PathBuf};

use kai_core::command::Command;
use kai_core::step::Action;

pub use local::LocalTransport;
pub use ssh::{SshOptions, SshTransport};

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
}

/// Where an app lives on a host: the host's name and the app home kai works in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub host: String,
    pub home: String,
    /// The account the app runs as (kai logs in as it, or uses sudo to become it).
    pub user: String,
}

impl From<&kai_core::plan::Placement> for Place {
    fn from(p: &kai_core::plan::Placement) -> Place {
        Place { host: p.host.clone(), home: p.home.clone(), user: p.user.clone() }
    }
}

/// The command could not be run at all (as opposed to: it ran and failed).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: could not start `{command}`: {source}")]
    Spawn { host: String, command: String, source: std::io::Error },
    #[error("{host}: {path}: {source}")]
    Io { host: String, path: PathBuf, source: std::io::Error },
    /// Could not connect or log in: nothing ran there.
    #[error("{host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// The connection broke while a command ran: its outcome is unknown.
    #[error("{host}: connection lost, the state of the host is unknown ({reason})")]
    ConnectionLost { host: String, reason: String },
    #[error("{host}: `{command}` did not finish within {seconds} s")]
    Timeout { host: String, command: String, seconds: u64 },
}

/// Runs commands and moves files on hosts. Paths are relative to the app home.
pub trait Transport: Send + Sync {
    fn run(&self, place: &Place, command: &Command) -> impl Future<Output = Result<Output, TransportError>> + Send;

    /// Runs `commands` in order, stopping after the first that fails; one output per
    /// command that ran. A transport where a round trip costs sends them as one.
    fn run_batch(&self, place: &Place, commands: &[Command]) -> impl Future<Output = Result<Vec<Output>, TransportError>> + Send {
        async move {
            let mut outputs = Vec::new();
            for command in commands {
                let output = self.run(place, command).await?;
                let failed = !output.success();
                outputs.push(output);
                if failed {
                    break;
                }
            }
            Ok(outputs)
        }
    }

    /// The command that does `action` on the host, when this transport does it with
    /// a command (so it can go in a batch).
    fn command_for(&self, action: &Action) -> Option<Command> {
        match action {
            Action::Run(command) | Action::Inspect { command, .. } => Some(command.clone()),
            _ => None,
        }
    }

    /// Copies `local` to `remote` under a temporary name, then renames it.
    fn upload(&self, place: &Place, local: &Path, remote: &str) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Writes a whole file under a temporary name, then renames it; creates its folder.
    fn write(&self, place: &Place, path: &str, contents: &[u8]) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Appends `line` and a newline to `path`, creating it.
    fn append(&self, place: &Place, path: &str, line: &str) -> impl Future<Output = Result<(), TransportError>> + Send;
}
