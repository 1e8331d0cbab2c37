//! A saved plan (`kai plan --out FILE`, applied by `kai deploy --plan FILE`): the plan
//! of every app, the facts each was made from and their fingerprint, the release, and
//! the configuration it was made with. Applying it runs exactly these steps, or
//! refuses, naming what changed since.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fingerprint::HostSummary;
use crate::plan::{AppPlan, Options, Release};

/// The version of the saved plan format; another is refused.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// [`FORMAT`].
    pub kai_plan: u32,
    pub env: String,
    /// The fingerprint of the configuration repository's files.
    pub config: String,
    /// Its git commit, when it is a git checkout.
    pub commit: Option<String>,
    /// When and by whom (`user@machine`) it was made.
    pub made: String,
    pub by: String,
    pub force: bool,
    pub only: Vec<String>,
    pub apps: Vec<SavedApp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedApp {
    pub app: String,
    /// The artifact (none for a rollback: nothing is staged).
    pub release: Option<Release>,
    pub plan: AppPlan,
    /// What each host held when the plan was made.
    pub facts: BTreeMap<String, HostSummary>,
    /// The fingerprint of `facts`.
    pub fingerprint: String,
}

impl SavedPlan {
    /// The run options the plan was made with, under a new run id.
    pub fn options(&self, run_id: String) -> Options {
        Options { run_id, force: self.force, only: self.only.clone() }
    }
}
