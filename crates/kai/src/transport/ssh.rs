//! The SSH transport: OpenSSH with one multiplexed master connection per host and
//! login (the `openssh` crate, native mux), so the user's `~/.ssh/config`,
//! ProxyJump, agent and known_hosts work exactly as with plain `ssh`. Host keys are
//! always checked strictly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use kai_core::command::{quote, Command};
use kai_core::config::{Environment, Host};
use kai_core::step::Action;
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::{Mutex, OnceCell, Semaphore};

use super::{batch, Output, Place, Transport, TransportError};

/// Writes standard input to `$1` under a temporary name, then renames it.
/// (Its folder is made only when missing, without forking `dirname`: every fork
/// counts on a host that runs hundreds of these.)
const WRITE_SCRIPT: &str = r#"d=${1%/*}; if [ "$d" != "$1" ] && [ ! -d "$d" ]; then mkdir -p -- "$d" || exit; fi; cat > "$1.kai-part" && mv -f -- "$1.kai-part" "$1""#;
/// Appends standard input to `$1`.
const APPEND_SCRIPT: &str = r#"d=${1%/*}; if [ "$d" != "$1" ] && [ ! -d "$d" ]; then mkdir -p -- "$d" || exit; fi; cat >> "$1""#;

#[derive(Clone, Debug)]
pub struct SshOptions {
    /// `ssh -F`: the environment's own ssh_config (default: the user's).
    pub config_file: Option<PathBuf>,
    /// The environment's own known_hosts (default: the user's).
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Connections being opened at once.
    pub max_connecting: usize,
    /// Longest a single command may run.
    pub command_timeout: Duration,
}

impl SshOptions {
    pub fn for_environment(environment: &Environment) -> SshOptions {
        SshOptions {
            config_file: environment.ssh_config.clone(),
            known_hosts: environment.known_hosts.clone(),
            connect_timeout: Duration::from_secs(10),
            max_connecting: 32,
            command_timeout: Duration::from_secs(600),
        }
    }
}

type Slot = Arc<OnceCell<Result<Arc<Session>, String>>>;

/// One connection per (host, login) for the whole run, opened on first use.
pub struct SshTransport {
    hosts: HashMap<String, Host>,
    options: SshOptions,
    sessions: Mutex<HashMap<(String, String), Slot>>,
    connecting: Semaphore,
}

impl SshTransport {
    pub fn new(environment: &Environment, options: SshOptions) -> SshTransport {
        let connecting = Semaphore::new(options.max_connecting.max(1));
        SshTransport { hosts: environment.hosts.clone().into_iter().collect(), options, sessions: Mutex::default(), connecting }
    }

    /// Closes every connection (the master processes exit).
    pub async fn close(self) {
        let sessions = std::mem::take(&mut *self.sessions.lock().await);
        for slot in sessions.into_values() {
            if let Some(Ok(session)) = Arc::try_unwrap(slot).ok().and_then(OnceCell::into_inner) {
                if let Ok(session) = Arc::try_unwrap(session) {
                    let _ = session.close().await;
                }
            }
        }
    }

    fn host(&self, place: &Place) -> Result<&Host, TransportError> {
        self.hosts
            .get(&place.host)
            .ok_or_else(|| TransportError::Unreachable { host: place.host.clone(), reason: "not a host of this environment".into() })
    }

    /// The account kai logs in as: the host's `login`, else the app's user, else
    /// whatever the ssh configuration says (commands not run for an app).
    fn login<'a>(host: &'a Host, place: &'a Place) -> Option<&'a str> {
        host.login.as_deref().or((!place.user.is_empty()).then_some(place.user.as_str()))
    }

    async fn session(&self, place: &Place) -> Result<Arc<Session>, TransportError> {
        let host = self.host(place)?;
        let login = Self::login(host, place).unwrap_or_default().to_owned();
        let slot = self.sessions.lock().await.entry((place.host.clone(), login.clone())).or_default().clone();
        let result = slot
            .get_or_init(|| async {
                let _permit = self.connecting.acquire().await.map_err(|e| e.to_string())?;
                self.builder(host, &login).connect_mux(&host.address).await.map(Arc::new).map_err(|e| connect_reason(&e))
            })
            .await;
        result.clone().map_err(|reason| TransportError::Unreachable { host: place.host.clone(), reason })
    }

    fn builder(&self, host: &Host, login: &str) -> SessionBuilder {
        let mut builder = SessionBuilder::default();
        builder.known_hosts_check(KnownHosts::Strict).connect_timeout(self.options.connect_timeout);
        if !login.is_empty() {
            builder.user(login.to_owned());
        }
        builder.server_alive_interval(Duration::from_secs(15));
        if let Some(port) = host.port {
            builder.port(port);
        }
        if let Some(config) = &self.options.config_file {
            builder.config_file(config);
        }
        if let Some(known_hosts) = &self.options.known_hosts {
            builder.user_known_hosts_file(known_hosts);
        }
        builder
    }

    /// The shell text the remote login shell runs: into the app home, then the
    /// command; through `sudo -n -u <user>` when kai logs in as someone else.
    fn remote_text(&self, place: &Place, command: &Command) -> Result<String, TransportError> {
        let host = self.host(place)?;
        let inner = match place.home.as_str() {
            "" => command.to_shell(),
            home if home.starts_with('~') => format!("cd {} && {}", home_word(home), command.to_shell()),
            home => format!("{{ cd {0} 2>/dev/null || {{ mkdir -p {0} && cd {0}; }}; }} && {1}", quote(home), command.to_shell()),
        };
        Ok(if place.user.is_empty() || Self::login(host, place) == Some(place.user.as_str()) {
            inner
        } else {
            format!("sudo -n -u {} -- sh -c {}", quote(&place.user), quote(&inner))
        })
    }

