//! Fleet visibility end to end (issue 6): `kai status`, `history`, `ps`, `lock` and
//! `unlock` on local hosts, each scenario in a world of its own (see `support`). The
//! scenarios are in `scenarios/visibility.rs`; `visibility_ssh` runs them over SSH.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

#[path = "scenarios/visibility.rs"]
mod visibility;
