//! Judging a canary wave (`[canary]`, docs/configuration.md): the I/O of
//! [`kai_core::canary::Watch`], which decides. HAProxy's counters are read from the
//! control machine like every HAProxy step; a `judge_command` runs here. The verdict,
//! as JSON, is the step's output either way: the deploy machine puts it in the report
//! and the history.

use std::time::Duration;

use kai_core::canary::{self, Answer, Question, Watch};
use kai_core::step::{Judge, JudgeBy};

use crate::balancer::Balancer;
use crate::drive::drive;
use crate::transport::Transport;

/// Judges the canary: `Ok(verdict as JSON)` when it is good, `Err((why, verdict as
/// JSON))` when it is bad or cannot be judged. `limit` bounds it all; a stop makes it bad.
pub async fn run<T: Transport>(
    balancer: &Balancer<'_, T>,
    judge: &Judge,
    limit: Duration,
    on_detail: &(dyn Fn(&str) + Send + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<String, (String, String)> {
    let mut watch = Watch::new(judge, limit, Duration::ZERO);
    let verdict = drive(&mut watch, stop, async |question| match (question, &judge.by) {
        (Question::Stats, JudgeBy::Haproxy { admin, backend }) => Answer::Stats(balancer.stats(admin, backend).await),
        (Question::Stats, JudgeBy::Command(_)) => Answer::Stats(Err("a judge_command has no counters to read".into())),
        (Question::Command { within }, JudgeBy::Command(command)) => Answer::Said(run_command(judge, command, within).await),
        (Question::Command { .. }, JudgeBy::Haproxy { .. }) => Answer::Said(Err("an HAProxy canary runs no command".into())),
        (Question::Show(line), _) => {
            on_detail(&line);
            Answer::Shown
        }
    })
    .await;
    canary::outcome(judge, verdict)
}

/// Runs the `judge_command` here with the hosts in its environment (`KAI_CANARY_HOSTS`,
/// `KAI_BASELINE_HOSTS`, comma-separated; `KAI_CANARY_WINDOW` in seconds), for at most
/// `within`: its exit code and what it printed.
async fn run_command(
    judge: &Judge,
    command: &kai_core::shell::command::Command,
    within: Duration,
) -> Result<(Option<i32>, String), String> {
    let (program, args) = command.argv.split_first().ok_or("an empty judge_command")?;
    let mut child = tokio::process::Command::new(program);
    child
        .args(args)
        .env("KAI_CANARY_HOSTS", judge.canary_hosts.join(","))
        .env("KAI_BASELINE_HOSTS", judge.baseline_hosts.join(","))
        .env("KAI_CANARY_WINDOW", judge.policy.window.as_secs().to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(within, child.output())
        .await
        .map_err(|_| format!("judge_command {program} did not finish within {}", humantime::format_duration(within)))?
        .map_err(|e| format!("judge_command {program}: {e}"))?;
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    Ok((output.status.code(), said))
}
