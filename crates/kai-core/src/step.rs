//! Steps: one thing done on one host, of a known kind, with a deadline.
//!
//! Most steps are commands sent to the host in a script (see [`crate::shell::session`]); an
//! upload is a command fed a local file; a few are done by kai itself (poll a health
//! URL, talk to HAProxy, wait). Each renders as the exact text that is sent, or, for
//! kai's own steps, as a line saying what kai does.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::canary::{Judge, JudgeBy};
pub use crate::haproxy::Admin;
use crate::haproxy::{self, State};
use crate::shell::command::{quote, Command};

/// What a step is for: progress lines, reports and history name it by its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Lock,
    Probe,
    Prepare,
    Fetch,
    Unpack,
    Properties,
    Install,
    /// The history record that says a deploy started on this host.
    Started,
    Guard,
    Drain,
    Stop,
    Switch,
    Start,
    Health,
    Enable,
    Undrain,
    /// The canary wave is judged before the others follow.
    Judge,
    SwitchBack,
    Disable,
    Record,
    Prune,
    Unlock,
    CleanUp,
}

impl StepKind {
    pub fn word(self) -> &'static str {
        match self {
            StepKind::Lock => "lock",
            StepKind::Probe => "probe",
            StepKind::Prepare => "prepare",
            StepKind::Fetch => "fetch",
            StepKind::Unpack => "unpack",
            StepKind::Properties => "properties",
            StepKind::Install => "install",
            StepKind::Started => "started",
            StepKind::Guard => "guard",
            StepKind::Drain => "drain",
            StepKind::Stop => "stop",
            StepKind::Switch => "switch",
            StepKind::Start => "start",
            StepKind::Health => "health",
            StepKind::Enable => "enable",
            StepKind::Undrain => "undrain",
            StepKind::Judge => "judge",
            StepKind::SwitchBack => "switch back",
            StepKind::Disable => "disable",
            StepKind::Record => "record",
            StepKind::Prune => "prune",
            StepKind::Unlock => "unlock",
            StepKind::CleanUp => "clean up",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub action: Action,
    /// The longest the step may take; past it the step has failed. Commands that run
    /// the app's own scripts also carry their limit in their text (`timeout`), so the
    /// host stops them even if kai is gone.
    #[serde(with = "humantime_serde_compat")]
    pub limit: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Run a command; exit 0 is success.
    Run(Command),
    /// Run a command, then kai checks what it printed.
    Inspect { command: Command, check: OutputCheck },
    /// Run `command` with the local file `local` on its standard input.
    Upload { local: PathBuf, command: Command },
    /// kai polls `url` from the control machine until it answers 2xx, then keeps
    /// polling until it has answered 2xx for `stable` without a failure.
    HttpHealth {
        url: String,
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
        #[serde(with = "humantime_serde_compat")]
        stable: Duration,
    },
    /// kai runs the command until it exits 0, then until it has kept exiting 0 for `stable`.
    CommandHealth {
        command: Command,
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
        #[serde(with = "humantime_serde_compat")]
        stable: Duration,
    },
    /// Run a command on another host of the environment (a proxy), as its login.
    RunOn { host: String, command: Command },
    /// Tell HAProxy something about this server, or wait for it to say something.
    Haproxy { target: HaproxyTarget, op: HaproxyOp },
    /// Tell httpd's balancer-manager something about this worker, or wait for it.
    Httpd { target: HttpdTarget, op: HttpdOp },
    /// Wait, doing nothing (a balancer that cannot be asked needs time to notice).
    Wait(#[serde(with = "humantime_serde_compat")] Duration),
    /// Judge the canary servers against the others (HAProxy's counters over a window,
    /// or a command run here); the step fails when the canary is bad.
    Judge(Box<Judge>),
}

/// One server in HAProxy, on every proxy of the environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaproxyTarget {
    pub admin: Admin,
    pub backend: String,
    pub server: String,
}

/// One worker of an httpd balancer, on the balancer-manager page of every proxy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpdTarget {
    /// The balancer-manager page of each proxy.
    pub managers: Vec<String>,
    /// The balancer's name (`balancer://<name>`).
    pub balancer: String,
    /// The worker's URL, as the balancer lists it.
    pub worker: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpdOp {
    /// Every other worker counted usable at the start must be usable now, on every
    /// proxy (re-read, never remembered), waiting up to `timeout`.
    Guard {
        others: Vec<String>,
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
    Set(crate::httpd::WorkerState),
    /// Until the worker serves no request on any proxy.
    WaitDrained {
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
    /// Until every proxy shows the worker usable (`Ok`, no flag).
    WaitUsable {
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaproxyOp {
    /// Every other server counted in rotation at the start must be in rotation now
    /// (re-read, never remembered), waiting up to `timeout`.
    Guard {
        others: Vec<String>,
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
    Set(State),
    /// Until the server has no session and no queue on every proxy.
    WaitDrained {
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
    /// Until a fresh check has passed on every proxy (status exactly `DRAIN`).
    WaitChecked {
        #[serde(with = "humantime_serde_compat")]
        timeout: Duration,
    },
}

/// What kai verifies in a command's standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputCheck {
    /// An archive listing (one path per line): no absolute paths, no `..`. (Links are
    /// checked on the host after unpacking, as the kernel resolves them: `kai_contained`.)
    ArchivePaths,
}

/// The limit of a step that runs one of kai's own short commands.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(120);

impl Step {
    pub fn new(kind: StepKind, action: Action) -> Step {
        let limit = match &action {
            Action::HttpHealth { timeout, stable, .. } | Action::CommandHealth { timeout, stable, .. } => *timeout + *stable,
            Action::Haproxy {
                op: HaproxyOp::Guard { timeout, .. } | HaproxyOp::WaitDrained { timeout } | HaproxyOp::WaitChecked { timeout },
                ..
            } => *timeout,
            Action::Httpd {
                op: HttpdOp::Guard { timeout, .. } | HttpdOp::WaitDrained { timeout } | HttpdOp::WaitUsable { timeout },
                ..
            } => *timeout,
            Action::Wait(duration) => *duration,
            _ => COMMAND_LIMIT,
        };
        Step { kind, action, limit }
    }

    pub fn run(kind: StepKind, command: Command) -> Step {
        Step::new(kind, Action::Run(command))
    }

    #[must_use]
    pub fn limit(mut self, limit: Duration) -> Step {
        self.limit = limit;
        self
    }

    /// The command this step sends in a script, when it is one.
    pub fn scripted(&self) -> Option<&Command> {
        match &self.action {
            Action::Run(command) | Action::Inspect { command, .. } => Some(command),
            _ => None,
        }
    }
}

impl OutputCheck {
    /// `Err` names the first offending entry.
    pub fn verify(self, stdout: &str) -> Result<(), String> {
        match self {
            OutputCheck::ArchivePaths => stdout.lines().try_for_each(check_archive_path),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            OutputCheck::ArchivePaths => "kai refuses absolute paths and '..'",
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

/// One line of plan text: the exact command, or what kai itself does.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            Action::Run(command) => write!(f, "{command}"),
            Action::Inspect { command, check } => write!(f, "{command}    # {}", check.describe()),
            Action::Upload { local, command } => write!(f, "{command} < {}", quote(&local.display().to_string())),
            Action::HttpHealth { url, timeout, stable } => {
                write!(f, "[kai] poll GET {url} until 2xx (timeout {}), then 2xx for {}", duration(timeout), duration(stable))
            }
            Action::CommandHealth { command, timeout, stable } => write!(
                f,
                "{command}    # [kai] repeated until exit 0 (timeout {}), then exit 0 for {}",
                duration(timeout),
                duration(stable)
            ),
            Action::RunOn { host, command } => write!(f, "[on {host}] {command}"),
            Action::Haproxy { target, op } => write_haproxy(f, target, op),
            Action::Httpd { target, op } => write_httpd(f, target, op),
            Action::Wait(d) => write!(f, "[kai] wait {}", duration(d)),
            Action::Judge(judge) => write_judge(f, judge),
        }
    }
}

fn write_judge(f: &mut fmt::Formatter<'_>, judge: &Judge) -> fmt::Result {
    let p = &judge.policy;
    let window = humantime::format_duration(p.window);
    let (canary, baseline) = (judge.canary_hosts.join(", "), judge.baseline_hosts.join(", "));
    if let JudgeBy::Command(command) = &judge.by {
        return write!(f, "{command}    # [kai] judges canary {canary} against {baseline}; exit 0 is good");
    }
    let low = match p.on_low_traffic {
        crate::canary::LowTraffic::Pass => "pass".to_owned(),
        crate::canary::LowTraffic::Fail => "fail".to_owned(),
        crate::canary::LowTraffic::Wait => format!("wait, up to {} windows", p.max_windows),
    };
    write!(
        f,
        "[kai] judge canary {canary} against {baseline} by HAProxy's counters over {window}: bad if its 5xx and errors exceed \
         max({}x, +{:.1}%) the baseline's or its mean response time max({}x, +{:.0}ms); fewer than {} requests: {low}",
        p.error_factor,
        p.error_margin * 100.0,
        p.slowdown,
        p.slowdown_margin_ms,
        p.min_requests
    )
}

fn write_httpd(f: &mut fmt::Formatter<'_>, target: &HttpdTarget, op: &HttpdOp) -> fmt::Result {
    let at = target.managers.join(",");
    let (balancer, worker) = (&target.balancer, &target.worker);
    let timeout = |t: &Duration| humantime::format_duration(*t).to_string();
    match op {
        HttpdOp::Guard { others, timeout: t } if others.is_empty() => {
            write!(f, "[httpd {at}] (no other worker to wait for; {})", timeout(t))
        }
        HttpdOp::Guard { others, timeout: t } => write!(
            f,
            "[httpd {at}] wait until {} {} usable in balancer://{balancer} (timeout {})",
            others.join(", "),
            if others.len() == 1 { "is" } else { "are" },
            timeout(t)
        ),
        HttpdOp::Set(state) => write!(f, "[httpd {at}] set balancer://{balancer} worker {worker} {state}"),
        HttpdOp::WaitDrained { timeout: t } => {
            write!(f, "[httpd {at}] wait until {worker} in balancer://{balancer} serves no request (timeout {})", timeout(t))
        }
        HttpdOp::WaitUsable { timeout: t } => {
            write!(f, "[httpd {at}] wait until {worker} in balancer://{balancer} is usable (timeout {})", timeout(t))
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

/// Durations in saved plans as humantime text (`"1m 30s"`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*duration).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
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
    fn a_step_round_trips_through_json() {
        let step = Step::new(
            StepKind::Health,
            Action::HttpHealth { url: "http://x/ready".into(), timeout: Duration::from_secs(60), stable: Duration::from_millis(1500) },
        );
        let text = serde_json::to_string(&step).unwrap();
        assert_eq!(serde_json::from_str::<Step>(&text).unwrap(), step);
    }
}
