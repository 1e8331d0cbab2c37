//! Loading the configuration repository: the text of its files in, a validated
//! [`Config`] out, or every problem found (file, line, key, what was expected).
//!
//! Each file is first read into `Raw*` structs that mirror its TOML exactly (unknown
//! keys and wrong types are refused there, with the span of the offending text), then
//! checked value by value into the model. A file that cannot be read into its raw
//! struct reports that one problem; every other file is still checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::de::{self, value::MapAccessDeserializer, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, ConfigErrors};
use super::model::{
    App, AppEnv, Balancer, BalancerKind, Batch, Canary, Config, Defaults, EmailNotify, Environment, FetchMode, Health, HealthCheck, Host,
    NotifyConfig, OnFailure, RepoLocation, RepositoryConfig, RolloutPolicy, SmtpTls, TransportKind, WebhookNotify, DEFAULT_STABLE,
    REPOSITORY_TIMEOUT,
};
use crate::canary::LowTraffic;
use crate::ident;
use crate::maven::Packaging;
use crate::shell::command::split_command_line;
use crate::template::Template;

mod app;
mod balancer;
mod diagnostics;
mod environment;
mod kai_toml;
mod raw;

use app::*;
use diagnostics::*;
use environment::*;
pub use kai_toml::repository_location;
use kai_toml::*;
use raw::*;

/// The text of one configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the configuration root, as shown in errors: `apps/jmsadmin.toml`.
    pub path: PathBuf,
    pub text: String,
}

/// Every file of a configuration repository, read by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSources {
    /// The folder holding `kai.toml` (absolute).
    pub root: PathBuf,
    pub kai_toml: SourceFile,
    /// `environments/*.toml`: the file stem is the environment's name.
    pub environments: Vec<SourceFile>,
    /// `apps/*.toml`: the file stem is the application's name.
    pub apps: Vec<SourceFile>,
}

/// Parses and validates everything; returns every problem found, not just the first.
///
/// # Errors
///
/// Every problem in every file, each naming its file, line and key.
pub fn load(sources: &ConfigSources) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let root = &sources.root;
    let kai = load_kai(&sources.kai_toml, root, &mut errors);
    let envs = load_environments(&sources.environments, root, &mut errors);
    let scope = AppScope {
        group: match &kai {
            Some(kai) => DefaultGroup::from(kai.repository.group.clone()),
            None => DefaultGroup::Unknown,
        },
        defaults: kai.as_ref().map_or_else(Defaults::default, |k| k.defaults.clone()),
        envs: &envs,
    };
    let apps = load_apps(&sources.apps, &scope, &mut errors);
    let listed = kai.as_ref().and_then(|k| k.environments.as_deref()).unwrap_or_default();
    let environment_order = environment_order(&sources.kai_toml, listed, &envs, &mut errors);
    match kai {
        Some(kai) if errors.is_empty() => Ok(Config {
            root: root.clone(),
            environment_order,
            repository: kai.repository,
            defaults: kai.defaults,
            notify: kai.notify,
            environments: envs.loaded,
            apps,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

#[cfg(test)]
mod tests;

/// The keys a table of each file accepts, as the model says them (for the test that
/// holds the configuration reference against the code): the names serde lists when
/// it meets an unknown key in `toml`, parsed as a kai.toml, environment or app file.
#[cfg(test)]
pub(super) fn accepted_keys(file: &str, toml: &str) -> Vec<String> {
    let error = match file {
        "kai" => toml::from_str::<RawKai>(toml).err(),
        "environment" => toml::from_str::<RawEnvironment>(toml).err(),
        "app" => toml::from_str::<RawApp>(toml).err(),
        other => panic!("no file kind {other}"),
    };
    let message = error.map(|e| e.message().to_owned()).unwrap_or_default();
    let listed = message.split_once("expected one of ").map(|(_, l)| l).or_else(|| message.split_once("expected ").map(|(_, l)| l));
    // serde says "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, `c`".
    let listed = listed.unwrap_or_default().replace(" or ", ", ");
    listed.split(", ").map(|k| k.trim().trim_matches('`').to_owned()).filter(|k| !k.is_empty()).collect()
}
