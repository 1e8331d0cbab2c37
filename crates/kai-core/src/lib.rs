//! kai's pure core.
//!
//! Everything here decides; nothing here acts. There is no tokio, no process, no
//! network and no clock in this crate: the `kai` binary reads the world, hands the
//! facts in, and carries out what comes back.
//!
//! A tour, in the order a deploy uses it:
//!
//! - [`config`]: the configuration repository as a validated model, with errors that
//!   name file, line and key.
//! - [`version`] and [`maven`]: Maven version ordering, `maven-metadata.xml`, artifact
//!   coordinates; [`checksum`]: the checksums published beside artifacts.
//! - [`args`]: `<app>-<version>` arguments split against the configured app names.
//! - [`ident`], [`template`] and [`shell`]: validated names, `{placeholder}` templates,
//!   and commands as values with the one function that turns them into shell text.
//! - [`facts`]: what a host said about itself (parsed from its output).
//! - [`step`]: one step on one host, and the checks kai applies to what it printed.
//! - [`placement`]: an app's hosts in an environment, its home and how kai enters it.
//! - [`plan`]: the pure planner, from config + versions + facts to the steps per host
//!   (`plan/roll.rs` the switch of each server and its undo, `plan/stage.rs` the
//!   artifact staged, `plan/properties.rs` the properties file); [`plan::text`] the plan
//!   as text (`kai plan`), [`plan::json`] as data (`--json`), [`plan::saved`] a plan
//!   saved to a file and checked again before it runs; [`run_settings`]: how each
//!   release on a host is started, stopped and checked, as recorded when it was
//!   installed (what a put-back uses).
//! - [`rotation`]: how a server leaves and rejoins the load balancer, per balancer kind.
//! - [`deploy`]: one app's deploy as a machine (lock, inspect, stage, roll, standby,
//!   finish, release, stop), with [`deploy::rollout`] deciding outcome by outcome which
//!   server switches or goes back next.
//! - [`wait`]: every timed judgement as a machine that asks for time (a health check's
//!   stable window, a balancer's drain); [`canary`]: the canary's figures, verdict and
//!   its [`canary::Watch`]; [`lock_wait`]: `--lock-wait`, a deploy trying again while
//!   someone else holds its lock.
//! - [`haproxy`]: HAProxy runtime API commands and the `show stat` parser; [`httpd`]:
//!   Apache httpd's balancer-manager page, read and its form filled.
//! - [`local_build`]: local builds (`kai deploy <env> ./app-1.2.0.zip`): which app and version
//!   a file is, and the release name that keeps it apart from the repository's.
//! - [`history`]: the records kai leaves in `.kai/history.jsonl`, merged across hosts
//!   into one row per deploy for `kai history`.
//! - [`status`]: what each host said about each app, what to notice in it (drift,
//!   unreachable hosts, failing health checks), and the tables of `kai status` and `kai lock`.
//! - [`ps`]: the constant `/proc` script of `kai ps`, its parser, and the mapping of
//!   processes to apps.
//! - [`table`]: aligned text tables and the compact units they show; [`untrusted`]: text
//!   from a host, a balancer or a command, shown only escaped.

pub mod args;
pub mod canary;
pub mod checksum;

pub mod config;
pub mod deploy;
pub mod diff;
pub mod digest;
pub mod estate;
pub mod facts;
pub mod fingerprint;
pub mod haproxy;
pub mod history;
pub mod httpd;
pub mod ident;
pub mod local_build;
pub mod lock_wait;
pub mod mask;
pub mod maven;
pub mod outcome;
pub mod placement;
pub mod plan;
pub mod ps;

pub mod rotation;
pub mod run_settings;
pub mod secrets;
pub mod shell;

pub mod status;
pub mod step;
pub mod suggest;
pub mod table;
pub mod template;
pub mod untrusted;
pub mod version;
pub mod wait;
pub mod web;
