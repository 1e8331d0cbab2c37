//! `kai check`: validate the whole configuration repository.

use std::path::PathBuf;

use crate::error::CliError;
use crate::settings::Settings;

/// Validate the configuration repository and report every problem, not just the first.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub fn run(config: &Option<PathBuf>, _args: CheckArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = super::load_config(config, settings)?;
    let hosts: usize = config.environments.values().map(|e| e.hosts.len()).sum();
    println!(
        "{}: ok ({} environments, {} hosts, {} applications)",
        config.root.display(),
        config.environments.len(),
        hosts,
        config.apps.len()
    );
    Ok(0)
}
