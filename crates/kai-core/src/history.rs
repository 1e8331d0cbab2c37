//! The records kai appends to `.kai/history.jsonl` on every host it changed.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Deploy,
    Rollback,
    Unlock,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Switched and healthy.
    Ok,
    /// Failed; this host was put back as it was.
    RolledBack,
    /// Failed and left as it is (halted, or a rollback that failed).
    Failed,
}

/// One line of `.kai/history.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub time: String,
    pub user: String,
    pub machine: String,
    pub env: String,
    pub app: String,
    pub action: Action,
    pub from: Option<String>,
    pub to: String,
    pub result: Outcome,
    pub duration_ms: u64,
    pub host: String,
    /// Every host of this deploy of the app.
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Record {
    /// One JSON line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a history record always serializes")
    }
}
