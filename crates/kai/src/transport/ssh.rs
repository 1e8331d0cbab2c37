//! The SSH transport: OpenSSH with one multiplexed master connection per host and
//! login (the `openssh` crate, native mux), so the user's `~/.ssh/config`,
//! ProxyJump, agent and known_hosts work exactly as with plain `ssh`. Host keys are
//! always checked strictly.
//!
//! A master outlives its run by the environment's `ssh_persist` (60 s unless it says
//! otherwise; OpenSSH's `ControlPersist` ends it once idle that long): the next kai
//! run within that time reuses it instead of logging in again. It is found by a
//! record named after everything that decides the connection (address, port, login,
//! the ssh_config and known_hosts files and their contents), so a changed
//! configuration or known_hosts logs in afresh; a master that no longer answers is
//! forgotten and replaced, and a channel that cannot be opened on a master is tried
//! once more on a new login (nothing ran on the host).

use std::collections::HashMap;
use std::path::PathBuf;

use std::sync::Arc;
use std::time::Duration;

use kai_core::config::{Environment, Host};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::sync::{Mutex, OnceCell, Semaphore};

use super::shell::{Job, Pending, Pool, Process, Shell};
use super::{Output, Payload, Place, Transport, TransportError};

#[derive(Clone, Debug)]
pub struct SshOptions {
    /// `ssh -F`: the environment's own ssh_config (default: the user's).
    pub config_file: Option<PathBuf>,
    /// The environment's own known_hosts (default: the user's).
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Connections being opened at once.
    pub max_connecting: usize,
    /// Where this run's master connections keep their sockets: `<ssh_dir>/<pid>`,
    /// or `<ssh_dir>/shared` for those that outlive it.
    pub ssh_dir: PathBuf,
    /// How long a master outlives the run (zero: closed with it).
    pub persist: Duration,
}

/// Longer than any login takes (`connect_timeout` is 10 s): a shared master's folder
/// younger than this may belong to a login under way in another kai run.
const CONNECTING: Duration = Duration::from_secs(60);

/// How long a master connection stays up with nothing to do: long enough for any pause
/// of a deploy, short enough that one left by a kai killed outright goes on its own
/// (the next kai run reaps it sooner).
const MASTER_IDLE: usize = 3600;

impl SshOptions {
    /// `ssh_dir`: the folder under which each kai run keeps its masters' sockets.
    pub fn for_environment(environment: &Environment, ssh_dir: &std::path::Path) -> SshOptions {
        SshOptions {
            config_file: environment.ssh_config.clone(),
            known_hosts: environment.known_hosts.clone(),
            connect_timeout: Duration::from_secs(10),
            max_connecting: 32,
            ssh_dir: ssh_dir.to_owned(),
            persist: environment.ssh_persist,
        }
    }

    fn control_dir(&self) -> PathBuf {
        if self.persist.is_zero() {
            self.ssh_dir.join(std::process::id().to_string())
        } else {
            self.ssh_dir.join("shared")
        }
    }

    /// The record of the shared master for `host` as `login`: named by a digest of
    /// everything that decides that connection.
    fn record(&self, host: &Host, login: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        let user_ssh = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ssh"));
        let config = self.config_file.clone().or_else(|| user_ssh.as_ref().map(|d| d.join("config")));
        let known = self.known_hosts.clone().or_else(|| user_ssh.as_ref().map(|d| d.join("known_hosts")));
        for part in [host.address.as_str(), &host.port.map(|p| p.to_string()).unwrap_or_default(), login] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        for file in [config, known].into_iter().flatten() {
            digest.update(file.as_os_str().as_encoded_bytes());
            digest.update([0]);
            digest.update(std::fs::read(&file).unwrap_or_default());
            digest.update([0]);
        }
        let hex: String = digest.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
        self.control_dir().join(format!("{hex}.master"))
    }
}

