//! Fleet visibility over SSH: every scenario of `scenarios/visibility.rs` again, with
//! the hosts reached through a real sshd (issue 6).

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod support;

#[path = "scenarios/visibility.rs"]
mod visibility;
