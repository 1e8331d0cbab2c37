//! `kai diff` and the confirmation of `kai promote`: what two environments run.

use kai_core::config::{App, Config};

use crate::error::CliError;
use crate::settings::Settings;

/// Reads both environments (all hosts at once) and compares `names` (default: every
/// app placed in either).
pub async fn read(config: &Config, a: &str, b: &str, names: &[String], settings: &Settings) -> Result<kai_core::diff::Diff, CliError> {
    let (env_a, env_b) = (crate::config_files::environment(config, a)?, crate::config_files::environment(config, b)?);
    let placed = |app: &App| app.envs.contains_key(a) || app.envs.contains_key(b);
    let apps: Vec<&App> = if names.is_empty() {
        config.apps.values().filter(|app| placed(app)).collect()
    } else {
        let mut apps = Vec::new();
        for name in names {
            let app = crate::config_files::application(config, name)?;
            if !placed(app) {
                return Err(CliError::usage(format!("{name} is deployed to neither {a} nor {b} (apps/{name}.toml)"), None));
            }
            apps.push(app);
        }
        apps
    };
    let in_env = |env: &str| apps.iter().copied().filter(|app| app.envs.contains_key(env)).collect::<Vec<&App>>();
    let (apps_a, apps_b) = (in_env(a), in_env(b));
    let (read_a, read_b) = tokio::join!(
        crate::fleet::read_env(settings, config, env_a, &apps_a, false),
        crate::fleet::read_env(settings, config, env_b, &apps_b, false)
    );
    let statuses: Vec<_> = read_a.into_iter().chain(read_b).collect();
    let listed: Vec<kai_core::diff::Compared> = apps.iter().map(|app| kai_core::diff::Compared::of(app, a, b)).collect();
    Ok(kai_core::diff::diff(a, b, &listed, &statuses))
}
