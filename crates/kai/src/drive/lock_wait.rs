//! `--lock-wait`, driven: [`kai_core::lock_wait::LockWait`] decides when to try again,
//! what to tell and when to give up; each try is the app's deploy from its start
//! ([`super::app::drive_app`]), which takes every lock or releases those it took; the
//! stale judgement (is the holder's kai still running here?) is read here, per try.

use std::time::Duration;

use kai_core::config::Environment;
use kai_core::deploy::{AppResult, Context, Report};
use kai_core::lock_wait::{Answer, Holder, LockWait, Question, Waited};

use crate::drive::steps::Executor;
use crate::progress::Progress;
use crate::transport::Transport;

/// Deploys one app, trying again while someone else holds its lock, for at most
/// `limit`; `context` makes each try's context (its lock's time is the try's). Returns
/// the last try's report and how the wait ended ([`Waited::tell`] says it in the report).
pub async fn drive_app_waiting<'c, T: Transport>(
    exec: &Executor<'_, T>,
    environment: &Environment,
    limit: Duration,
    machine: &str,
    mut context: impl FnMut() -> Context<'c>,
    progress: &Progress,
) -> (Report, Waited) {
    let stop = &crate::interrupt::requested;
    let mut wait = LockWait::new(limit);
    let mut last: Option<Report> = None;
    let waited = super::drive(&mut wait, stop, async |question| match question {
        Question::Try => {
            let report = super::app::drive_app(exec, environment, context(), progress, stop).await;
            let answer = match &report.result {
                // A try that could not release every lock it took is not tried again.
                AppResult::Locked(owner) if report.notes.is_empty() => {
                    progress.phase(&report.app, "wait for the lock", 0);
                    Answer::Held(Holder { owner: owner.clone(), alive: crate::fleet::lock_alive(owner, machine) })
                }
                _ => Answer::Ended,
            };
            last = Some(report);
            answer
        }
        Question::Tell(notice) => {
            if let Some(app) = last.as_ref().map(|r| r.app.as_str()) {
                progress.tell(&format!("{app}: {notice}"));
            }
            Answer::Told
        }
    })
    .await;
    let report = last.unwrap_or_else(|| Report::new("?", "?"));
    (report, waited)
}
