//! What kai sends to a host's shell: [`command`] values and the one function that turns
//! them into shell text, the [`helpers`] every script starts with (`kai_*` functions,
//! the probe, the lock), and the [`session`]s that group a host's steps into scripts
//! and read back what each command said.

pub mod command;
pub mod helpers;
pub mod session;
