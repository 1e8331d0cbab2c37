//! The rolling switch of one app as a state machine, without I/O.
//!
//! Servers go in waves (one server at a time unless the rollout policy says more; a
//! canary wave of one first). The deploy machine asks [`Rollout::poll`] what to do next,
//! has it run (each server's steps in order, the servers of a wave at once), and tells
//! [`Rollout::handle`] which servers succeeded. When a server fails, the failed
//! servers are undone first, then (with `on_failure = "rollback"`) the rest of that
//! wave and every earlier wave, newest first. A failed undo stops everything and
//! leaves that server stuck.

use crate::config::{Batch, OnFailure, RolloutPolicy};

/// What the deploy machine should have run next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run the roll steps of these servers (indexes into the plan's roll list), at once.
    Roll(Vec<usize>),
    /// Run the undo steps of these servers, at once.
    Undo(Vec<usize>),
    Done(Ending),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every server switched and passed its checks.
    Succeeded,
    /// A server failed; it and the servers switched before it are back.
    RolledBack,
    /// A server failed and is back; the servers switched before it were left.
    Halted,
    /// Undoing a server failed too: it is in an unknown state; nothing more ran.
    RollbackFailed,
}

/// Where each server stands, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    Pending,
    Switched,
    Failed,
    RolledBack,
    Stuck,
}

#[derive(Clone, Debug)]
enum State {
    Rolling(usize),
    /// Groups of servers still to undo, the current one first.
    Undoing(Vec<Vec<usize>>),
    Done(Ending),
}

/// One app's rolling switch.
#[derive(Clone, Debug)]
pub struct Rollout {
    waves: Vec<Vec<usize>>,
    on_failure: OnFailure,
    state: State,
    servers: Vec<ServerState>,
}

/// Splits `count` servers into waves: a canary wave of one first when asked, then
/// waves of `batch` servers (a count, or a percentage of all, at least one).
pub fn waves(count: usize, policy: RolloutPolicy) -> Vec<Vec<usize>> {
    let first = if policy.canary && count > 0 { 1 } else { 0 };
    waves_after(count, policy.batch, first)
}

/// With `[canary]`: its `hosts` servers first (at least one, and never all: the others
/// are what it is judged against), then waves of `batch`. A single server has no
/// canary wave.
pub fn with_canary(count: usize, batch: Batch, canary: Batch) -> Vec<Vec<usize>> {
    let first = if count < 2 { 0 } else { size(canary, count).clamp(1, count - 1) };
    waves_after(count, batch, first)
}

fn size(batch: Batch, count: usize) -> usize {
    match batch {
        Batch::Count(n) => n as usize,
        Batch::Percent(p) => (count * p as usize).div_ceil(100),
    }
    .max(1)
}

/// A first wave of `first` servers (none when 0), then waves of `batch`.
fn waves_after(count: usize, batch: Batch, first: usize) -> Vec<Vec<usize>> {
    let size = size(batch, count);
    let mut waves = Vec::new();
    let mut next = 0;
    if first > 0 {
        waves.push((0..first).collect());
        next = first;
    }
    while next < count {
        let end = (next + size).min(count);
        waves.push((next..end).collect());
        next = end;
    }
    waves
}

impl Rollout {
    pub fn new(waves: Vec<Vec<usize>>, on_failure: OnFailure) -> Rollout {
        let count = waves.iter().map(Vec::len).sum();
        let state = if waves.is_empty() { State::Done(Ending::Succeeded) } else { State::Rolling(0) };
        Rollout { waves, on_failure, state, servers: vec![ServerState::Pending; count] }
    }

    pub fn poll(&self) -> Next {
        match &self.state {
            State::Rolling(wave) => Next::Roll(self.waves[*wave].clone()),
            State::Undoing(groups) => Next::Undo(groups[0].clone()),
            State::Done(outcome) => Next::Done(*outcome),
        }
    }

