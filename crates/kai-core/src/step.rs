//! Steps: one thing done on one host, with a label for progress and reports.
//!
//! Most steps are commands; a few are done by kai itself (upload, write a file, poll a
//! health URL). Each renders as one line of plan text.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::command::{heredoc, quote, Command};
use crate::haproxy::{self, State};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Short name for progress lines and reports: `stop`, `switch`, `health`, …
    pub label: &'static str,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run a command; exit 0 is success.
    Run(Command),
    /// Run a command, then kai checks what it printed.
    Inspect { command: Command, check: OutputCheck },
    /// Copy a file from the control machine to `remote` (temporary name, then rename).
    Upload { local: PathBuf, remote: String },
    /// The host downloads `url` to `dest` (temporary name, then rename); with `auth`
    /// the repository credentials go in on standard input, never in arguments.
    Download { url: String, dest: String, auth: bool },
    /// Write a whole file (temporary name, then rename), creating its folder.
    Write { path: String, contents: String },
    /// Append one line to a file, creating it.
    Append { path: String, line: String },
    /// kai polls `url` from the control machine until it answers 2xx.
    HttpHealth { url: String, timeout: Duration },
    /// kai runs the command until it exits 0.
    CommandHealth { command: Command, timeout: Duration },
    /// Run a command on another host of the environment (a proxy), as its login.
    RunOn { host: String, command: Command },
    /// Tell HAProxy something about this server, or wait for it to say something.
    Haproxy { target: HaproxyTarget, op: HaproxyOp },
    /// Wait, doing nothing (a balancer that cannot be asked needs time to notice).
    Wait(Duration),
}

/// One server in HAProxy, on every proxy of the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaproxyTarget {
    pub admin: Admin,
    pub backend: String,
    pub server: String,
}

/// Where HAProxy's runtime API is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admin {
    /// A unix socket on each proxy host, used there through the transport (`socat`).
    Unix { proxies: Vec<String>, path: String },
    /// `ADDRESS:PORT` per proxy, dialled from the control machine.
    Tcp { addresses: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaproxyOp {
    /// Every other server counted in rotation at the start must be in rotation now
    /// (re-read, never remembered), waiting up to `timeout`.
    Guard {
        others: Vec<String>,
        timeout: Duration,
    },
    Set(State),
    /// Until the server has no session and no queue on every proxy.
    WaitDrained {
        timeout: Duration,
    },
    /// Until a fresh check has passed on every proxy (status exactly `DRAIN`).
    WaitChecked {
        timeout: Duration,
    },
}

/// What kai verifies in a command's standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputCheck {
    /// An archive listing (one path per line): no absolute paths, no `..`.
    ArchivePaths,
    /// `find -printf '%P\t%l\n'` of symbolic links: none may point outside the folder.
    LinksInside,
}

impl Step {
    pub fn new(label: &'static str, action: Action) -> Step {
        Step { label, action }
    }

    pub fn run(label: &'static str, command: Command) -> Step {
        Step::new(label, Action::Run(command))
    }
}

impl OutputCheck {
    /// `Err` names the first offending entry.
    pub fn verify(self, stdout: &str) -> Result<(), String> {
        match self {
            OutputCheck::ArchivePaths => stdout.lines().try_for_each(check_archive_path),
            OutputCheck::LinksInside => stdout.lines().filter(|l| !l.is_empty()).try_for_each(check_link),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            OutputCheck::ArchivePaths => "kai refuses absolute paths and '..'",
            OutputCheck::LinksInside => "kai refuses links that leave the release",
        }
    }
}

fn check_archive_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.split('/').any(|part| part == "..") {
        Err(format!("the archive holds {path:?}, which would land outside the release folder"))
    } else {
        Ok(())
    }
}

fn check_link(line: &str) -> Result<(), String> {
    let (link, target) = line.split_once('\t').ok_or_else(|| format!("unexpected link listing line {line:?}"))?;
    let mut depth: Vec<&str> = link.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    depth.pop();
    if target.starts_with('/') {
        return Err(format!("the link {link} points to the absolute path {target}"));
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth.pop().is_none() => return Err(format!("the link {link} -> {target} leaves the release folder")),
            ".." => {}
            other => depth.push(other),
        }
    }
    Ok(())
}

