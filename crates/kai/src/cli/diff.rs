//! `kai diff <a> <b>`: what two environments run, app by app.

use super::globals::Globals;
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
    let diff = crate::ops::diff::read(&config, &args.a, &args.b, &args.apps, settings).await?;
    if globals.json {
        crate::output::emit_json(&diff)?;
    } else {
        crate::output::emit(&diff.render());
    }
    Ok(u8::from(!diff.same))
}
