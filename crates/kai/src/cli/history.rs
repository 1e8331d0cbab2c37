//! `kai history`: who deployed what, when, with what result, merged from every host.

use std::path::PathBuf;
use std::time::SystemTime;

use kai_core::history::{self, Query};

use crate::error::CliError;
use crate::settings::Settings;

/// Show who deployed what, when, and how it went: the `.kai/history.jsonl` of every
/// host of the environment (or of one application there), merged so that one deploy
/// across several hosts is one row; newest first.
///
/// Each row: time (UTC), user@machine, app, from -> to, action (deploy, rollback,
/// unlock), result (the worst of its hosts), duration, and the hosts that recorded it.
/// The exit status is 1 when a host could not be read (its rows may be missing).
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    env: String,
    /// Only this application.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    app: Option<String>,
    /// At most this many rows, the newest (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,
    /// Only since then: a date (2026-11-01), a time (2026-11-01 12:00, UTC) or an age (3d, 12h).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Print one JSON document: the rows, with each host's own result.
    #[arg(long)]
    pub(super) json: bool,
}

pub async fn run(config: &Option<PathBuf>, args: HistoryArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    let apps = match &args.app {
        Some(name) => vec![crate::config_files::app_in(&config, &args.env, name)?],
        None => crate::config_files::apps_in(&config, &args.env),
    };
    let since = match &args.since {
        Some(text) => Some(history::parse_since(text, SystemTime::now()).map_err(|e| CliError::usage(e, None))?),
        None => None,
    };
    let cap = if args.limit == 0 { history::READ_ALL } else { history::READ_NEWEST };
    let (records, unread) = crate::fleet::read_history(&config, environment, &apps, settings, true, cap).await;
    let query = Query { app: args.app.clone(), since, limit: (args.limit > 0).then_some(args.limit) };
    let events = history::events(records, &query);
    if args.json {
        let document = crate::json::HistoryDoc { events: &events, unread: &unread };
        crate::output::emit_json(&document)?;
    } else if events.is_empty() {
        let what = args.app.as_deref().map_or_else(|| "no deploys".to_owned(), |app| format!("no deploys of {app}"));
        let when = args.since.as_deref().map(|s| format!(" since {s}")).unwrap_or_default();
        crate::output::emit(&format!("{what} recorded in {}{when}\n", args.env));
    } else {
        crate::output::emit(&history::render(&events));
    }
    for u in &unread {
        eprintln!("warning: {} ({} in {}): history could not be read: {}", u.host, u.app, args.env, u.reason);
    }
    if !unread.is_empty() {
        eprintln!("  hint: rows of those hosts may be missing; `kai check --hosts {}` tries every host", args.env);
    }
    Ok(u8::from(!unread.is_empty()))
}
