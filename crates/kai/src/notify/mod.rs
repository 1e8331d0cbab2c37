//! Notifications (docs/configuration.md `[notify]`): after each `kai deploy`, one notice by
//! every configured channel (email, webhook) saying who deployed what, where, and
//! how it went. The notice is built by pure functions ([`notice`]); the channels
//! only carry it. A channel that fails is a warning: it never changes the outcome
//! of the command that ran, and no secret (password, webhook URL) is ever printed.

mod email;
pub mod notice;
mod webhook;

use std::time::Duration;

use kai_core::config::{Config, NotifyConfig};

use crate::settings::Settings;
use kai_core::deploy::Report;
use notice::{Notice, Who};

/// How long a server may take to answer one exchange.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a notice could not be sent; never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the environment variable {name} is not set")]
    MissingVar { name: String },
    #[error("{key} {value:?} is not an email address: {reason}")]
    Address { key: &'static str, value: String, reason: String },
    #[error("smtp {smtp:?} is not host:port")]
    Server { smtp: String },
    #[error("could not build the notice: {0}")]
    Message(String),
    #[error("{server}: {reason}")]
    Smtp { server: String, reason: String },
    #[error("no answer from {server} within {seconds}s")]
    Timeout { server: String, seconds: u64 },
    #[error("the environment variable {var} does not hold an http(s) URL")]
    WebhookUrl { var: String },
    #[error("{host}: {reason}")]
    Webhook { host: String, reason: String },
    #[error("{host} answered {status}{answer}")]
    WebhookStatus { host: String, status: String, answer: String },
}

/// A way a notice goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Webhook,
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        })
    }
}

/// What became of the notice on one channel: where it went, or why not.
pub type Sent = (Channel, Result<String, NotifyError>);

/// The `[notify]` that applies to `env`: the environment's own when it has one
/// (it replaces kai.toml's), else kai.toml's.
pub fn applicable<'c>(config: &'c Config, env: &str) -> Option<&'c NotifyConfig> {
    config.environments.get(env).and_then(|e| e.notify.as_ref()).or(config.notify.as_ref())
}

/// The person and machine running kai, as notices name them.
pub fn who(settings: &Settings) -> Who {
    Who { user: settings.user.clone(), machine: settings.machine.clone() }
}

/// Sends `notice` through every channel of `notify` at once; one result per channel.
pub async fn send(notify: &NotifyConfig, notice: &Notice, settings: &Settings) -> Vec<Sent> {
    let email = async {
        match &notify.email {
            Some(config) => Some((Channel::Email, email::send(config, notice, settings).await)),
            None => None,
        }
    };
    let webhook = async {
        match &notify.webhook {
            Some(config) => Some((Channel::Webhook, webhook::send(config, notice, settings).await)),
            None => None,
        }
    };
    let (email, webhook) = futures_util::future::join(email, webhook).await;
    email.into_iter().chain(webhook).collect()
}

/// After a deploy or a rollback (`command`): one notice for the whole command, none
/// when nothing changed (every app was up to date). A channel that fails is a warning
/// on stderr; the command's outcome stays as it is.
pub async fn after_run(config: &Config, command: &str, env: &str, settings: &Settings, reports: &[Report]) {
    let Some(notify) = applicable(config, env) else { return };
    if reports.iter().all(|r| r.result == kai_core::deploy::AppResult::UpToDate) {
        return;
    }
    let notice = notice::run_notice(command, env, &who(settings), reports);
    for (channel, result) in send(notify, &notice, settings).await {
        if let Err(e) = result {
            eprintln!("warning: notification by {channel} failed: {e}");
        }
    }
}

/// An error and its causes on one line, each said once: libraries often repeat a
/// cause's text in their own.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in parts.iter().flat_map(|p| p.split(": ")) {
        if !segments.contains(&segment) {
            segments.push(segment);
        }
    }
    segments.join(": ")
}

/// `text` with every occurrence of each secret replaced by `***`.
pub fn redact<'s>(text: &str, secrets: impl IntoIterator<Item = &'s str>) -> String {
    let mut secrets: Vec<&str> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    // Longest first, so a secret that contains another is hidden whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_every_secret_longest_first() {
        assert_eq!(redact("auth failed for hunter2", ["hunter2"]), "auth failed for ***");
        assert_eq!(redact("http://h/a/b and /a/b", ["http://h/a/b", "/a/b"]), "*** and ***");
        assert_eq!(redact("nothing here", ["", "x1y2"]), "nothing here");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("Connection error: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("Connection error: received corrupt message")]
    struct Inner;

    #[test]
    fn an_error_chain_says_each_cause_once() {
        assert_eq!(error_chain(&Outer(Inner)), "Connection error: received corrupt message");
    }
}
