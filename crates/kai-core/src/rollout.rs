//! The rolling switch of one app as a state machine, without I/O.
//!
//! The executor asks [`Rollout::poll`] what to run next, runs it, and tells
//! [`Rollout::handle`] whether it worked. The machine decides the order: servers one
//! after another; when a step fails, that server's undo steps, then (with
//! `on_failure = "rollback"`) the undo steps of every server already switched, newest
//! first. A failed undo stops everything and leaves that server stuck.

use crate::config::OnFailure;

/// Which list of a server's steps a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Roll,
    Undo,
}

/// What the executor should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run step `step` of `phase` on server `server` (indexes into the plan's roll list).
    Run {
        server: usize,
        phase: Phase,
        step: usize,
    },
    Done(Outcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every server switched and passed its checks.
    Succeeded,
    /// Server `failed` failed; it and the servers switched before it are back.
    RolledBack { failed: usize },
    /// Server `failed` failed and is back; the servers switched before it were left.
    Halted { failed: usize },
    /// Undoing server `stuck` failed too: it is in an unknown state; nothing more ran.
    RollbackFailed { failed: usize, stuck: usize },
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
    Rolling { server: usize, step: usize },
    Undoing { failed: usize, queue: Vec<usize>, step: usize },
    Done(Outcome),
}

/// One app's rolling switch.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// (roll steps, undo steps) per server, in rollout order.
    lengths: Vec<(usize, usize)>,
    on_failure: OnFailure,
    state: State,
    servers: Vec<ServerState>,
}

impl Rollout {
    /// `lengths`: how many roll and undo steps each server has, in rollout order.
    pub fn new(lengths: Vec<(usize, usize)>, on_failure: OnFailure) -> Rollout {
        let servers = vec![ServerState::Pending; lengths.len()];
        let mut rollout = Rollout { lengths, on_failure, state: State::Rolling { server: 0, step: 0 }, servers };
        rollout.settle();
        rollout
    }

    pub fn poll(&self) -> Next {
        match &self.state {
            State::Rolling { server, step } => Next::Run { server: *server, phase: Phase::Roll, step: *step },
            State::Undoing { queue, step, .. } => Next::Run { server: queue[0], phase: Phase::Undo, step: *step },
            State::Done(outcome) => Next::Done(*outcome),
        }
    }

    /// Reports the outcome of the step [`poll`](Self::poll) returned.
    pub fn handle(&mut self, ok: bool) {
        self.state = match std::mem::replace(&mut self.state, State::Rolling { server: 0, step: 0 }) {
            State::Rolling { server, step } if ok => State::Rolling { server, step: step + 1 },
            State::Rolling { server, .. } => {
                self.servers[server] = ServerState::Failed;
                let mut queue = vec![server];
                if self.on_failure == OnFailure::Rollback {
                    queue.extend((0..server).rev());
                }
                State::Undoing { failed: server, queue, step: 0 }
            }
            State::Undoing { failed, queue, step } if ok => State::Undoing { failed, queue, step: step + 1 },
            State::Undoing { failed, queue, .. } => {
                self.servers[queue[0]] = ServerState::Stuck;
                State::Done(Outcome::RollbackFailed { failed, stuck: queue[0] })
            }
            done @ State::Done(_) => done,
        };
        self.settle();
    }

    /// Where each server stands now.
    pub fn servers(&self) -> &[ServerState] {
        &self.servers
    }

