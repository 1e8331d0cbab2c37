//! Transports: how kai reaches a host. They send text and bytes and nothing else: what
//! to send (the scripts, the commands, the wrapper that enters the app home) is made
//! in `kai_core::shell::session`, the same text `kai plan` prints. `local` runs it with
//! `/bin/sh -c` on this machine; `ssh` gives it to the host's login shell. Both keep
//! the shells that read scripts running for the whole run ([`shell`]): a script is a
//! frame written to a shell already there, not a new session.

mod local;
mod shell;
mod ssh;
mod trace;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kai_core::outcome::Reason;
use kai_core::shell::command::{Command, Input as CommandInput};
use kai_core::shell::session;

pub use kai_core::outcome::Output;
pub use local::LocalTransport;
pub use ssh::{SshOptions, SshTransport};
pub use trace::Traced;

/// Which host, which account kai logs in as there (SSH; ignored by local hosts), and
/// how its scripts enter the app home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub host: String,
    /// `None`: whatever the SSH configuration says (a proxy).
    pub login: Option<String>,
    pub access: kai_core::shell::session::Access,
}

impl Place {
    /// A host reached as its configured login, in that login's home (a proxy).
    pub fn bare(host: &str) -> Place {
        Place { host: host.to_owned(), login: None, access: kai_core::shell::session::Access { home: None, sudo: None } }
    }
}

impl Place {
    /// A host reached as its configured login, in its `root` (when it has one) rather
    /// than an app home: commands about the host itself.
    pub fn host_level(host: &kai_core::config::Host) -> Place {
        Place {
            host: host.name.clone(),
            login: host.login.clone(),
            access: kai_core::shell::session::Access { home: host.root.clone(), sudo: None },
        }
    }
}

impl From<&kai_core::plan::Placement> for Place {
    fn from(p: &kai_core::plan::Placement) -> Place {
        Place { host: p.host.clone(), login: Some(p.login.clone()), access: p.access.clone() }
    }
}

/// What a command reads on its standard input.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// A script: `real` is sent; `shown` (its secrets masked) is what a trace records.
    Script { real: &'a [u8], shown: &'a str },
    /// A file on this machine, streamed (an upload).
    File(&'a Path),
    /// Nothing: `text` is the whole command, and its standard input is `/dev/null`.
    /// Over SSH it has a channel of its own, the login shell running `text` itself; on
    /// a local host it is a frame of a kept shell, as an upload is.
    Nothing,
}

/// The command could not be run, or its end was not seen (as opposed to: it ran and failed).
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
    /// Past its limit: stopped; `partial` is what it had printed.
    #[error("{host}: no end within {}", humantime::format_duration(*limit))]
    Timeout { host: String, limit: Duration, partial: Output },
    /// It printed more than kai reads of a host ([`MAX_OUTPUT`]): stopped.
    #[error("{host}: printed more than {} MiB, which kai does not read; stopped", MAX_OUTPUT / (1024 * 1024))]
    TooMuch { host: String },
}

/// The most kai reads of what one command or script prints on a host (both streams):
/// a host is untrusted input, and what it sends is read with a bound.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;

impl TransportError {
    /// What it means for the step that was running.
    pub fn reason(&self) -> Reason {
        match self {
            TransportError::Unreachable { reason, .. } => Reason::Unreachable(reason.clone()),
            TransportError::ConnectionLost { reason, .. } => Reason::ConnectionLost(reason.clone()),
            TransportError::Timeout { limit, .. } => Reason::TimedOut(*limit),
            TransportError::TooMuch { .. } => Reason::Refused(self.to_string()),
            TransportError::Spawn { .. } | TransportError::Io { .. } => Reason::Unreachable(self.to_string()),
        }
    }
}