/// The shared master a record names, when it still answers; otherwise the record and
/// what is left of that master go.
async fn resume(record: &std::path::Path) -> Option<Session> {
    let socket = PathBuf::from(std::fs::read_to_string(record).ok()?.trim_end());
    let forget = || {
        let _ = std::fs::remove_file(record);
        if let Some(dir) = socket.parent().filter(|d| d.starts_with(record.parent().unwrap_or(d))) {
            let _ = std::fs::remove_dir_all(dir);
        }
    };
    if !socket.exists() {
        forget();
        return None;
    }
    let session = Session::resume_mux(socket.clone().into_boxed_path(), None);
    match tokio::time::timeout(Duration::from_secs(2), session.check()).await {
        Ok(Ok(())) => Some(session),
        _ => {
            let _ = session.detach();
            forget();
            None
        }
    }
}

/// Stops the master connections left by kai runs that are gone (killed outright): each
/// `<ssh_dir>/<pid>` whose pid is no running kai has its masters told to exit
/// (`ssh -O exit`), then goes; so do the folders of shared masters that ended.
pub async fn reap_masters(ssh_dir: &std::path::Path) {
    // Shared masters end by themselves once idle; the folders of those that did go.
    // A folder is not reaped while young: another kai run may be logging in there,
    // its master's socket not made yet.
    let settled = |dir: &std::path::Path| {
        let age = std::fs::metadata(dir).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        age.is_some_and(|age| age > CONNECTING)
    };
    for dir in std::fs::read_dir(ssh_dir.join("shared")).into_iter().flatten().flatten() {
        let path = dir.path();
        if path.is_dir() && !path.join("master").exists() && settled(&path) {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    let Ok(entries) = std::fs::read_dir(ssh_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else { continue };
        let alive = std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "kai");
        if alive {
            continue;
        }
        let sockets = std::fs::read_dir(entry.path()).into_iter().flatten().flatten().map(|d| d.path().join("master"));
        for socket in sockets.filter(|s| s.exists()) {
            let exit = tokio::process::Command::new("ssh")
                .arg("-S")
                .arg(&socket)
                .args(["-O", "exit", "kai-reaped-master"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

type Slot = Arc<OnceCell<Result<Arc<Session>, String>>>;

/// One connection per (host, login) for the whole run, opened on first use.
pub struct SshTransport {
    hosts: HashMap<String, Host>,
    options: SshOptions,
    sessions: Mutex<HashMap<(String, String), Slot>>,
    connecting: Semaphore,
    /// The masters of dead kai runs are reaped once, before this run's first connection.
    reaped: OnceCell<()>,
    /// The shells reading scripts, each on a channel of its host's connection.
    shells: Pool,
}

/// Idle shells kept per host and login: each holds a channel, and sshd allows 10
/// sessions a connection unless told otherwise (`MaxSessions`).
const IDLE_SHELLS: usize = 3;

impl SshTransport {
    pub fn new(environment: &Environment, options: SshOptions) -> SshTransport {
        let connecting = Semaphore::new(options.max_connecting.max(1));
        SshTransport {
            hosts: environment.hosts.clone().into_iter().collect(),
            options,
            sessions: Mutex::default(),
            connecting,
            reaped: OnceCell::new(),
            shells: Pool::new(IDLE_SHELLS),
        }
    }

    /// Ends the kept shells, then the connections: with `ssh_persist`, each master is
    /// left to end by itself once idle that long (the next run may reuse it); without,
    /// the masters exit now and this run's socket folder goes.
    pub async fn close(self) {
        // Each shell holds its connection: they end first.
        self.shells.clear();
        let sessions = std::mem::take(&mut *self.sessions.lock().await);
        let persist = !self.options.persist.is_zero();
        for slot in sessions.into_values() {
            if let Some(Ok(session)) = Arc::try_unwrap(slot).ok().and_then(OnceCell::into_inner) {
                if let Ok(session) = Arc::try_unwrap(session) {
                    if persist {
                        // It stays for the next run, and ends by itself once idle.
                        let _ = session.detach();
                    } else {
                        let _ = session.close().await;
                    }
                }
            }
        }
        if !persist {
            let _ = std::fs::remove_dir_all(self.options.control_dir());
        }
    }

    fn host(&self, place: &Place) -> Result<&Host, TransportError> {
        self.hosts
            .get(&place.host)
            .ok_or_else(|| TransportError::Unreachable { host: place.host.clone(), reason: "not a host of this environment".into() })
    }

    /// The account kai logs in as: the one the place names (the host's `login`, else
    /// the app's user), else the host's `login`, else whatever the ssh configuration says.
    fn login<'a>(host: &'a Host, place: &'a Place) -> Option<&'a str> {
        place.login.as_deref().or(host.login.as_deref())
    }

    async fn session(&self, place: &Place) -> Result<Arc<Session>, TransportError> {
        let host = self.host(place)?;
        let login = Self::login(host, place).unwrap_or_default().to_owned();
        let slot = self.sessions.lock().await.entry((place.host.clone(), login.clone())).or_default().clone();
        let result = slot
            .get_or_init(|| async {
                self.reaped.get_or_init(|| reap_masters(&self.options.ssh_dir)).await;
                let control_dir = self.options.control_dir();
                private_dir(&control_dir).map_err(|e| format!("{}: {e}", control_dir.display()))?;
                let record = (!self.options.persist.is_zero()).then(|| self.options.record(host, &login));
                if let Some(session) = match &record {
                    Some(record) => resume(record).await,
                    None => None,
                } {
                    return Ok(Arc::new(session));
                }
                let _permit = self.connecting.acquire().await.map_err(|e| e.to_string())?;
                let session = self.builder(host, &login).connect_mux(&host.address).await.map_err(|e| connect_reason(&e))?;
                if let Some(record) = record {
                    remember(&record, session.control_socket());
                }
                Ok(Arc::new(session))
            })
            .await;
        result.clone().map_err(|reason| TransportError::Unreachable { host: place.host.clone(), reason })
    }

    /// Forgets `place`'s connection (its next use logs in again): a channel could not
    /// be opened on it.
    async fn forget(&self, place: &Place) {
        let Ok(host) = self.host(place) else { return };
        let login = Self::login(host, place).unwrap_or_default().to_owned();
        self.sessions.lock().await.insert((place.host.clone(), login.clone()), Slot::default());
        if !self.options.persist.is_zero() {
            let _ = std::fs::remove_file(self.options.record(host, &login));
        }
    }

    /// A channel running `entry` on `place`'s connection, its outputs piped and its
    /// input piped too, or the file `input` itself (handed to the ssh master, which
    /// reads it: kai copies nothing); when the connection cannot open one, once more on
    /// a new login.
    async fn channel(
        &self,
        place: &Place,
        entry: &str,
        input: Option<&std::path::Path>,
    ) -> Result<openssh::Child<Arc<Session>>, TransportError> {
        let lost = |e: openssh::Error| TransportError::ConnectionLost { host: place.host.clone(), reason: e.to_string() };
        for retry in [false, true] {
            let stdin = match input {
                None => Stdio::piped(),
                Some(path) => Stdio::from(std::fs::File::open(path).map_err(|source| TransportError::Io {
                    host: place.host.clone(),
                    path: path.to_owned(),
                    source,
                })?),
            };
            let session = self.session(place).await?;
            let mut remote = session.arc_raw_command(entry);
            remote.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
            match remote.spawn().await {
                Ok(child) => return Ok(child),
                Err(e) if retry => return Err(lost(e)),
                Err(_) => self.forget(place).await,
            }
        }
        unreachable!("the second try returns")
    }

    fn builder(&self, host: &Host, login: &str) -> SessionBuilder {
        let mut builder = SessionBuilder::default();
        builder.known_hosts_check(KnownHosts::Strict).connect_timeout(self.options.connect_timeout);
        builder.control_directory(self.options.control_dir());
        let idle = if self.options.persist.is_zero() { MASTER_IDLE } else { self.options.persist.as_secs().max(1) as usize };
        if let Some(idle) = std::num::NonZeroUsize::new(idle) {
            builder.control_persist(openssh::ControlPersist::IdleFor(idle));
        }
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

    /// A shell running `entry` on a channel of `place`'s connection.
    async fn spawn(&self, place: &Place, entry: &str) -> Result<Shell, TransportError> {
        let mut child = self.channel(place, entry, None).await?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin().take(), child.stdout().take(), child.stderr().take()) else {
            unreachable!("the three pipes were asked for")
        };
        Ok(Shell::new(Box::new(stdin), Box::new(stdout), Box::new(stderr), Box::new(RemoteShell(child))))
    }

    /// Runs `text` on a channel of its own with the file at `path` as its standard
    /// input (an upload, or `/dev/null`), reading both outputs; past `limit` (its
    /// outputs still open, or closed by a command that goes on) the channel is dropped
    /// and what arrived is kept.
    async fn alone(&self, place: &Place, text: &str, path: &std::path::Path, limit: Duration) -> Result<Output, TransportError> {
        let lost = |e: openssh::Error| TransportError::ConnectionLost { host: place.host.clone(), reason: e.to_string() };
        let timeout = |partial: Output| TransportError::Timeout { host: place.host.clone(), limit, partial };
        let deadline = tokio::time::Instant::now() + limit;
        let mut child = self.channel(place, text, Some(path)).await?;
        let (stdout, stderr) = (child.stdout().take(), child.stderr().take());
        let done = super::read_outputs(stdout, stderr, limit).await.map_err(|partial| timeout(partial.output(None)))?;
        match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(status) => Ok(done.output(status.map_err(lost)?.code())),
            Err(_) => Err(timeout(done.output(None))),
        }
    }
}

/// Makes `dir` (and its parents) when missing; only its owner may enter it.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The folder and the one above it (in /tmp when the cache's path is too long for a
    // socket) must be real folders, not links; in a folder everyone may write to (/tmp),
    // also this user's own.
    let me = std::fs::metadata("/proc/self")?.uid();
    for folder in [Some(dir), dir.parent()].into_iter().flatten() {
        let meta = std::fs::symlink_metadata(folder)?;
        let shared = folder.parent().and_then(|p| std::fs::metadata(p).ok()).is_some_and(|p| p.mode() & 0o002 != 0);
        if !meta.is_dir() || (shared && meta.uid() != me) {
            return Err(std::io::Error::other(format!("{} is not a folder of this user (uid {me}); remove it", folder.display())));
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The longest path of the folder kai keeps its SSH masters in: a socket's path holds at
/// most 107 bytes, and under this folder go `/<pid>` (or `/shared`), openssh's
/// `/.ssh-connectionXXXXXX/master`, and the `.XXXXXXXXXXXXXXXX` ssh adds while it binds.
const SSH_DIR_MAX: usize = 107 - 8 - 29 - 17;

/// Where kai keeps its SSH masters: `<cache>/ssh`, unless that path is too long for a
/// socket under it (a long home folder); then `$XDG_RUNTIME_DIR/kai-ssh`, else
/// `/tmp/kai-ssh-<uid>` (each checked to be this user's own, 0700, when used).
pub fn ssh_dir(cache_dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let fits = |dir: &std::path::Path| dir.is_absolute() && dir.as_os_str().len() <= SSH_DIR_MAX;
    let preferred = cache_dir.join("ssh");
    if fits(&preferred) {
        return preferred;
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("kai-ssh"));
    match runtime.filter(|d| fits(d)) {
        Some(dir) => dir,
        None => {
            let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
            PathBuf::from(format!("/tmp/kai-ssh-{uid}"))
        }
    }
}

/// Writes down where the master for a record is (a temporary name, then renamed: a
/// run reading it never sees half of it).
fn remember(record: &std::path::Path, socket: &std::path::Path) {
    let part = record.with_extension(format!("part-{}", std::process::id()));
    if std::fs::write(&part, socket.as_os_str().as_encoded_bytes()).is_ok() {
        let _ = std::fs::rename(&part, record);
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

struct RemoteShell(openssh::Child<Arc<Session>>);

impl Process for RemoteShell {
    fn wait(self: Box<Self>) -> Pending<Result<Option<i32>, String>> {
        Box::pin(async move { self.0.wait().await.map(|s| s.code()).map_err(|e| e.to_string()) })
    }

    /// The channel is dropped: the shell's input ends, and the frame's guard stops
    /// what the script runs (a channel without a terminal sends no SIGHUP).
    fn stop(self: Box<Self>) -> Pending<()> {
        Box::pin(async move { drop(self) })
    }
}

impl Transport for SshTransport {
    /// A script goes to a shell kept on the host (a channel of its connection); an
    /// upload or a command reading nothing has a channel of its own, which the login
    /// shell runs (no shell of kai's in between). Past `limit` the channel is dropped:
    /// a script's guard then stops it on the host (see [`super::shell`]); kai's scripts
    /// also carry their own limits, so the host stops them even so.
    async fn send(&self, place: &Place, text: &str, input: Payload<'_>, limit: Duration) -> Result<Output, TransportError> {
        match input {
            Payload::Script { real, .. } => {
                let script = String::from_utf8_lossy(real);
                let login = self.host(place).ok().and_then(|host| Self::login(host, place)).map(str::to_owned);
                let key = (place.host.as_str(), login.as_deref(), text);
                let home = place.access.home_word();
                let job = Job { script: &script, stdin: "/dev/null", home: home.as_deref() };
                self.shells.run(key, job, limit, || self.spawn(place, text)).await
            }
            Payload::File(path) => self.alone(place, text, path, limit).await,
            Payload::Nothing => self.alone(place, text, std::path::Path::new("/dev/null"), limit).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masters_folder_is_short_enough_for_a_socket_under_it() {
        assert_eq!(ssh_dir(std::path::Path::new("/home/ann/.cache/kai")), PathBuf::from("/home/ann/.cache/kai/ssh"));
        let long = PathBuf::from(format!("/home/{}/.cache/kai", "firstname.lastname.corp.example.org"));
        let dir = ssh_dir(&long);
        assert!(dir.as_os_str().len() <= SSH_DIR_MAX && !dir.starts_with(&long), "{}", dir.display());
        // What goes under it, at its longest: a pid, openssh's folder, ssh's temporary name.
        let socket = dir.join("4194304").join(".ssh-connectionAbCdEf").join("master.0123456789abcdef");
        assert!(socket.as_os_str().len() <= 107, "{}", socket.display());
    }

    #[test]
    fn a_masters_folder_that_is_a_link_or_not_ours_is_refused() {
        let base = tempfile::tempdir().expect("a folder");
        let elsewhere = base.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("a folder");
        let link = base.path().join("kai-ssh");
        std::os::unix::fs::symlink(&elsewhere, &link).expect("a link");
        let refused = private_dir(&link.join("123")).expect_err("a link is not a private folder");
        assert!(refused.to_string().contains("is not a folder of this user"), "{refused}");
        private_dir(&base.path().join("mine").join("123")).expect("a folder of its own");
    }

    #[tokio::test]
    async fn a_shared_folder_without_a_master_is_reaped_only_once_no_login_can_be_under_way_there() {
        let ssh_dir = tempfile::tempdir().unwrap();
        let connecting = ssh_dir.path().join("shared/.ssh-connection-new");
        let ended = ssh_dir.path().join("shared/.ssh-connection-old");
        std::fs::create_dir_all(&connecting).unwrap();
        std::fs::create_dir_all(&ended).unwrap();
        let aged = std::process::Command::new("touch").args(["-d", "-2 minutes"]).arg(&ended).status().unwrap();
        assert!(aged.success());
        reap_masters(ssh_dir.path()).await;
        assert!(connecting.is_dir(), "another run may be logging in there");
        assert!(!ended.exists(), "its master ended long ago");
    }
}
