//! `kai diff <a> <b>`: what two environments run, app by app.

use kai_core::config::{App, Config};

use super::globals::Globals;
use super::survey;
use crate::error::CliError;
use crate::settings::Settings;

/// Compare what two environments run: per application, the version on their active
/// servers (one when they agree, else which host runs what), the recorded checksum of
/// the artifact, and the properties that differ, as the first active host of each has
/// them (values of secret keys masked). Applications placed in only one are marked.
/// Reads the hosts; changes nothing.
///
/// Exit status: 0 when both run the same, 1 when they differ (as diff does), 2 for a
/// wrong name.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// One environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub a: String,
    /// The other.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub b: String,
    /// Only these applications (default: every application placed in either).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    pub apps: Vec<String>,
}

pub async fn run(globals: &Globals, args: DiffArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(&globals.config, settings)?;
    let diff = read(&config, &args.a, &args.b, &args.apps, settings).await?;
    if globals.json {
        survey::emit_json(&diff)?;
    } else {
        survey::emit(&diff.render());
    }
    Ok(u8::from(!diff.same))
}

/// Reads both environments (all hosts at once) and compares `names` (default: every
/// app placed in either).
pub(super) async fn read(
    config: &Config,
    a: &str,
    b: &str,
    names: &[String],
    settings: &Settings,
) -> Result<kai_core::diff::Diff, CliError> {
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
    let listed: Vec<kai_core::diff::Compared> = apps
        .iter()
        .map(|app| kai_core::diff::Compared {
            app: app.name.clone(),
            in_a: app.envs.contains_key(a),
            in_b: app.envs.contains_key(b),
            same_template: kai_core::diff::same_templates(app, a, b),
        })
        .collect();
    Ok(kai_core::diff::diff(a, b, &listed, &statuses))
}