/// What a command printed.
pub(super) struct Exchanged {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Exchanged {
    pub fn output(&self, code: Option<i32>) -> Output {
        Output {
            code,
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
        }
    }
}

/// Reads `stdout` and `stderr` to their end at once (so the command never waits on a
/// full pipe), for at most `limit` and at most [`MAX_OUTPUT`] bytes each (past it the
/// rest is not read, and the command ends when its output is closed, or at `limit`).
/// `Err` holds what had arrived when the limit passed.
pub(super) async fn read_outputs<O, E>(stdout: Option<O>, stderr: Option<E>, limit: Duration) -> Result<Exchanged, Exchanged>
where
    O: tokio::io::AsyncRead + Unpin,
    E: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut done = Exchanged { stdout: Vec::new(), stderr: Vec::new() };
    let (mut out_pipe, mut err_pipe) = (stdout, stderr);
    let within = tokio::time::timeout(limit, async {
        let cap = MAX_OUTPUT as u64;
        let read_out = async {
            if let Some(pipe) = out_pipe.as_mut() {
                let _ = pipe.take(cap).read_to_end(&mut done.stdout).await;
            }
        };
        let read_err = async {
            if let Some(pipe) = err_pipe.as_mut() {
                let _ = pipe.take(cap).read_to_end(&mut done.stderr).await;
            }
        };
        tokio::join!(read_out, read_err);
    })
    .await;
    match within {
        Ok(()) => Ok(done),
        Err(_) => Err(done),
    }
}

/// Runs text on hosts.
pub trait Transport: Send + Sync {
    /// Runs `text` as the remote command on `place` (SSH: the login shell runs it;
    /// local: `/bin/sh -c`), with `input` on its standard input, for at most `limit`
    /// (then it is stopped and [`TransportError::Timeout`] returned). For a
    /// [`Payload::Script`], `text` is a shell reading its script on standard input
    /// ([`session::Access::entry`]), and no command of the script reads it: the
    /// transport may give the script to such a shell that is already running.
    fn send(
        &self,
        place: &Place,
        text: &str,
        input: Payload<'_>,
        limit: Duration,
    ) -> impl Future<Output = Result<Output, TransportError>> + Send;
}

/// The transport of one environment, chosen once: local folders or SSH, traced when
/// `KAI_TRACE` names a file.
pub enum EnvTransport {
    Local(Traced<LocalTransport>),
    Ssh(Box<Traced<SshTransport>>),
}

impl EnvTransport {
    pub fn open(environment: &kai_core::config::Environment, settings: &crate::settings::Settings) -> EnvTransport {
        let trace = settings.trace.as_ref();
        match environment.transport {
            kai_core::config::TransportKind::Local => EnvTransport::Local(Traced::new(LocalTransport::for_environment(environment), trace)),
            kai_core::config::TransportKind::Ssh => {
                let options = SshOptions::for_environment(environment, &ssh::ssh_dir(&settings.cache_dir));
                EnvTransport::Ssh(Box::new(Traced::new(SshTransport::new(environment, options), trace)))
            }
        }
    }

    /// Closes the connections (SSH masters exit).
    pub async fn close(self) {
        if let EnvTransport::Ssh(ssh) = self {
            ssh.inner.close().await;
        }
    }
}

impl Transport for EnvTransport {
    async fn send(&self, place: &Place, text: &str, input: Payload<'_>, limit: Duration) -> Result<Output, TransportError> {
        match self {
            EnvTransport::Local(local) => local.send(place, text, input, limit).await,
            EnvTransport::Ssh(ssh) => ssh.send(place, text, input, limit).await,
        }
    }
}

/// Sends `command` alone, in a script entering `place`'s app home; its output, or
/// why it could not be had. (Inputs a plan hides are not filled in: only the
/// executor's steps carry those.)
pub async fn send_command<T: Transport>(transport: &T, place: &Place, command: &Command, limit: Duration) -> Result<Output, Reason> {
    let token = token();
    let real = |input: &CommandInput| match input {
        CommandInput::Masked { text, .. } => text.clone(),
        other => kai_core::shell::command::shown(other),
    };
    let text = session::script(&place.access, &[command], &token, &real);
    let shown = session::script(&place.access, &[command], &token, &kai_core::shell::command::shown);
    let whole = transport
        .send(place, &place.access.entry(), Payload::Script { real: text.as_bytes(), shown: &shown }, limit)
        .await
        .map_err(|e| e.reason())?;
    let mut outputs = session::parse_outputs(&token, &whole).map_err(Reason::ConnectionLost)?;
    outputs.pop().ok_or_else(|| Reason::ConnectionLost("the script ended before its command".into()))
}

/// A token no command can know in advance: it frames a script's output, so nothing
/// a command prints can pass for the end of a step: `KAI-` and 32 hex digits, 16 bytes
/// from the system's random source.
pub fn token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The system gave no random bytes: the time and the process id still make a
        // token no command is likely to print.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        bytes = (nanos ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("KAI-{hex}")
}
