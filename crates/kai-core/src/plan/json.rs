//! The plan as data: what `kai plan --json` prints. A third reader of the same
//! [`AppPlan`] the executor runs; every step carries the exact text `kai plan` shows.

use serde::Serialize;

use crate::config::OnFailure;
use crate::history::Kind;
use crate::plan::{AppPlan, HostSteps, Role, Step};

/// One app's plan, ready to serialize.
#[derive(Debug, Serialize)]
pub struct PlanDoc<'p> {
    pub app: &'p str,
    pub env: &'p str,
    pub version: &'p str,
    pub action: &'p Kind,
    /// Every host already runs the version: a deploy changes nothing.
    pub noop: bool,
    /// `rollback`: a failed server and the ones switched before it go back; `halt`:
    /// only the failed one.
    pub on_failure: &'static str,
    pub targets: Vec<TargetDoc<'p>>,
    /// In the order they run.
    pub phases: Vec<PhaseDoc<'p>>,
    /// Present when the release is a local build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<&'p crate::local_build::LocalBuild>,
    /// Present when the plan promotes what another environment runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<&'p str>,
}

#[derive(Debug, Serialize)]
pub struct TargetDoc<'p> {
    pub host: &'p str,
    pub role: &'static str,
    pub home: &'p str,
    /// The version `current` points to now; null on a first install.
    pub from: Option<&'p str>,
    /// False when the host already runs the version.
    pub change: bool,
    pub disabled: bool,
}

#[derive(Debug, Serialize)]
pub struct PhaseDoc<'p> {
    /// `lock`, `stage`, `roll`, `standby`, `finish`, `unlock`; `abort` runs only when
    /// staging fails.
    pub phase: &'static str,
    /// True: every host at once; false: host after host (`roll`, in waves).
    pub parallel: bool,
    pub hosts: Vec<HostDoc<'p>>,
}

#[derive(Debug, Serialize)]
pub struct HostDoc<'p> {
    pub host: &'p str,
    /// `roll` only: the wave the server is switched in, counted from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    pub steps: Vec<StepDoc<'p>>,
    /// `roll` only: what puts the server back if one of its steps fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<Vec<StepDoc<'p>>>,
}

#[derive(Debug, Serialize)]
pub struct StepDoc<'p> {
    /// What the step is for: `lock`, `fetch`, `stop`, `switch`, `health`, …
    pub step: &'p str,
    /// The exact command (or what kai itself does), as `kai plan` prints it.
    pub command: String,
}

impl AppPlan {
    /// The plan as data, for `--json`.
    pub fn to_doc(&self) -> PlanDoc<'_> {
        let roll = PhaseDoc {
            phase: "roll",
            parallel: false,
            hosts: self
                .waves
                .iter()
                .enumerate()
                .flat_map(|(n, wave)| wave.iter().map(move |&i| (n + 1, &self.roll[i])))
                .map(|(wave, server)| HostDoc {
                    host: &server.host,
                    wave: Some(wave),
                    steps: steps(&server.roll),
                    undo: Some(steps(&server.undo)),
                })
                .collect(),
        };
        let phases = [
            parallel("lock", &self.lock),
            parallel("stage", &self.stage),
            roll,
            parallel("standby", &self.standby),
            parallel("finish", &self.finish),
            parallel("unlock", &self.unlock),
            parallel("abort", &self.abort),
        ];
        PlanDoc {
            app: &self.app,
            env: &self.env,
            version: &self.version,
            action: &self.action,
            noop: self.is_noop(),
            local: self.local.as_ref(),
            promoted_from: self.promoted_from.as_deref(),
            on_failure: match self.on_failure {
                OnFailure::Rollback => "rollback",
                OnFailure::Halt => "halt",
            },
            targets: self
                .targets
                .iter()
                .map(|t| TargetDoc {
                    host: &t.host,
                    role: match t.role {
                        Role::Active => "active",
                        Role::Standby => "standby",
                    },
                    home: &t.home,
                    from: t.from.as_deref(),
                    change: t.change,
                    disabled: t.disabled,
                })
                .collect(),
            phases: phases.into_iter().filter(|p| !p.hosts.is_empty()).collect(),
        }
    }
}

/// A phase whose hosts all go at once.
fn parallel<'p>(phase: &'static str, hosts: &'p [HostSteps]) -> PhaseDoc<'p> {
    PhaseDoc {
        phase,
        parallel: true,
        hosts: hosts.iter().map(|h| HostDoc { host: &h.host, wave: None, steps: steps(&h.steps), undo: None }).collect(),
    }
}

fn steps(steps: &[Step]) -> Vec<StepDoc<'_>> {
    steps.iter().map(|s| StepDoc { step: s.kind.word(), command: s.action.to_string() }).collect()
}