    /// Reports, for each server of what [`poll`](Self::poll) returned, whether it succeeded.
    pub fn handle(&mut self, results: &[(usize, bool)]) {
        self.state = match std::mem::replace(&mut self.state, State::Done(Ending::Succeeded)) {
            State::Rolling(wave) => self.rolled(wave, results),
            State::Undoing(groups) => self.undone(groups, results),
            done @ State::Done(_) => done,
        };
    }

    fn rolled(&mut self, wave: usize, results: &[(usize, bool)]) -> State {
        for &(server, ok) in results {
            self.servers[server] = if ok { ServerState::Switched } else { ServerState::Failed };
        }
        let failed: Vec<usize> = results.iter().filter(|(_, ok)| !ok).map(|(s, _)| *s).collect();
        if failed.is_empty() {
            return if wave + 1 == self.waves.len() { State::Done(Ending::Succeeded) } else { State::Rolling(wave + 1) };
        }
        let mut groups = vec![failed];
        if self.on_failure == OnFailure::Rollback {
            let rest: Vec<usize> = results.iter().filter(|(_, ok)| *ok).map(|(s, _)| *s).collect();
            groups.extend(std::iter::once(rest).filter(|g| !g.is_empty()));
            groups.extend(self.waves[..wave].iter().rev().cloned());
        }
        State::Undoing(groups)
    }

    fn undone(&mut self, mut groups: Vec<Vec<usize>>, results: &[(usize, bool)]) -> State {
        let mut stuck = false;
        for &(server, ok) in results {
            self.servers[server] = if ok { ServerState::RolledBack } else { ServerState::Stuck };
            stuck |= !ok;
        }
        groups.remove(0);
        if stuck {
            State::Done(Ending::RollbackFailed)
        } else if groups.is_empty() {
            State::Done(match self.on_failure {
                OnFailure::Rollback => Ending::RolledBack,
                OnFailure::Halt => Ending::Halted,
            })
        } else {
            State::Undoing(groups)
        }
    }

