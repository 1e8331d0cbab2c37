//! Every timed judgement of a deploy as a machine without I/O, the way quinn-proto's
//! `Connection` asks for time: the machine says what it needs ([`Ask::Now`]: look at
//! the world; [`Ask::Sleep`]: nothing before this instant), the binary's one driver
//! does it and hands back the answer and the time, and a stop arrives as a call to
//! [`Wait::stop`]. Nothing here sleeps or reads a clock: time is a [`Duration`] since
//! an origin the driver chooses (its monotonic clock when the wait began), so a test
//! plays a whole wait from zero with made-up times.
//!
//! - [`Until`]: look until a condition holds or a deadline passes (a balancer's drain,
//!   a server back in rotation, httpd taking a change), tolerating a few failed reads.
//! - [`Stable`]: a health check until it passes, then passing at every look for a
//!   window (a release that answers once and then falls over is not healthy).
//! - [`crate::canary::Watch`]: the canary's window, its verdict, low traffic and a stop.
//! - [`crate::lock_wait::LockWait`]: `--lock-wait`, a deploy tried again while someone
//!   else holds its lock, until it is free, stale, or the time is up.

use std::time::Duration;

/// What a wait needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask<Q, T> {
    /// Find out `Q` now and hand the answer to [`Wait::answer`].
    Now(Q),
    /// Nothing to do before this instant (unless a stop comes): then poll again.
    Sleep(Duration),
    /// The wait has ended.
    Done(T),
}

/// A wait, driven by the binary: `poll` until `Done`, answering each `Now`.
pub trait Wait {
    type Question;
    type Answer;
    type Output;
    /// What to do at `now`. After `Now(q)`, the answer comes before the next poll.
    fn poll(&mut self, now: Duration) -> Ask<Self::Question, Self::Output>;
    fn answer(&mut self, answer: Self::Answer, now: Duration);
    /// A stop was asked for. Most waits go on to their end (a drain under way
    /// finishes); one that judges stops judging.
    fn stop(&mut self, _now: Duration) {}
}

/// Why an [`Until`] ended without its condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missed<E> {
    /// The condition did not hold by the deadline.
    TimedOut,
    /// Reading failed (as often in a row as tolerated): the last error.
    Read(E),
}

/// Look every `every` until the answer says the condition holds (`Ok(true)`); give up
/// at the deadline (after a look that found it false), or after `tolerate` failed
/// reads in a row.
#[derive(Clone, Debug)]
pub struct Until<E> {
    deadline: Option<Duration>,
    every: Duration,
    tolerate: u32,
    failed: u32,
    state: UntilState<E>,
}

#[derive(Clone, Debug)]
enum UntilState<E> {
    Look,
    Asked,
    Sleep(Duration),
    Done(Result<(), Missed<E>>),
}

impl<E: Clone> Until<E> {
    /// Until `now + timeout`; the first failed read ends it.
    pub fn new(now: Duration, timeout: Duration, every: Duration) -> Self {
        Until { deadline: Some(now + timeout), every, tolerate: 1, failed: 0, state: UntilState::Look }
    }

    /// Without a deadline: only failed reads end it (a change tried again).
    pub fn attempts(every: Duration, attempts: u32) -> Self {
        Until { deadline: None, every, tolerate: attempts.max(1), failed: 0, state: UntilState::Look }
    }

    /// Ends only after `reads` failed reads in a row (or at the deadline).
    #[must_use]
    pub fn tolerating(mut self, reads: u32) -> Self {
        self.tolerate = reads.max(1);
        self
    }

    fn late(&self, now: Duration) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

impl<E: Clone> Wait for Until<E> {
    type Question = ();
    type Answer = Result<bool, E>;
    type Output = Result<(), Missed<E>>;

    fn poll(&mut self, now: Duration) -> Ask<(), Self::Output> {
        match &self.state {
            UntilState::Look | UntilState::Asked => {
                self.state = UntilState::Asked;
                Ask::Now(())
            }
            UntilState::Sleep(until) if now < *until => Ask::Sleep(*until),
            UntilState::Sleep(_) => {
                self.state = UntilState::Asked;
                Ask::Now(())
            }
            UntilState::Done(output) => Ask::Done(output.clone()),
        }
    }

