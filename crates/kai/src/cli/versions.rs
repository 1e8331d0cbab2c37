//! `kai versions`: the versions of an app in the repository, in Maven order.

use std::path::PathBuf;

use kai_core::version::{newest_release, sort_versions, MavenVersion};

use crate::error::CliError;
use crate::settings::Settings;

/// List an application's versions in the repository, oldest to newest (Maven order);
/// the newest release (what a bare `<app>` deploys) is marked.
#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    /// The application (a file in apps/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    app: String,
}

pub async fn run(config: &Option<PathBuf>, args: VersionsArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = super::load_config(config, settings)?;
    let app = super::application(&config, &args.app)?;
    let repo = crate::resolve::repository(&config, settings)?;
    let listed = repo.versions(&app.group, &app.artifact).await.map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", app.name)))?;
    crate::resolve::remember_versions(&repo, app, &listed);
    let mut versions: Vec<MavenVersion> = listed.iter().map(|v| MavenVersion::parse(v)).collect();
    sort_versions(&mut versions);
    let newest = newest_release(&versions).map(|v| v.as_str().to_owned());
    for v in &versions {
        let mark = if Some(v.as_str()) == newest.as_deref() { "  (newest release)" } else { "" };
        println!("{v}{mark}");
    }
    Ok(0)
}
