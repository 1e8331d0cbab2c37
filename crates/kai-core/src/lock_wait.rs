//! `--lock-wait`: a deploy (or rollback, or promotion) that meets a deploy lock held by
//! someone else tries again until the lock is free or its time is up: a [`Wait`] the
//! binary's one driver runs, deciding when to try again, what to tell, and when to
//! give up.
//!
//! Each try is the app's deploy from its start: it locks the first host alone, then the
//! others, and when it meets a held lock on any of them it releases every lock it took
//! before it ends ([`crate::deploy`]). So between two tries this run holds no lock on
//! any host, and two runs waiting for each other cannot each hold half the hosts.
//!
//! Not waited for: a stale lock (its kai is gone, nothing will release it: `kai unlock`
//! breaks it), and a try whose own locks could not all be released (it ends as it is).
//! A lock held by hand (`kai lock --hold`) is never stale: it is waited for like a
//! deploy's.

use std::time::Duration;

use crate::deploy::{AppResult, Report};
use crate::facts::LockOwner;
use crate::table;
use crate::wait::{Ask, Wait};

/// How often the locks are tried again.
pub const TRY_EVERY: Duration = Duration::from_secs(2);
/// How often a line says the wait goes on.
pub const TELL_EVERY: Duration = Duration::from_secs(30);

/// The lock a try met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub owner: LockOwner,
    /// Whether its kai still runs: known only on the machine it runs on.
    pub alive: Option<bool>,
}

/// What the wait needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// Deploy the app from its start (taking every lock, or releasing those it took).
    Try,
    /// Tell the person this.
    Tell(Notice),
}

/// What a person waiting is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The lock is held: said at first, and again whenever someone else holds it.
    Held { owner: LockOwner, limit: Duration },
    /// It is still held, after `waited`: said every [`TELL_EVERY`].
    Still { owner: LockOwner, waited: Duration, limit: Duration },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The owner is what a host holds: its Display escapes it.
        match self {
            Notice::Held { owner, limit } => write!(
                f,
                "the deploy lock is held by {owner}; waiting up to {} for it (trying again every {})",
                table::age(*limit),
                table::age(TRY_EVERY)
            ),
            Notice::Still { owner, waited, limit } => write!(
                f,
                "still waiting for the deploy lock held by {}@{}: {} of {}",
                table::printable(&owner.user),
                table::printable(&owner.machine),
                table::age(*waited),
                table::age(*limit)
            ),
        }
    }
}

/// What happened to what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The try ended without meeting a held lock (deployed, failed, interrupted, …),
    /// or met one but could not release all of its own: its report is the result.
    Ended,
    /// The try met this lock, and released every lock it had taken.
    Held(Holder),
    /// Told.
    Told,
}

/// How the wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The last try is the result.
    Tried,
    /// The lock met is stale: not waited for.
    Stale,
    /// The lock was still held when the time was up.
    TimedOut,
    /// A stop was asked for while waiting: nothing was changed.
    Stopped,
}

/// The wait's outcome: how it ended, how long it waited (before the last try), and the
/// last lock it met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waited {
    pub end: End,
    pub waited: Duration,
    pub holder: Option<LockOwner>,
}

impl Waited {
    /// Says in the last try's report that (and how long) it waited; a stop while waiting
    /// makes it an interrupted run that changed nothing.
    pub fn tell(&self, report: &mut Report) {
        let waited = table::age(self.waited);
        let holder = self.holder.as_ref().map(ToString::to_string).unwrap_or_default();
        match self.end {
            // The first try met no lock: nothing was waited for.
            End::Tried if self.holder.is_none() => {}
            End::Tried => report.notes.insert(0, format!("waited {waited} for the deploy lock held by {holder}")),
            End::TimedOut => {
                let said = report.message.take().map(|m| format!("{m}; ")).unwrap_or_default();
                report.message = Some(format!("{said}kai waited {waited} for it (--lock-wait) and gave up"));
            }
            End::Stale => {
                let said = report.message.take().map(|m| format!("{m} ")).unwrap_or_default();
                report.message = Some(format!("{said}(kai does not wait for a stale lock: nothing will release it)"));
            }
            End::Stopped => {
                report.result = AppResult::Interrupted;
                report.failure = None;
                report.message = Some(format!("interrupted after waiting {waited} for the deploy lock held by {holder}; nothing changed"));
            }
        }
    }
}