    fn answer(&mut self, answer: Result<bool, E>, now: Duration) {
        self.state = match answer {
            Ok(true) => UntilState::Done(Ok(())),
            Ok(false) if self.late(now) => UntilState::Done(Err(Missed::TimedOut)),
            Ok(false) => {
                self.failed = 0;
                UntilState::Sleep(now + self.every)
            }
            Err(e) => {
                self.failed += 1;
                if self.failed >= self.tolerate || self.late(now) {
                    UntilState::Done(Err(Missed::Read(e)))
                } else {
                    UntilState::Sleep(now + self.every)
                }
            }
        };
    }
}

/// Why a [`Stable`] check ended unhealthy; `F` is what the last failed check said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unhealthy<F> {
    /// It never passed before the timeout.
    Never { last: F },
    /// It passed, then failed `after` the first pass, inside the stable window.
    Fell { after: Duration, last: F },
}

/// What a [`Stable`] check asks: one check, bounded by `within`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub within: Duration,
}

/// A health check, looked at every `every` until it passes, then at every look for
/// `stable`: healthy once it has passed for the whole window; unhealthy when it fails
/// after passing, or never passes within the timeout.
#[derive(Clone, Debug)]
pub struct Stable<F> {
    deadline: Duration,
    stable: Duration,
    every: Duration,
    passing_since: Option<Duration>,
    state: StableState<F>,
}

#[derive(Clone, Debug)]
enum StableState<F> {
    Look,
    Sleep(Duration),
    Done(Result<(), Unhealthy<F>>),
}

impl<F: Clone> Stable<F> {
    pub fn new(now: Duration, timeout: Duration, stable: Duration, every: Duration) -> Self {
        Stable { deadline: now + timeout, stable, every, passing_since: None, state: StableState::Look }
    }
}

impl<F: Clone> Wait for Stable<F> {
    type Question = Check;
    type Answer = Result<(), F>;
    type Output = Result<(), Unhealthy<F>>;

    fn poll(&mut self, now: Duration) -> Ask<Check, Self::Output> {
        match &self.state {
            StableState::Sleep(until) if now < *until => Ask::Sleep(*until),
            StableState::Look | StableState::Sleep(_) => {
                self.state = StableState::Look;
                // One check gets what is left of the timeout, and at least the window.
                Ask::Now(Check { within: self.deadline.saturating_sub(now).max(self.stable) })
            }
            StableState::Done(output) => Ask::Done(output.clone()),
        }
    }

    fn answer(&mut self, answer: Result<(), F>, now: Duration) {
        self.state = match (answer, self.passing_since) {
            (Ok(()), Some(since)) if now.saturating_sub(since) >= self.stable => StableState::Done(Ok(())),
            (Ok(()), None) if self.stable.is_zero() => StableState::Done(Ok(())),
            (Ok(()), None) => {
                self.passing_since = Some(now);
                StableState::Sleep(now + self.every)
            }
            (Ok(()), Some(_)) => StableState::Sleep(now + self.every),
            (Err(last), Some(since)) => StableState::Done(Err(Unhealthy::Fell { after: now.saturating_sub(since), last })),
            (Err(last), None) if now + self.every >= self.deadline => StableState::Done(Err(Unhealthy::Never { last })),
            (Err(_), None) => StableState::Sleep(now + self.every),
        };
    }
}

