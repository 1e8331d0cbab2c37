//! Judging a canary wave (`[canary]`, docs/configuration.md): by HAProxy's counters
//! over a window, read from the control machine like every HAProxy step, or by a
//! command run here. The verdict, as JSON, is the step's output either way: the
//! deploy machine puts it in the report and the history.

use std::time::Duration;

use kai_core::canary::{self, LowTraffic, Verdict};
use kai_core::haproxy::ServerStat;
use kai_core::step::{Admin, Judge, JudgeBy};
use tokio::time::Instant;

use crate::balancer::Balancer;
use crate::transport::Transport;

/// How often the figures so far are shown.
const SHOW_EVERY: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(500);

/// Judges the canary: `Ok(verdict as JSON)` when it is good, `Err((why, verdict as
/// JSON))` when it is bad or cannot be judged. `limit` bounds it all.
pub async fn run<T: Transport>(
    balancer: &Balancer<'_, T>,
    judge: &Judge,
    limit: Duration,
    on_detail: &(dyn Fn(&str) + Send + Sync),
) -> Result<String, (String, String)> {
    let verdict = match &judge.by {
        JudgeBy::Command(command) => by_command(judge, command, limit, on_detail).await,
        JudgeBy::Haproxy { admin, backend } => by_haproxy(balancer, judge, admin, backend, limit, on_detail).await,
    };
    let verdict = verdict.map_err(|why| (why, String::new()))?;
    let json = serde_json::to_string(&verdict).unwrap_or_default();
    if verdict.is_good() {
        Ok(json)
    } else {
        Err((format!("canary {}: {}", judge.canary_hosts.join(", "), verdict.reason), json))
    }
}

async fn read<T: Transport>(balancer: &Balancer<'_, T>, admin: &Admin, backend: &str) -> Result<Vec<ServerStat>, String> {
    Ok(canary::merge(&balancer.stats(admin, backend).await?))
}

/// Waits until the canary servers are in rotation on every proxy, reads the counters,
/// waits the window (showing the figures so far), reads them again and judges; with
/// `on_low_traffic = "wait"`, window after window until enough requests came.
async fn by_haproxy<T: Transport>(
    balancer: &Balancer<'_, T>,
    judge: &Judge,
    admin: &Admin,
    backend: &str,
    limit: Duration,
    on_detail: &(dyn Fn(&str) + Send + Sync),
) -> Result<Verdict, String> {
    let deadline = Instant::now() + limit;
    loop {
        let stats = balancer.stats(admin, backend).await?;
        let up = stats.iter().all(|proxy| judge.canary.iter().all(|c| proxy.iter().any(|s| &s.server == c && s.in_rotation())));
        if up {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!("the canary {} never came back in rotation to be judged", judge.canary.join(", ")));
        }
        tokio::time::sleep(POLL).await;
    }
    let policy = &judge.policy;
    let start = read(balancer, admin, backend).await?;
    let began = Instant::now();
    let mut windows = 1;
    let mut shown = Instant::now();
    loop {
        let end_of_window = began + policy.window * windows;
        while Instant::now() < end_of_window {
            tokio::time::sleep(POLL.min(end_of_window.saturating_duration_since(Instant::now()))).await;
            if crate::interrupt::requested() {
                // Stopping: a canary nobody finished judging is not trusted; it goes back.
                let now = read(balancer, admin, backend).await?;
                let mut verdict = canary::judge(&start, &now, &judge.canary, &judge.baseline, policy, began.elapsed());
                verdict.verdict = "bad".into();
                verdict.reason = format!("stopped before the window ended, so the canary goes back ({})", verdict.figures_text());
                return Ok(verdict);
            }
            if shown.elapsed() >= SHOW_EVERY {
                shown = Instant::now();
                let now = read(balancer, admin, backend).await?;
                let so_far = canary::judge(&start, &now, &judge.canary, &judge.baseline, policy, began.elapsed());
                on_detail(&live_line(&so_far, began.elapsed(), policy.window * windows));
            }
        }
        let end = read(balancer, admin, backend).await?;
        let mut verdict = canary::judge(&start, &end, &judge.canary, &judge.baseline, policy, began.elapsed());
        if !verdict.is_low_traffic() {
            return Ok(verdict);
        }
        match policy.on_low_traffic {
            LowTraffic::Pass => {
                verdict.verdict = "good".into();
                verdict.reason = format!("passed for lack of traffic (on_low_traffic = \"pass\"): {}", verdict.reason);
                return Ok(verdict);
            }
            LowTraffic::Fail => {
                verdict.verdict = "bad".into();
                verdict.reason = format!("{} (on_low_traffic = \"fail\")", verdict.reason);
                return Ok(verdict);
            }
            LowTraffic::Wait if windows >= policy.max_windows => {
                verdict.verdict = "bad".into();
                verdict.reason = format!("{} after {windows} windows (on_low_traffic = \"wait\", max_windows = {windows})", verdict.reason);
                return Ok(verdict);
            }
            LowTraffic::Wait => {
                on_detail(&format!("too little traffic so far ({} canary requests); watching another window", verdict.canary.requests));
                windows += 1;
            }
        }
    }
}

