//! The one driver of kai-core's waits ([`kai_core::wait`]): it answers what a wait
//! asks, sleeps until the instant it names, and tells it when a stop was asked for.
//! Besides the transports' own deadlines and `kai serve`, this is the only place kai
//! sleeps; every decision about time (a health check's stable window, a balancer's
//! drain, a canary's window, how long to wait for a deploy lock) is the wait's.

pub mod app;
pub mod judge;
pub mod lock_wait;
pub mod steps;

use std::time::{Duration, Instant};

use kai_core::wait::{Ask, Wait};

/// How often a sleeping wait looks whether a stop was asked for.
const STOP_EVERY: Duration = Duration::from_millis(100);

/// No stop ever: for waits that go on to their end whatever happens (a drain under
/// way, a health check of a server being switched).
pub fn never() -> bool {
    false
}

/// Drives `wait` to its end: `serve` answers each question; `stop` is looked at
/// before each step and while sleeping, and told to the wait once.
pub async fn drive<W: Wait>(
    wait: &mut W,
    stop: &(dyn Fn() -> bool + Sync),
    mut serve: impl AsyncFnMut(W::Question) -> W::Answer,
) -> W::Output {
    // The wait's times are durations since `origin`.
    let origin = Instant::now();
    let mut stopped = false;
    loop {
        if !stopped && stop() {
            stopped = true;
            wait.stop(origin.elapsed());
        }
        match wait.poll(origin.elapsed()) {
            Ask::Now(question) => {
                let answer = serve(question).await;
                wait.answer(answer, origin.elapsed());
            }
            Ask::Sleep(until) if stopped => sleep_until(origin + until).await,
            Ask::Sleep(until) => {
                // In short naps, so that a stop is told at once.
                let until = origin + until;
                while Instant::now() < until && !stop() {
                    sleep_until(until.min(Instant::now() + STOP_EVERY)).await;
                }
            }
            Ask::Done(output) => return output,
        }
    }
}

/// A pause the plan asks for (`[kai] wait`, a balancer's settle time): not cut short
/// by a stop, which the deploy machine handles between steps.
pub async fn pause(duration: Duration) {
    sleep_until(Instant::now() + duration).await;
}

async fn sleep_until(until: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use kai_core::wait::Until;

    use super::*;

    #[tokio::test]
    async fn answers_each_question_and_sleeps_between() {
        let mut wait = Until::<String>::new(Duration::ZERO, Duration::from_secs(10), Duration::from_millis(200));
        let mut looks = 0;
        let done = drive(&mut wait, &never, async |()| {
            looks += 1;
            Ok(looks == 3)
        })
        .await;
        assert_eq!((done, looks), (Ok(()), 3));
    }

    #[tokio::test]
    async fn a_stop_is_told_while_sleeping() {
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let judge = kai_core::step::Judge {
            by: kai_core::step::JudgeBy::Command(kai_core::shell::command::Command::new(["true"])),
            canary: vec![],
            baseline: vec![],
            canary_hosts: vec!["web1".into()],
            baseline_hosts: vec![],
            policy: kai_core::canary::Policy { window: Duration::from_secs(60), ..kai_core::canary::Policy::default() },
        };
        let mut watch = kai_core::canary::Watch::new(&judge, Duration::from_secs(120), Duration::ZERO);
        let verdict = drive(&mut watch, &|| stop.load(Ordering::SeqCst), async |question| {
            if let kai_core::canary::Question::Show(_) = question {
                stop.store(true, Ordering::SeqCst);
            }
            kai_core::canary::Answer::Shown
        })
        .await;
        assert!(start.elapsed() < Duration::from_secs(5), "the window was cut short");
        assert_eq!(verdict.map(|v| v.verdict), Ok("bad".to_owned()));
    }
}
