//! What the commands do: `cli/` parses the command line and calls in here; these carry
//! a command out. Every command that changes or plans a deploy starts with the one
//! [`prepare`] (bring the configuration up to date, read and validate it) and asks the
//! one [`confirm`]ation on a protected environment; [`run`] deploys the apps of a run,
//! each through its deploy machine ([`crate::drive`]), and [`run::Ran::finish`] prints
//! the outcome and sends the notices.

pub mod confirm;
pub mod deploy;
pub mod diff;
pub mod lock;
pub mod plan;
pub mod prepare;
pub mod promote;
pub mod rollback;
pub mod run;
