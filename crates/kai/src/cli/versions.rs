//! `kai versions`: the versions of an app in the repository, in Maven order.

use kai_core::version::{newest_release, sort_versions, MavenVersion};

use super::globals::Globals;
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

/// The `--json` document.
#[derive(serde::Serialize)]
struct VersionsDoc<'v> {
    app: &'v str,
    group: &'v str,
    artifact: &'v str,
    /// What a bare `<app>` deploys; null when there is no release (only snapshots).
    newest_release: Option<&'v str>,
    /// Oldest to newest, in Maven order.
    versions: Vec<VersionDoc<'v>>,
}

#[derive(serde::Serialize)]
struct VersionDoc<'v> {
    version: &'v str,
    newest_release: bool,
}

pub async fn run(globals: &Globals, args: VersionsArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(&globals.config, settings)?;
    let app = crate::config_files::application(&config, &args.app)?;
    let repo = crate::resolve::repository(&config, settings)?;
    let listed = crate::resolve::list_versions(&repo, &config, app).await?;
    crate::resolve::remember_versions(&repo, app, &listed);
    let mut versions: Vec<MavenVersion> = listed.iter().map(|v| MavenVersion::parse(v)).collect();
    sort_versions(&mut versions);
    let newest = newest_release(&versions).map(|v| v.as_str().to_owned());
    if globals.json {
        let doc = VersionsDoc {
            app: &app.name,
            group: &app.group,
            artifact: &app.artifact,
            newest_release: newest.as_deref(),
            versions: versions
                .iter()
                .map(|v| VersionDoc { version: v.as_str(), newest_release: Some(v.as_str()) == newest.as_deref() })
                .collect(),
        };
        return crate::output::emit_json(&doc).map(|()| 0);
    }
    for v in &versions {
        let mark = if Some(v.as_str()) == newest.as_deref() { "  (newest release)" } else { "" };
        println!("{v}{mark}");
    }
    Ok(0)
}
