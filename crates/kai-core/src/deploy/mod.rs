//! One app's deploy (or rollback) as a state machine without I/O, the way the
//! [`Rollout`] is one for the rolling switch it wraps.
//!
//! ```text
//!            ┌──────────── held / failed / stop ─────────────┐
//!  lock first host ─► lock the others ─► inspect ─► plan ─► stage ─► roll (waves) ─► standby ─► finish ─► done
//!      │ (each lock also re-reads the host)   │         │       │        │   ▲ undo       │          │
//!      │                          plan error, │   no-op │ fail/ │  fail: │───┘ (Rollout)  │ fail     │ record, prune,
//!      │                       saved plan out │         │  stop │  halt, │ stop: no new   │          │ unlock (kept when
//!      │                               of date│         ▼       ▼  undo  │ wave           ▼          │ a server is stuck)
//!      └──────────────────────────────────────┴──► release (clean up, unlock) ─► done ◄──────────────┘
//! ```
//!
//! The binary asks [`Deploy::poll`] what to do, does it ([`Request::Run`]: tasks, one
//! per host, all at once, each a host's steps in order; [`Request::Inspect`]: health
//! and rotation of the hosts), and tells [`Deploy::handle`] what happened, with the
//! time. A stop request (Ctrl-C, SIGTERM, SIGHUP) is an event too: the servers being
//! switched finish (or are put back), no new server leaves rotation, locks are released,
//! and the hosts that were touched get their result in their history.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::config::{App, Config};
use crate::facts::{parse_lock_owner, parse_probe, HostFacts, LockOwner};
use crate::fingerprint::{self, HostSummary};
use crate::history::{self, Record};
use crate::outcome::{Output, Reason, StepFailure};
use crate::plan::{self, AppPlan, HostSteps, Options, Placement, Release, Role};
use crate::shell::helpers;
pub mod rollout;

mod machine;
mod report;

use crate::step::{Step, StepKind};
pub use machine::Deploy;
pub use report::*;
use rollout::{Next, Rollout, ServerState};

/// What to deploy.
#[derive(Clone, Debug)]
pub enum What {
    /// A release from the repository.
    Deploy(Box<Release>),
    /// Back to this version, or to the one staged before the current one.
    Rollback(Option<String>),
    /// A plan made earlier (`kai plan --out`): made again from the hosts as they are now,
    /// with `release` (checked against the repository again, or the local build's file
    /// again; none for a rollback) and the plan's own maker and run, and applied only
    /// when it is the same plan, step for step. What runs is what kai made.
    Saved { plan: Box<AppPlan>, facts: BTreeMap<String, HostSummary>, release: Option<Box<Release>>, owner: LockOwner },
}

/// Everything one deploy of one app needs; nothing here is read from the world.
pub struct Context<'a> {
    pub config: &'a Config,
    pub env: &'a str,
    pub app: &'a App,
    pub what: What,
    pub options: Options,
    pub owner: LockOwner,
    /// When the deploy began: the time of its history records.
    pub started: SystemTime,
}

/// One host's steps, run in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub host: String,
    pub steps: Vec<Step>,
}

/// What the binary should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Run these tasks, all at once; report them, in this order, with [`Event::Ran`].
    Run(Vec<Task>),
    /// Ask the hosts in `health` whether they are healthy (the active ones that run
    /// `version` already: only they may be left alone), and the balancer which hosts
    /// are in rotation; report with [`Event::Inspected`].
    Inspect { version: String, health: Vec<String> },
    /// The deploy has ended: [`Deploy::report`] says how.
    Done,
}

/// How one task went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskResult {
    /// The output of each step that ran, in order; the last is the failed one's when
    /// `failure` says a step failed after it ran.
    pub outputs: Vec<Output>,
    pub failure: Option<StepFailure>,
}

impl TaskResult {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What a host said about itself beyond the probe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    pub healthy: Option<bool>,
    pub in_rotation: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Ran(Vec<TaskResult>),
    Inspected(Result<BTreeMap<String, Inspection>, String>),
    /// The person (or a signal) asked to stop.
    Stop,
}
