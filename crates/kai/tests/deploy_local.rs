//! The deploy pipeline end to end (docs/deploy.md): the real `kai` binary deploying the
//! demo service from a folder Maven repository to local hosts, each scenario in a world
//! of its own (see `support`). The scenarios are in `scenarios/deploy.rs`.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

#[path = "scenarios/deploy.rs"]
mod deploy;

#[path = "scenarios/deploy_all.rs"]
mod deploy_all;

#[path = "scenarios/bad_day.rs"]
mod bad_day;

#[path = "scenarios/hostile.rs"]
mod hostile;

#[path = "scenarios/local_build.rs"]
mod local_build;

#[path = "scenarios/promote.rs"]
mod promote;

#[path = "scenarios/canary_command.rs"]
mod canary_command;

#[path = "scenarios/locks.rs"]
mod locks;