/// Tries, and while the lock is held by someone who may release it, tries again every
/// [`TRY_EVERY`] until `limit` after the first try.
#[derive(Clone, Debug)]
pub struct LockWait {
    limit: Duration,
    state: State,
    /// When the try under way began.
    tried_at: Duration,
    /// The holder last told, and when a line was last said.
    told: Option<(LockOwner, Duration)>,
    holder: Option<LockOwner>,
}

#[derive(Clone, Debug)]
enum State {
    Try,
    /// Tell, then sleep until the instant.
    Tell(Notice, Duration),
    Sleep(Duration),
    Done(Waited),
}

impl LockWait {
    /// A wait of at most `limit`, counted from its first try (at the driver's origin).
    pub fn new(limit: Duration) -> LockWait {
        LockWait { limit, state: State::Try, tried_at: Duration::ZERO, told: None, holder: None }
    }

    fn done(&mut self, end: End, waited: Duration) {
        self.state = State::Done(Waited { end, waited, holder: self.holder.clone() });
    }

    fn held(&mut self, holder: Holder, now: Duration) {
        self.holder = Some(holder.owner.clone());
        if holder.owner.is_stale(holder.alive) {
            return self.done(End::Stale, self.tried_at);
        }
        if now >= self.limit {
            // Until the last try began: what the person asked for, not the try's own time.
            return self.done(End::TimedOut, self.tried_at);
        }
        let next = (now + TRY_EVERY).min(self.limit);
        let notice = match &self.told {
            Some((told, _)) if *told != holder.owner => Some(Notice::Held { owner: holder.owner.clone(), limit: self.limit }),
            None => Some(Notice::Held { owner: holder.owner.clone(), limit: self.limit }),
            Some((_, at)) if now.saturating_sub(*at) >= TELL_EVERY => {
                Some(Notice::Still { owner: holder.owner.clone(), waited: now, limit: self.limit })
            }
            Some(_) => None,
        };
        self.state = match notice {
            Some(notice) => {
                self.told = Some((holder.owner, now));
                State::Tell(notice, next)
            }
            None => State::Sleep(next),
        };
    }
}

impl Wait for LockWait {
    type Question = Question;
    type Answer = Answer;
    type Output = Waited;

    fn poll(&mut self, now: Duration) -> Ask<Question, Waited> {
        match &self.state {
            State::Sleep(until) if now < *until => Ask::Sleep(*until),
            State::Try | State::Sleep(_) => {
                self.state = State::Try;
                self.tried_at = now;
                Ask::Now(Question::Try)
            }
            State::Tell(notice, _) => Ask::Now(Question::Tell(notice.clone())),
            State::Done(waited) => Ask::Done(waited.clone()),
        }
    }

    fn answer(&mut self, answer: Answer, now: Duration) {
        match (answer, &self.state) {
            (Answer::Ended, State::Try) => self.done(End::Tried, self.tried_at),
            (Answer::Held(holder), State::Try) => self.held(holder, now),
            (Answer::Told, State::Tell(_, next)) => self.state = State::Sleep(*next),
            // An answer to a question not asked changes nothing.
            _ => {}
        }
    }