    async fn run_with_input<R>(&self, place: &Place, command: &Command, input: Option<R>) -> Result<Output, TransportError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let session = self.session(place).await?;
        let text = self.remote_text(place, command)?;
        let lost = |e: openssh::Error| TransportError::ConnectionLost { host: place.host.clone(), reason: e.to_string() };
        let mut remote = session.raw_command(&text);
        remote.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let work = async {
            let mut child = remote.spawn().await.map_err(lost)?;
            if let (Some(mut input), Some(mut stdin)) = (input, child.stdin().take()) {
                tokio::io::copy(&mut input, &mut stdin)
                    .await
                    .map_err(|e| TransportError::ConnectionLost { host: place.host.clone(), reason: e.to_string() })?;
                stdin.shutdown().await.ok();
            }
            child.wait_with_output().await.map_err(lost)
        };
        let output = tokio::time::timeout(self.options.command_timeout, work).await.map_err(|_| TransportError::Timeout {
            host: place.host.clone(),
            command: command.to_shell(),
            seconds: self.options.command_timeout.as_secs(),
        })??;
        Ok(Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    async fn checked(
        &self,
        place: &Place,
        command: &Command,
        input: impl AsyncRead + Unpin + Send,
        path: &str,
    ) -> Result<(), TransportError> {
        let output = self.run_with_input(place, command, Some(input)).await?;
        if output.success() {
            Ok(())
        } else {
            Err(TransportError::Io {
                host: place.host.clone(),
                path: PathBuf::from(path),
                source: std::io::Error::other(output.stderr.trim().to_owned()),
            })
        }
    }
}

/// `~user` stays unquoted so the shell expands it; anything else is quoted.
fn home_word(home: &str) -> String {
    match home.strip_prefix('~') {
        Some(user) if kai_core::ident::is_valid(user) => home.to_owned(),
        _ => quote(home),
    }
}

/// The reason ssh gave, in its own words, with what to do about it.
fn connect_reason(error: &openssh::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text = format!("{text}\n{e}");
        source = e.source();
    }
    let said = |s: &str| text.contains(s);
    let last_line = text.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('@')).unwrap_or_default().to_owned();
    if said("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        "Host key verification failed: the host key has CHANGED since it was recorded in known_hosts \
         (a reinstall, or someone in the middle); check it before you update known_hosts"
            .into()
    } else if said("Host key verification failed") {
        "Host key verification failed: the host key is not in known_hosts (kai checks strictly; \
         add it once you have checked its fingerprint)"
            .into()
    } else if said("Permission denied") {
        format!("Permission denied: the login was refused ({last_line}); check the key, agent and authorized_keys")
    } else {
        last_line
    }
}

impl Transport for SshTransport {
    async fn run(&self, place: &Place, command: &Command) -> Result<Output, TransportError> {
        let input = command.stdin.as_deref().map(str::as_bytes);
        self.run_with_input(place, command, input).await
    }

    /// One round trip: a script on the standard input of `sh -s` runs each command
    /// in a subshell, its output framed by marker lines (see [`batch`]).
    async fn run_batch(&self, place: &Place, commands: &[Command]) -> Result<Vec<Output>, TransportError> {
        if commands.len() < 2 {
            return match commands.first() {
                Some(command) => Ok(vec![self.run(place, command).await?]),
                None => Ok(Vec::new()),
            };
        }
        let token = batch::token();
        let script = batch::script(&token, commands);
        let runner = Command::new(["sh", "-s"]);
        let whole = self.run_with_input(place, &runner, Some(script.as_bytes())).await?;
        batch::parse(&token, &whole.stdout, &whole.stderr).map_err(|reason| TransportError::ConnectionLost {
            host: place.host.clone(),
            reason: format!("{reason} (exit status {:?})", whole.code),
        })
    }

    fn command_for(&self, action: &Action) -> Option<Command> {
        match action {
            Action::Run(command) | Action::Inspect { command, .. } => Some(command.clone()),
            Action::Write { path, contents } => Some(Command::new(["sh", "-c", WRITE_SCRIPT, "kai-write", path]).stdin(contents.clone())),
            Action::Append { path, line } => Some(Command::new(["sh", "-c", APPEND_SCRIPT, "kai-append", path]).stdin(format!("{line}\n"))),
            _ => None,
        }
    }

    async fn upload(&self, place: &Place, local: &Path, remote: &str) -> Result<(), TransportError> {
        let file = tokio::fs::File::open(local).await.map_err(|source| TransportError::Io {
            host: place.host.clone(),
            path: local.to_owned(),
            source,
        })?;
        self.checked(place, &Command::new(["sh", "-c", WRITE_SCRIPT, "kai-upload", remote]), file, remote).await
    }

    async fn write(&self, place: &Place, path: &str, contents: &[u8]) -> Result<(), TransportError> {
        self.checked(place, &Command::new(["sh", "-c", WRITE_SCRIPT, "kai-write", path]), contents, path).await
    }

    async fn append(&self, place: &Place, path: &str, line: &str) -> Result<(), TransportError> {
        let text = format!("{line}\n");
        self.checked(place, &Command::new(["sh", "-c", APPEND_SCRIPT, "kai-append", path]), text.as_bytes(), path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_quoted_unless_a_tilde_user() {
        assert_eq!(home_word("~jmsadmin"), "~jmsadmin");
        assert_eq!(home_word("/srv/app home"), "'/srv/app home'");
        assert_eq!(home_word("~$(id)"), "'~$(id)'");
    }
}