/// Plays `wait` against a script of answers, the way a test does: each `Now` gets the
/// next answer, each `Sleep` moves the clock to its instant. Returns the output and
/// the instants at which it asked.
#[cfg(test)]
pub(crate) fn play<W: Wait>(wait: &mut W, start: Duration, answers: impl IntoIterator<Item = W::Answer>) -> (W::Output, Vec<Duration>) {
    let mut answers = answers.into_iter();
    let mut now = start;
    let mut asked = Vec::new();
    loop {
        match wait.poll(now) {
            Ask::Now(_) => {
                asked.push(now - start);
                let Some(answer) = answers.next() else { panic!("the wait asked more than the script answers ({asked:?})") };
                wait.answer(answer, now);
            }
            Ask::Sleep(until) => {
                assert!(until > now, "a wait sleeps forward");
                now = until;
            }
            Ask::Done(output) => return (output, asked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn until_ends_at_the_first_look_that_holds() {
        let start = Duration::ZERO;
        let mut wait = Until::<String>::new(start, secs(10.0), 200 * MS);
        let (done, asked) = play(&mut wait, start, [Ok(false), Ok(false), Ok(true)]);
        assert_eq!(done, Ok(()));
        assert_eq!(asked, [Duration::ZERO, 200 * MS, 400 * MS]);
    }

    #[test]
    fn until_times_out_after_a_look_past_the_deadline() {
        let start = Duration::ZERO;
        let mut wait = Until::<String>::new(start, secs(1.0), 300 * MS);
        let (done, asked) = play(&mut wait, start, std::iter::repeat(Ok(false)));
        assert_eq!(done, Err(Missed::TimedOut));
        assert_eq!(asked.last(), Some(&(1200 * MS)), "the last look is the first at or past the deadline: {asked:?}");
    }

    #[test]
    fn until_fails_at_the_first_failed_read_unless_told_to_tolerate() {
        let start = Duration::ZERO;
        let mut strict = Until::new(start, secs(10.0), 200 * MS);
        assert_eq!(play(&mut strict, start, [Ok(false), Err("gone")]).0, Err(Missed::Read("gone")));
        let mut lenient = Until::new(start, secs(10.0), 200 * MS).tolerating(3);
        let (done, asked) = play(&mut lenient, start, [Err("a"), Err("b"), Ok(false), Err("c"), Err("d"), Ok(true)]);
        assert_eq!(done, Ok(()), "a good read resets the count");
        assert_eq!(asked.len(), 6);
        let mut lenient = Until::new(start, secs(10.0), 200 * MS).tolerating(3);
        assert_eq!(play(&mut lenient, start, [Err("a"), Err("b"), Err("c")]).0, Err(Missed::Read("c")));
    }

    #[test]
    fn attempts_try_again_after_a_pause_and_then_give_up() {
        let start = Duration::ZERO;
        let mut twice = Until::attempts(500 * MS, 2);
        let (done, asked) = play(&mut twice, start, [Err("no"), Ok(true)]);
        assert_eq!((done, asked), (Ok(()), vec![Duration::ZERO, 500 * MS]));
        let mut twice = Until::attempts(500 * MS, 2);
        assert_eq!(play(&mut twice, start, [Err("no"), Err("still no")]).0, Err(Missed::Read("still no")));
    }

    #[test]
    fn stable_needs_a_whole_window_of_passes() {
        let start = Duration::ZERO;
        let mut wait = Stable::<&str>::new(start, secs(10.0), secs(1.0), 250 * MS);
        let (done, asked) = play(&mut wait, start, [Err("refused"), Ok(()), Ok(()), Ok(()), Ok(()), Ok(())]);
        assert_eq!(done, Ok(()));
        assert_eq!(asked, [Duration::ZERO, 250 * MS, 500 * MS, 750 * MS, 1000 * MS, 1250 * MS]);
    }

    #[test]
    fn stable_without_a_window_is_the_first_pass() {
        let start = Duration::ZERO;
        let mut wait = Stable::<&str>::new(start, secs(10.0), Duration::ZERO, 250 * MS);
        assert_eq!(play(&mut wait, start, [Err("refused"), Ok(())]), (Ok(()), vec![Duration::ZERO, 250 * MS]));
    }

    #[test]
    fn stable_fails_when_a_pass_is_followed_by_a_failure() {
        let start = Duration::ZERO;
        let mut wait = Stable::new(start, secs(10.0), secs(5.0), 250 * MS);
        let (done, _) = play(&mut wait, start, [Ok(()), Ok(()), Err("HTTP 500")]);
        assert_eq!(done, Err(Unhealthy::Fell { after: 500 * MS, last: "HTTP 500" }));
    }

    #[test]
    fn stable_gives_up_when_the_next_look_would_be_past_the_timeout() {
        let start = Duration::ZERO;
        let mut wait = Stable::new(start, secs(1.0), secs(5.0), 250 * MS);
        let (done, asked) = play(&mut wait, start, std::iter::repeat(Err("refused")));
        assert_eq!(done, Err(Unhealthy::Never { last: "refused" }));
        assert_eq!(asked.last(), Some(&(750 * MS)));
    }

    #[test]
    fn a_check_is_bounded_by_what_is_left_and_at_least_the_window() {
        let start = Duration::ZERO;
        let mut wait = Stable::<()>::new(start, secs(10.0), secs(2.0), 250 * MS);
        assert_eq!(wait.poll(start), Ask::Now(Check { within: secs(10.0) }));
        wait.answer(Err(()), start + secs(9.0));
        assert_eq!(wait.poll(start + secs(9.5)), Ask::Now(Check { within: secs(2.0) }));
    }

    #[test]
    fn a_stop_does_not_cut_a_health_check_or_a_drain_short() {
        let start = Duration::ZERO;
        let mut wait = Until::<()>::new(start, secs(1.0), 200 * MS);
        wait.stop(start);
        assert_eq!(wait.poll(start), Ask::Now(()));
    }
}
