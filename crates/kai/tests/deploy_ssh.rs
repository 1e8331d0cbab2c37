//! The deploy pipeline end to end over SSH: every scenario of `scenarios/deploy.rs`
//! again, with the hosts reached through a real sshd (DESIGN §4, §6; issue: SSH).

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod support;

#[path = "scenarios/deploy.rs"]
mod deploy;
