//! How one app's deploy ended: the result and the report the summary, `--json`, the
//! history and the notices are made from.

use super::*;

/// How one app's deploy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppResult {
    Deployed,
    /// `kai rollback` put every host on the earlier release.
    Reverted,
    /// Every host already ran the version, with the same settings.
    UpToDate,
    /// Nothing was switched (lock, probe, plan or stage failed).
    Failed,
    /// A server failed; it and the ones before it are back on their release ("failed,
    /// put back"; "rolled back" is what `kai rollback` does).
    RolledBack,
    /// A server failed and is back; the ones before it were left (`on_failure = "halt"`).
    Halted,
    /// Putting a server back failed too: it is in an unknown state and the lock is kept.
    RollbackFailed,
    /// Someone else holds the lock.
    Locked(LockOwner),
    /// Stopped on request: the servers switched stay, the others were not touched.
    Interrupted,
    /// A saved plan no longer matches the hosts: nothing was changed.
    Refused,
}

impl AppResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, AppResult::Deployed | AppResult::Reverted | AppResult::UpToDate)
    }

    /// Every host was switched as asked (a deploy or a rollback).
    pub fn switched(&self) -> bool {
        matches!(self, AppResult::Deployed | AppResult::Reverted)
    }

    /// The result as a stable word for programs (JSON, webhooks); [`word`](Self::word)
    /// is for people.
    pub fn key(&self) -> &'static str {
        match self {
            AppResult::Deployed => "deployed",
            AppResult::Reverted => "reverted",
            AppResult::UpToDate => "up-to-date",
            AppResult::Failed => "failed",
            AppResult::RolledBack => "rolled-back",
            AppResult::Halted => "halted",
            AppResult::RollbackFailed => "rollback-failed",
            AppResult::Locked(_) => "locked",
            AppResult::Interrupted => "interrupted",
            AppResult::Refused => "refused",
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            AppResult::Deployed => "deployed",
            AppResult::Reverted => "rolled back",
            AppResult::UpToDate => "up to date",
            AppResult::Failed => "failed",
            AppResult::RolledBack => "failed, put back",
            AppResult::Halted => "failed, halted",
            AppResult::RollbackFailed => "FAILED, ROLLBACK FAILED",
            AppResult::Locked(_) => "locked",
            AppResult::Interrupted => "interrupted",
            AppResult::Refused => "refused, nothing changed",
        }
    }
}

/// What happened to one app, for the summary, `--json`, notices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub app: String,
    /// "1.1.0", "1.0.0, 1.1.0" (hosts differ), "-" (first install), "?" (not read).
    pub from: String,
    pub to: String,
    pub hosts: Vec<String>,
    pub result: AppResult,
    pub failure: Option<StepFailure>,
    /// What a person should know or do next.
    pub message: Option<String>,
    /// Things noticed on the way (a host brought back into rotation, a record that
    /// could not be written).
    pub notes: Vec<String>,
    /// What each host that was touched ended as.
    pub outcomes: BTreeMap<String, history::Outcome>,
    /// The lock is still held on the hosts (a server is in an unknown state).
    pub lock_kept: bool,
    /// The canary's verdict, when the canary wave was judged.
    pub canary: Option<crate::canary::Verdict>,
    /// Set when the release is a local build.
    pub local: Option<crate::local_build::LocalBuild>,
    /// Set by `kai promote`: the environment the release came from.
    pub promoted_from: Option<String>,
    /// From the start of the deploy to the last event it was told of.
    pub duration: Duration,
}

impl Report {
    /// A report of `app` going to `to` before anything happened: failed, nothing touched.
    pub fn new(app: &str, to: &str) -> Report {
        Report {
            app: app.to_owned(),
            from: "?".into(),
            to: to.to_owned(),
            hosts: Vec::new(),
            result: AppResult::Failed,
            failure: None,
            message: None,
            notes: Vec::new(),
            outcomes: BTreeMap::new(),
            lock_kept: false,
            canary: None,
            local: None,
            promoted_from: None,
            duration: Duration::ZERO,
        }
    }

    /// An app that could not start (its artifact, a saved plan refused): nothing was touched.
    pub fn unavailable(app: &str, version: &str, reason: &str) -> Report {
        Report { message: Some(format!("{reason}; nothing was touched")), ..Report::new(app, version) }
    }

    /// The hosts of the summary: every host of the app, unless the deploy stopped part
    /// way (failed, or interrupted): then the hosts it switched, and how each ended.
    pub fn hosts_cell(&self) -> String {
        use history::Outcome;
        let partial = matches!(self.result, AppResult::RolledBack | AppResult::Halted | AppResult::RollbackFailed | AppResult::Interrupted);
        if !partial || self.outcomes.is_empty() {
            return self.hosts.join(",");
        }
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for host in &self.hosts {
            let word = match self.outcomes.get(host) {
                Some(Outcome::Ok | Outcome::Interrupted) => "switched",
                Some(Outcome::RolledBack) => "put back",
                Some(Outcome::Failed | Outcome::Started) => "FAILED",
                Some(Outcome::NotSwitched) | None => continue,
            };
            match groups.iter_mut().find(|(w, _)| *w == word) {
                Some((_, hosts)) => hosts.push(host),
                None => groups.push((word, vec![host])),
            }
        }
        groups.iter().map(|(word, hosts)| format!("{} {word}", hosts.join(","))).collect::<Vec<_>>().join("; ")
    }
}

/// What a history record says of a failure: the step, why, and the last line it printed.
pub(super) fn failure_detail(failure: &StepFailure) -> String {
    match failure.output.last_line() {
        Some(said) => format!("{failure}: {said}"),
        None => failure.to_string(),
    }
}

/// "1.1.0", "1.0.0, 1.1.0" (hosts differ) or "-" (first install).
pub fn from_versions(plan: &AppPlan) -> String {
    let mut versions: Vec<&str> = plan.targets.iter().filter_map(|t| t.from.as_deref()).collect();
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        "-".into()
    } else {
        versions.join(", ")
    }
}
