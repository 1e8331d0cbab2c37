//! What the commands that show the fleet (`status`, `history`, `ps`, `lock`) share on
//! the command line side: which apps a name means, and printing. Reading the hosts is
//! [`crate::fleet`]'s.

use kai_core::config::{App, Config};

use crate::error::CliError;

/// The apps deployed to `env`, by name.
pub fn apps_in<'c>(config: &'c Config, env: &str) -> Vec<&'c App> {
    config.apps.values().filter(|a| a.envs.contains_key(env)).collect()
}

/// The application named `name`, which must be deployed to `env`; else a usage error
/// naming the apps that are.
pub fn app_in<'c>(config: &'c Config, env: &str, name: &str) -> Result<&'c App, CliError> {
    let app = crate::config_files::application(config, name)?;
    if app.envs.contains_key(env) {
        return Ok(app);
    }
    let here: Vec<&str> = apps_in(config, env).iter().map(|a| a.name.as_str()).collect();
    Err(CliError::usage(
        format!("{name} is not deployed to {env}: apps/{name}.toml has no [env.{env}] section"),
        Some(if here.is_empty() {
            format!("no application is deployed to {env}")
        } else {
            format!("deployed to {env}: {}", here.join(", "))
        }),
    ))
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `value` as one pretty JSON document and a newline.
pub fn emit_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.into()))?;
    emit(&format!("{text}\n"));
    Ok(())
}