    /// Moves past finished step lists until the state names a step to run (or is done).
    fn settle(&mut self) {
        loop {
            self.state = match std::mem::replace(&mut self.state, State::Rolling { server: 0, step: 0 }) {
                State::Rolling { server, .. } if server == self.lengths.len() => State::Done(Outcome::Succeeded),
                State::Rolling { server, step } if step == self.lengths[server].0 => {
                    self.servers[server] = ServerState::Switched;
                    State::Rolling { server: server + 1, step: 0 }
                }
                State::Undoing { failed, mut queue, step } if step == self.lengths[queue[0]].1 => {
                    self.servers[queue.remove(0)] = ServerState::RolledBack;
                    if queue.is_empty() {
                        State::Done(match self.on_failure {
                            OnFailure::Rollback => Outcome::RolledBack { failed },
                            OnFailure::Halt => Outcome::Halted { failed },
                        })
                    } else {
                        State::Undoing { failed, queue, step: 0 }
                    }
                }
                other => {
                    self.state = other;
                    return;
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::{Roll, Undo};

    /// Drives a rollout, failing the steps listed in `failures`; returns what ran.
    fn drive(mut rollout: Rollout, failures: &[(usize, Phase, usize)]) -> (Vec<(usize, Phase, usize)>, Outcome, Vec<ServerState>) {
        let mut ran = Vec::new();
        loop {
            match rollout.poll() {
                Next::Run { server, phase, step } => {
                    ran.push((server, phase, step));
                    rollout.handle(!failures.contains(&(server, phase, step)));
                }
                Next::Done(outcome) => return (ran, outcome, rollout.servers().to_vec()),
            }
        }
    }

    fn servers(n: usize) -> Vec<(usize, usize)> {
        vec![(2, 2); n]
    }

    #[test]
    fn all_servers_in_order() {
        let (ran, outcome, states) = drive(Rollout::new(servers(3), OnFailure::Rollback), &[]);
        assert_eq!(ran, [(0, Roll, 0), (0, Roll, 1), (1, Roll, 0), (1, Roll, 1), (2, Roll, 0), (2, Roll, 1)]);
        assert_eq!(outcome, Outcome::Succeeded);
        assert_eq!(states, [ServerState::Switched; 3]);
    }

    #[test]
    fn health_fails_on_the_first_server() {
        let (ran, outcome, states) = drive(Rollout::new(servers(3), OnFailure::Rollback), &[(0, Roll, 1)]);
        assert_eq!(ran, [(0, Roll, 0), (0, Roll, 1), (0, Undo, 0), (0, Undo, 1)]);
        assert_eq!(outcome, Outcome::RolledBack { failed: 0 });
        assert_eq!(states, [ServerState::RolledBack, ServerState::Pending, ServerState::Pending]);
    }

    #[test]
    fn health_fails_on_the_last_server_and_all_go_back_newest_first() {
        let (ran, outcome, states) = drive(Rollout::new(servers(3), OnFailure::Rollback), &[(2, Roll, 1)]);
        assert_eq!(ran[5..], [(2, Roll, 1), (2, Undo, 0), (2, Undo, 1), (1, Undo, 0), (1, Undo, 1), (0, Undo, 0), (0, Undo, 1)]);
        assert_eq!(outcome, Outcome::RolledBack { failed: 2 });
        assert_eq!(states, [ServerState::RolledBack; 3]);
    }

    #[test]
    fn halt_puts_back_only_the_failed_server() {
        let (ran, outcome, states) = drive(Rollout::new(servers(3), OnFailure::Halt), &[(1, Roll, 0)]);
        assert_eq!(ran[2..], [(1, Roll, 0), (1, Undo, 0), (1, Undo, 1)]);
        assert_eq!(outcome, Outcome::Halted { failed: 1 });
        assert_eq!(states, [ServerState::Switched, ServerState::RolledBack, ServerState::Pending]);
    }

    #[test]
    fn a_failing_rollback_stops_everything_and_leaves_the_server_stuck() {
        let (ran, outcome, states) = drive(Rollout::new(servers(3), OnFailure::Rollback), &[(2, Roll, 1), (1, Undo, 1)]);
        assert_eq!(ran.last(), Some(&(1, Undo, 1)));
        assert_eq!(outcome, Outcome::RollbackFailed { failed: 2, stuck: 1 });
        assert_eq!(states, [ServerState::Switched, ServerState::Stuck, ServerState::RolledBack]);
    }

    #[test]
    fn nothing_to_roll_is_success_and_empty_lists_are_skipped() {
        assert_eq!(Rollout::new(vec![], OnFailure::Rollback).poll(), Next::Done(Outcome::Succeeded));
        let (ran, outcome, _) = drive(Rollout::new(vec![(0, 0), (1, 0)], OnFailure::Rollback), &[(1, Roll, 0)]);
        assert_eq!(ran, [(1, Roll, 0)]);
        assert_eq!(outcome, Outcome::RolledBack { failed: 1 });
    }
}