/// The figures so far and how far into the window: `canary web1: 412 requests, … (23s/60s)`.
fn live_line(v: &Verdict, elapsed: Duration, window: Duration) -> String {
    format!("{} ({}s/{}s)", v.figures_text(), elapsed.as_secs(), window.as_secs())
}

/// Waits the window, then runs the command here with the hosts in its environment
/// (`KAI_CANARY_HOSTS`, `KAI_BASELINE_HOSTS`, comma-separated; `KAI_CANARY_WINDOW` in
/// seconds); exit 0 means good. Its output is the reason shown.
async fn by_command(
    judge: &Judge,
    command: &kai_core::command::Command,
    limit: Duration,
    on_detail: &(dyn Fn(&str) + Send + Sync),
) -> Result<Verdict, String> {
    let window = judge.policy.window;
    on_detail(&format!("canary {}: waiting {} before the judge_command", judge.canary_hosts.join(","), humantime::format_duration(window)));
    let waited = Instant::now() + window;
    while Instant::now() < waited {
        tokio::time::sleep(POLL.min(waited.saturating_duration_since(Instant::now()))).await;
        if crate::interrupt::requested() {
            return Ok(Verdict {
                verdict: "bad".into(),
                reason: "stopped before the window ended, so the canary goes back".into(),
                canary: canary::Figures { servers: judge.canary_hosts.clone(), ..canary::Figures::default() },
                baseline: canary::Figures { servers: judge.baseline_hosts.clone(), ..canary::Figures::default() },
                window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            });
        }
    }
    let (program, args) = command.argv.split_first().ok_or("an empty judge_command")?;
    let mut child = tokio::process::Command::new(program);
    child
        .args(args)
        .env("KAI_CANARY_HOSTS", judge.canary_hosts.join(","))
        .env("KAI_BASELINE_HOSTS", judge.baseline_hosts.join(","))
        .env("KAI_CANARY_WINDOW", window.as_secs().to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let left = limit.saturating_sub(window).max(Duration::from_secs(1));
    let output = tokio::time::timeout(left, child.output())
        .await
        .map_err(|_| format!("judge_command {program} did not finish within {}", humantime::format_duration(left)))?
        .map_err(|e| format!("judge_command {program}: {e}"))?;
    let said = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    // What the command said is shown in the verdict: escaped, and one line of it.
    let last = kai_core::untrusted::HostText::new(said).last_line().map(|l| kai_core::table::cut(&l.to_string(), 512)).unwrap_or_default();
    let figures = |hosts: &[String]| canary::Figures { servers: hosts.to_vec(), ..canary::Figures::default() };
    let (word, reason) = match output.status.code() {
        Some(0) => {
            ("good", format!("judge_command {program} said good{}", if last.is_empty() { String::new() } else { format!(": {last}") }))
        }
        code => (
            "bad",
            format!(
                "judge_command {program} {}{}",
                code.map_or_else(|| "was killed".to_owned(), |c| format!("exited {c}")),
                if last.is_empty() { String::new() } else { format!(": {last}") }
            ),
        ),
    };
    Ok(Verdict {
        verdict: word.into(),
        reason,
        canary: figures(&judge.canary_hosts),
        baseline: figures(&judge.baseline_hosts),
        window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
    })
}
