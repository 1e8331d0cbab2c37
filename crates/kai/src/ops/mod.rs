//! What the commands do, apart from parsing and printing: the steps `kai deploy`,
//! `kai plan`, `kai promote`, `kai rollback` and `kai unlock` share.

pub mod confirm;
pub mod diff;
pub mod plan;
pub mod prepare;
pub mod promote;
pub mod run;