    /// A stop ends the wait; a try under way has been told by its own driver.
    fn stop(&mut self, now: Duration) {
        if matches!(self.state, State::Tell(..) | State::Sleep(_)) {
            self.done(End::Stopped, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn owner(user: &str) -> LockOwner {
        LockOwner {
            user: user.into(),
            machine: "ws1".into(),
            pid: 7,
            since: "2026-01-01T00:00:00Z".into(),
            command: "kai deploy test hello".into(),
            hold: None,
        }
    }

    fn held(user: &str, alive: Option<bool>) -> Answer {
        Answer::Held(Holder { owner: owner(user), alive })
    }

    /// Plays a wait where each try gets the next of `tries` and every notice is told;
    /// returns the outcome, the instants of the tries and the notices with their instants.
    fn run(limit: Duration, tries: Vec<Answer>) -> (Waited, Vec<Duration>, Vec<(Duration, Notice)>) {
        let mut wait = LockWait::new(limit);
        let mut tries = tries.into_iter();
        let (mut now, mut tried, mut told) = (Duration::ZERO, Vec::new(), Vec::new());
        loop {
            match wait.poll(now) {
                Ask::Now(Question::Try) => {
                    tried.push(now);
                    let answer = tries.next().expect("the script answers every try");
                    // A try takes a moment.
                    now += Duration::from_millis(100);
                    wait.answer(answer, now);
                }
                Ask::Now(Question::Tell(notice)) => {
                    told.push((now, notice));
                    wait.answer(Answer::Told, now);
                }
                Ask::Sleep(until) => {
                    assert!(until > now, "a wait sleeps forward");
                    now = until;
                }
                Ask::Done(waited) => return (waited, tried, told),
            }
        }
    }

    #[test]
    fn a_free_lock_is_taken_at_once_and_nothing_is_said() {
        let (waited, tried, told) = run(secs(20), vec![Answer::Ended]);
        assert_eq!(waited, Waited { end: End::Tried, waited: Duration::ZERO, holder: None });
        assert_eq!((tried, told), (vec![Duration::ZERO], vec![]));
    }

    #[test]
    fn a_held_lock_is_tried_again_until_it_is_free_and_the_holder_told_once() {
        let mut tries = vec![held("ann", Some(true)); 4];
        tries.push(Answer::Ended);
        let (waited, tried, told) = run(secs(20), tries);
        assert_eq!(waited.end, End::Tried);
        assert_eq!(waited.waited, Duration::from_millis(8400), "waited until the last try began");
        assert_eq!(waited.holder, Some(owner("ann")));
        assert_eq!(tried.len(), 5);
        for pair in tried.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(2100), "a try every 2 s after the last ended: {tried:?}");
        }
        assert_eq!(told, [(Duration::from_millis(100), Notice::Held { owner: owner("ann"), limit: secs(20) })]);
    }

    #[test]
    fn past_its_limit_the_wait_gives_up_with_a_line_every_30_seconds_meanwhile() {
        let (waited, tried, told) = run(secs(65), vec![held("ann", None); 100]);
        assert_eq!(waited.end, End::TimedOut);
        assert_eq!(waited.waited, secs(65), "until the last try, at the limit");
        assert_eq!(*tried.last().unwrap(), secs(65), "the last try is at the limit: {tried:?}");
        let at: Vec<Duration> = told.iter().map(|(at, _)| *at).collect();
        assert_eq!(at.len(), 3, "{told:?}");
        assert!(matches!(told[0].1, Notice::Held { .. }));
        assert!(matches!(told[1].1, Notice::Still { waited, .. } if waited >= secs(30) && waited < secs(33)), "{told:?}");
        assert!(at[2] - at[1] >= TELL_EVERY && at[2] - at[1] < TELL_EVERY + secs(3), "{at:?}");
    }

    #[test]
    fn a_stale_lock_is_not_waited_for() {
        let (waited, tried, told) = run(secs(300), vec![held("ann", Some(false))]);
        assert_eq!(waited, Waited { end: End::Stale, waited: Duration::ZERO, holder: Some(owner("ann")) });
        assert_eq!((tried.len(), told.len()), (1, 0));
    }

    #[test]
    fn a_holder_that_dies_while_waited_for_ends_the_wait() {
        let (waited, tried, _) = run(secs(300), vec![held("ann", Some(true)), held("ann", Some(true)), held("ann", Some(false))]);
        assert_eq!(waited.end, End::Stale);
        assert_eq!(tried.len(), 3);
    }

    #[test]
    fn a_lock_held_by_hand_is_waited_for_even_when_no_process_runs() {
        let hold = LockOwner { pid: 0, hold: Some("freeze".into()), ..owner("ann") };
        let tries = vec![Answer::Held(Holder { owner: hold.clone(), alive: Some(false) }), Answer::Ended];
        let (waited, _, told) = run(secs(20), tries);
        assert_eq!(waited.end, End::Tried);
        assert_eq!(told, [(Duration::from_millis(100), Notice::Held { owner: hold, limit: secs(20) })]);
    }

    #[test]
    fn a_new_holder_is_told_again() {
        let (_, _, told) = run(secs(20), vec![held("ann", None), held("ann", None), held("bob", None), Answer::Ended]);
        let owners: Vec<&str> = told
            .iter()
            .map(|(_, n)| match n {
                Notice::Held { owner, .. } | Notice::Still { owner, .. } => owner.user.as_str(),
            })
            .collect();
        assert_eq!(owners, ["ann", "bob"]);
    }

    #[test]
    fn a_stop_while_waiting_ends_it_and_a_try_under_way_is_left_to_its_deploy() {
        let mut wait = LockWait::new(secs(20));
        assert_eq!(wait.poll(Duration::ZERO), Ask::Now(Question::Try));
        wait.stop(Duration::ZERO);
        wait.answer(held("ann", None), secs(1));
        assert!(matches!(wait.poll(secs(1)), Ask::Now(Question::Tell(_))), "the try's answer still counts");
        wait.stop(secs(1));
        let Ask::Done(waited) = wait.poll(secs(1)) else { panic!("a stop ends a wait") };
        assert_eq!((waited.end, waited.waited), (End::Stopped, secs(1)));
    }

    #[test]
    fn a_zero_limit_is_one_try() {
        let (waited, tried, _) = run(Duration::ZERO, vec![held("ann", None)]);
        assert_eq!((waited.end, tried.len()), (End::TimedOut, 1));
    }

    #[test]
    fn the_report_says_it_waited() {
        let locked = |message: &str| Report {
            result: AppResult::Locked(owner("ann")),
            message: Some(message.into()),
            ..Report::new("hello", "1.1.0")
        };
        let waited = |end, s| Waited { end, waited: secs(s), holder: Some(owner("ann")) };

        let mut report = locked("that kai (pid 7) still runs on this machine: wait for it to end");
        waited(End::TimedOut, 20).tell(&mut report);
        assert_eq!(
            report.message.as_deref(),
            Some("that kai (pid 7) still runs on this machine: wait for it to end; kai waited 20s for it (--lock-wait) and gave up")
        );
        let mut report = locked("the lock is stale: kai pid 7 no longer runs on ws1. Break it with `kai unlock test hello`");
        waited(End::Stale, 0).tell(&mut report);
        assert!(report.message.as_deref().is_some_and(|m| m.contains("`kai unlock test hello` (kai does not wait for a stale lock")));
        let mut report = locked("x");
        waited(End::Stopped, 4).tell(&mut report);
        assert_eq!(report.result, AppResult::Interrupted);
        assert!(report.message.as_deref().is_some_and(|m| m.starts_with("interrupted after waiting 4s") && m.ends_with("nothing changed")));
        let mut report = Report { result: AppResult::Deployed, ..Report::new("hello", "1.1.0") };
        waited(End::Tried, 6).tell(&mut report);
        assert_eq!(
            report.notes,
            ["waited 6s for the deploy lock held by ann@ws1 (pid 7) since 2026-01-01T00:00:00Z: kai deploy test hello"]
        );
        let mut report = Report { result: AppResult::Deployed, ..Report::new("hello", "1.1.0") };
        // The driver's clock moves while the first try is asked for: a few nanoseconds.
        Waited { end: End::Tried, waited: Duration::from_nanos(651), holder: None }.tell(&mut report);
        assert!(report.notes.is_empty(), "{:?}", report.notes);
    }

    #[test]
    fn notices_name_the_holder_escaped_and_the_time() {
        let mut hostile = owner("ann\u{1b}[2J");
        hostile.command = "kai deploy\u{7}".into();
        let said = Notice::Held { owner: hostile.clone(), limit: secs(300) }.to_string();
        assert_eq!(
            said,
            "the deploy lock is held by ann\\u{1b}[2J@ws1 (pid 7) since 2026-01-01T00:00:00Z: kai deploy\\u{7}; waiting up to 5m 00s for it (trying again every 2s)"
        );
        let said = Notice::Still { owner: hostile, waited: secs(30), limit: secs(300) }.to_string();
        assert_eq!(said, "still waiting for the deploy lock held by ann\\u{1b}[2J@ws1: 30s of 5m 00s");
    }
}
