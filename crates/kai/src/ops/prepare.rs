//! Before a run: bring the configuration repository up to date (unless asked not
//! to), read and validate it, refuse uncommitted changes on a protected environment.
//! Every command that changes or plans a deploy starts here.

use std::path::{Path, PathBuf};

use kai_core::config::Config;
use kai_core::fingerprint;

use crate::error::CliError;
use crate::settings::Settings;

/// The configuration a run works from, once brought up to date.
pub struct Prepared {
    pub config: Config,
    /// The fingerprint of the configuration's files.
    pub fingerprint: String,
    /// The git commit checked out, when the configuration is a git checkout.
    pub commit: Option<String>,
}

/// How to treat the configuration repository before a run.
#[derive(Clone, Copy, Debug)]
pub struct SyncWish {
    pub no_sync: bool,
    pub allow_dirty: bool,
}

/// Syncs (unless asked not to), reads and validates the configuration; refuses
/// uncommitted changes on a protected `env` unless allowed.
pub async fn prepare(explicit: &Option<PathBuf>, settings: &Settings, env: &str, wish: SyncWish) -> Result<Prepared, CliError> {
    let root = crate::config_files::config_root(explicit, settings)?;
    let synced = crate::config_files::sync_config(&root, wish.no_sync).await?;
    let sources = crate::config_files::read_sources(&root).map_err(|e| CliError::usage(e.to_string(), None))?;
    let texts: Vec<(&Path, &str)> = std::iter::once(&sources.kai_toml)
        .chain(&sources.environments)
        .chain(&sources.apps)
        .map(|f| (f.path.as_path(), f.text.as_str()))
        .collect();
    let fingerprint = fingerprint::of(&texts);
    let mut config = kai_core::config::load(&sources)?;
    let environment = crate::config_files::environment(&config, env)?;
    crate::config_files::refuse_dirty(synced.as_ref(), environment, wish.allow_dirty)?;
    // The secrets the environment's apps use, had before anything is touched.
    let needed = kai_core::secrets::needed(env, crate::config_files::apps_in(&config, env));
    if !needed.is_empty() {
        let secrets = crate::secrets::resolve(environment, &needed, &root, settings).await?;
        if let Some(environment) = config.environments.get_mut(env) {
            environment.secrets = secrets;
        }
    }
    let commit = crate::sync::head(&root).await;
    Ok(Prepared { config, fingerprint, commit })
}