    /// Where each server stands now.
    pub fn servers(&self) -> &[ServerState] {
        &self.servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerState::{Pending, RolledBack, Stuck, Switched};

    /// Drives a rollout; `fails` says which (phase, server) fail. Returns what ran.
    fn drive(mut rollout: Rollout, fails: &[(&str, usize)]) -> (Vec<Next>, Vec<ServerState>) {
        let mut ran = Vec::new();
        loop {
            let next = rollout.poll();
            ran.push(next.clone());
            let (phase, servers) = match next {
                Next::Roll(s) => ("roll", s),
                Next::Undo(s) => ("undo", s),
                Next::Done(_) => return (ran, rollout.servers().to_vec()),
            };
            let results: Vec<(usize, bool)> = servers.iter().map(|&s| (s, !fails.contains(&(phase, s)))).collect();
            rollout.handle(&results);
        }
    }

    fn one_by_one(n: usize) -> Vec<Vec<usize>> {
        waves(n, RolloutPolicy::default())
    }

    #[test]
    fn waves_of_one_by_default_a_canary_first_and_percentages() {
        assert_eq!(one_by_one(3), [vec![0], vec![1], vec![2]]);
        let canary = RolloutPolicy { batch: Batch::Count(2), canary: true };
        assert_eq!(waves(6, canary), [vec![0], vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(waves(8, RolloutPolicy { batch: Batch::Percent(25), canary: false }), [vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7]]);
        assert_eq!(waves(3, RolloutPolicy { batch: Batch::Percent(1), canary: false }).len(), 3, "at least one a wave");
        assert!(waves(0, canary).is_empty());
    }

    #[test]
    fn a_canary_section_sends_its_hosts_first_and_never_all() {
        assert_eq!(with_canary(5, Batch::Count(2), Batch::Count(1)), [vec![0], vec![1, 2], vec![3, 4]]);
        assert_eq!(with_canary(4, Batch::Count(1), Batch::Percent(50)), [vec![0, 1], vec![2], vec![3]]);
        assert_eq!(with_canary(3, Batch::Count(3), Batch::Count(5)), [vec![0, 1], vec![2]], "one is left to compare with");
        assert_eq!(with_canary(1, Batch::Count(1), Batch::Count(1)), [vec![0]], "a single server: no canary wave");
    }

    #[test]
    fn all_servers_in_order() {
        let (ran, states) = drive(Rollout::new(one_by_one(3), OnFailure::Rollback), &[]);
        assert_eq!(ran, [Next::Roll(vec![0]), Next::Roll(vec![1]), Next::Roll(vec![2]), Next::Done(Ending::Succeeded)]);
        assert_eq!(states, [Switched; 3]);
    }

    #[test]
    fn health_fails_on_the_first_server() {
        let (ran, states) = drive(Rollout::new(one_by_one(3), OnFailure::Rollback), &[("roll", 0)]);
        assert_eq!(ran, [Next::Roll(vec![0]), Next::Undo(vec![0]), Next::Done(Ending::RolledBack)]);
        assert_eq!(states, [RolledBack, Pending, Pending]);
    }

    #[test]
    fn health_fails_on_the_last_server_and_all_go_back_newest_first() {
        let (ran, states) = drive(Rollout::new(one_by_one(3), OnFailure::Rollback), &[("roll", 2)]);
        assert_eq!(ran[3..], [Next::Undo(vec![2]), Next::Undo(vec![1]), Next::Undo(vec![0]), Next::Done(Ending::RolledBack)]);
        assert_eq!(states, [RolledBack; 3]);
    }

    #[test]
    fn halt_puts_back_only_the_failed_server() {
        let (ran, states) = drive(Rollout::new(one_by_one(3), OnFailure::Halt), &[("roll", 1)]);
        assert_eq!(ran[2..], [Next::Undo(vec![1]), Next::Done(Ending::Halted)]);
        assert_eq!(states, [Switched, RolledBack, Pending]);
    }

    #[test]
    fn a_failing_rollback_stops_everything_and_leaves_the_server_stuck() {
        let (ran, states) = drive(Rollout::new(one_by_one(3), OnFailure::Rollback), &[("roll", 2), ("undo", 1)]);
        assert_eq!(ran.last(), Some(&Next::Done(Ending::RollbackFailed)));
        assert_eq!(states, [Switched, Stuck, RolledBack]);
    }

    #[test]
    fn in_a_wave_the_failed_servers_go_back_first_then_the_rest_of_the_wave_then_earlier_waves() {
        let policy = RolloutPolicy { batch: Batch::Count(2), canary: true };
        let (ran, states) = drive(Rollout::new(waves(5, policy), OnFailure::Rollback), &[("roll", 3)]);
        assert_eq!(
            ran,
            [
                Next::Roll(vec![0]),
                Next::Roll(vec![1, 2]),
                Next::Roll(vec![3, 4]),
                Next::Undo(vec![3]),
                Next::Undo(vec![4]),
                Next::Undo(vec![1, 2]),
                Next::Undo(vec![0]),
                Next::Done(Ending::RolledBack)
            ]
        );
        assert_eq!(states, [RolledBack; 5]);
    }

    #[test]
    fn a_failing_canary_stops_the_rollout_before_the_other_waves() {
        let policy = RolloutPolicy { batch: Batch::Count(3), canary: true };
        let (ran, states) = drive(Rollout::new(waves(4, policy), OnFailure::Rollback), &[("roll", 0)]);
        assert_eq!(ran, [Next::Roll(vec![0]), Next::Undo(vec![0]), Next::Done(Ending::RolledBack)]);
        assert_eq!(states, [RolledBack, Pending, Pending, Pending]);
    }

    #[test]
    fn nothing_to_roll_is_success() {
        assert_eq!(Rollout::new(vec![], OnFailure::Rollback).poll(), Next::Done(Ending::Succeeded));
    }
}