/// One line of plan text: the exact command, or what kai itself does.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Run(command) => write!(f, "{command}"),
            Action::Inspect { command, check } => write!(f, "{command}    # {}", check.describe()),
            Action::Upload { local, remote } => write!(f, "[kai] upload {} -> {}", local.display(), quote(remote)),
            Action::Download { url, dest, auth } => {
                write!(f, "{}", download_command(url, dest, auth.then_some("(repository credentials, not shown)")))
            }
            Action::Write { path, contents } => write!(f, "cat > {}{}", quote(path), heredoc(contents)),
            Action::Append { path, line } => write!(f, "cat >> {}{}", quote(path), heredoc(line)),
            Action::HttpHealth { url, timeout } => {
                write!(f, "[kai] poll GET {url} until 2xx (timeout {})", humantime::format_duration(*timeout))
            }
            Action::CommandHealth { command, timeout } => {
                write!(f, "{command}    # [kai] repeated until exit 0 (timeout {})", humantime::format_duration(*timeout))
            }
            Action::RunOn { host, command } => write!(f, "[on {host}] {command}"),
            Action::Haproxy { target, op } => write_haproxy(f, target, op),
            Action::Wait(duration) => write!(f, "[kai] wait {}", humantime::format_duration(*duration)),
        }
    }
}

fn write_haproxy(f: &mut fmt::Formatter<'_>, target: &HaproxyTarget, op: &HaproxyOp) -> fmt::Result {
    let at = match &target.admin {
        Admin::Unix { proxies, path } => format!("{} {path}", proxies.join(",")),
        Admin::Tcp { addresses } => addresses.join(","),
    };
    let (backend, server) = (&target.backend, &target.server);
    let timeout = |t: &Duration| humantime::format_duration(*t).to_string();
    match op {
        HaproxyOp::Guard { others, timeout: t } if others.is_empty() => {
            write!(f, "[haproxy {at}] (no other server to wait for; {})", timeout(t))
        }
        HaproxyOp::Guard { others, timeout: t } => {
            write!(
                f,
                "[haproxy {at}] wait until {} {} UP in {backend} (timeout {})",
                others.join(", "),
                if others.len() == 1 { "is" } else { "are" },
                timeout(t)
            )
        }
        HaproxyOp::Set(state) => write!(f, "[haproxy {at}] {}", haproxy::set_state(backend, server, *state)),
        HaproxyOp::WaitDrained { timeout: t } => {
            write!(f, "[haproxy {at}] wait until {backend}/{server} has no session and no queue (timeout {})", timeout(t))
        }
        HaproxyOp::WaitChecked { timeout: t } => {
            write!(f, "[haproxy {at}] wait until {backend}/{server} passed a fresh check, status DRAIN (timeout {})", timeout(t))
        }
    }
}

/// The command a host runs to download into `dest`: to `dest.part`, then renamed.
/// `credentials`, when given, is the curl config text fed on standard input
/// (`user = "name:password"`), so the password is never in an argument list.
pub fn download_command(url: &str, dest: &str, credentials: Option<&str>) -> Command {
    let part = format!("{dest}.part");
    let mut argv = vec!["curl", "--fail", "--silent", "--show-error", "--location", "--retry", "2"];
    if credentials.is_some() {
        argv.extend(["--config", "-"]);
    }
    argv.extend(["--output", &part, "--", url]);
    let mut command = Command::new(["sh", "-c", r#"d=$1; shift; "$@" && mv -f -- "$d.part" "$d""#, "kai-download", dest]);
    command.argv.extend(argv.iter().map(|s| (*s).to_owned()));
    match credentials {
        Some(text) => command.stdin(text),
        None => command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_must_stay_inside() {
        assert!(OutputCheck::ArchivePaths.verify("bin/\nbin/start.sh\n./lib/a.jar\na..b\n").is_ok());
        for bad in ["/etc/passwd", "../x", "bin/../../x", "a/.."] {
            assert!(OutputCheck::ArchivePaths.verify(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(OutputCheck::LinksInside.verify("lib/current\tv1\nbin/java\t../lib/java\n").is_ok());
        assert!(OutputCheck::LinksInside.verify("").is_ok());
        for bad in ["etc\t/etc", "a\t..", "bin/x\t../../x", "a/b/c\t../../../y"] {
            assert!(OutputCheck::LinksInside.verify(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn writes_render_as_here_documents() {
        let write = Action::Write { path: "releases/.tmp/config/app.properties".into(), contents: "a=1\n".into() };
        assert_eq!(write.to_string(), "cat > releases/.tmp/config/app.properties <<'KAI'\na=1\nKAI");
    }

    #[test]
    fn downloads_never_show_credentials() {
        let step = Action::Download { url: "https://repo/x.zip".into(), dest: "downloads/x.zip".into(), auth: true };
        let text = step.to_string();
        assert!(text.contains("--config -") && text.contains("(repository credentials, not shown)"), "{text}");
    }
}
