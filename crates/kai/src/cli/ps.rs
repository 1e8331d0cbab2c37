//! `kai ps`: every process of every app on every host, with its memory, swap and CPU.

use std::path::PathBuf;

use kai_core::ps::{self, AppHome, Listing, SortKey};
use serde::Serialize;

use crate::error::CliError;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// Show every process of every application on every host of an environment: host,
/// pid, user, app, the release it runs from, resident memory, swap (VmSwap), CPU (over
/// the process's lifetime, as `ps` counts it) and uptime; then the totals per host and
/// per app.
///
/// A process belongs to an app when its working folder or executable is under the
/// app home, or when it runs as the app's user (root's processes only by folder). One
/// running from a release that is not the current one is marked `(not current)`:
/// left behind, it may hold what the current release needs (its port).
/// One command per host reads /proc there. The exit status is 1 when a host could not
/// be read.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    env: String,
    /// Only this application.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    app: Option<String>,
    /// Largest first by swap, rss or cpu; or by app, then host (the same order every run).
    #[arg(long, value_enum, default_value_t = Sort::Swap)]
    sort: Sort,
    /// Only the N largest processes (the totals still count all).
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Print one JSON document: the processes and the totals.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Sort {
    Swap,
    Rss,
    Cpu,
    App,
}

impl From<Sort> for SortKey {
    fn from(sort: Sort) -> SortKey {
        match sort {
            Sort::Swap => SortKey::Swap,
            Sort::Rss => SortKey::Rss,
            Sort::Cpu => SortKey::Cpu,
            Sort::App => SortKey::App,
        }
    }
}

/// A host that could not be read.
#[derive(Debug, Serialize)]
struct Unread {
    host: String,
    reason: String,
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    report: &'a Listing,
    unread: &'a [Unread],
}

pub async fn run(config: &Option<PathBuf>, args: PsArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let environment = crate::config_files::environment(&config, &args.env)?;
    let apps = match &args.app {
        Some(name) => vec![crate::config_files::app_in(&config, &args.env, name)?],
        None => crate::config_files::apps_in(&config, &args.env),
    };
    // Each host once, with every app it runs; the command runs as the first one's user,
    // in no app's home (it enters none, and creates none).
    let mut hosts: Vec<(Place, Vec<AppHome>)> = Vec::new();
    for app in &apps {
        for p in crate::fleet::hosts_of(&config, &args.env, app) {
            let home = AppHome { app: app.name.clone(), user: p.user.clone(), home: p.home.clone() };
            match hosts.iter_mut().find(|(place, _)| place.host == p.host) {
                Some((_, homes)) => homes.push(home),
                None => {
                    let mut place = Place::from(&p);
                    place.access.home = None;
                    hosts.push((place, vec![home]));
                }
            }
        }
    }
    let places: Vec<Place> = hosts.iter().map(|(place, _)| place.clone()).collect();
    let transport = EnvTransport::open(environment, settings);
    let outputs = run_all(&transport, &hosts).await;
    transport.close().await;
    let mut processes = Vec::new();
    let mut unread = Vec::new();
    for (place, output) in places.iter().zip(outputs) {
        match output {
            Ok(text) => processes.extend(ps::parse_ps(&place.host, &text)),
            Err(reason) => unread.push(Unread { host: place.host.clone(), reason }),
        }
    }
    let report = ps::report(processes, args.sort.into(), args.top);
    if args.json {
        let document = Document { report: &report, unread: &unread };
        crate::output::emit_json(&document)?;
    } else if report.found == 0 {
        let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        let read: Vec<&str> = places.iter().filter(|p| !unread.iter().any(|u| u.host == p.host)).map(|p| p.host.as_str()).collect();
        let read = if read.is_empty() { "no host could be read".to_owned() } else { format!("hosts read: {}", read.join(", ")) };
        crate::output::emit(&format!("no process of {} runs in {} ({read})\n", names.join(", "), args.env));
    } else {
        crate::output::emit(&report.render());
    }
    for u in &unread {
        eprintln!("warning: {} in {} could not be read: {}", u.host, args.env, u.reason);
    }
    if !unread.is_empty() {
        eprintln!("  hint: `kai check --hosts {}` tries every host and says why", args.env);
    }
    Ok(u8::from(!unread.is_empty()))
}

/// Runs the process script on every host at once, each told its apps.
async fn run_all<T: Transport>(transport: &T, hosts: &[(Place, Vec<AppHome>)]) -> Vec<Result<String, String>> {
    let runs = hosts.iter().map(|(place, homes)| {
        let command = ps::ps_command(homes);
        async move { crate::fleet::run_everywhere(transport, std::slice::from_ref(place), &command).await.remove(0) }
    });
    futures_util::future::join_all(runs).await
}
