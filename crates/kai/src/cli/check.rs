//! `kai check`: validate the configuration repository; `--hosts` also connects to
//! every host and reports what kai would meet there.

use std::path::PathBuf;

use futures_util::future::join_all;
use kai_core::command::Command;
use kai_core::config::{Config, Environment};
use kai_core::plan::placements;
use serde::Serialize;

use crate::error::CliError;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// Validate the configuration repository and report every problem, not just the first.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also connect to every host (of ENV, or of every environment) and report, per
    /// host and app: reachable, login user, sudo, free disk in the app home.
    #[arg(long)]
    hosts: bool,
    /// Only this environment (with --hosts).
    #[arg(requires = "hosts")]
    env: Option<String>,
    /// With --hosts: print one JSON document.
    #[arg(long)]
    json: bool,
}

/// What one host said for one app (or for no app: as its login).
#[derive(Debug, Serialize)]
struct HostCheck {
    env: String,
    host: String,
    app: Option<String>,
    ok: bool,
    user: Option<String>,
    free_bytes: Option<u64>,
    problem: Option<String>,
}

/// The longest the check of one host may take.
const CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Prints who runs the command, then the free space of the working folder in KiB.
const PROBE: &str = r#"id -un && df -Pk . | awk 'NR==2 {print $4}'"#;

pub async fn run(config: &Option<PathBuf>, args: CheckArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let hosts: usize = config.environments.values().map(|e| e.hosts.len()).sum();
    for warning in kai_core::config::warnings(&config) {
        crate::terminal::write_stderr(&format!("warning: {warning}\n"));
    }
    if !args.hosts {
        use kai_core::table::count;
        println!(
            "{}: ok ({}, {}, {})",
            config.root.display(),
            count(config.environments.len(), "environment"),
            count(hosts, "host"),
            count(config.apps.len(), "application")
        );
        return Ok(0);
    }
    let envs: Vec<&Environment> = match &args.env {
        Some(name) => vec![crate::config_files::environment(&config, name)?],
        None => config.environments.values().collect(),
    };
    let mut checks = Vec::new();
    for environment in envs {
        let places = places(&config, environment);
        let transport = EnvTransport::open(environment, settings);
        checks.extend(check_all(&transport, environment, &places).await);
        transport.close().await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks).map_err(|e| CliError::Failed(e.into()))?);
    } else {
        print_table(&checks);
    }
    Ok(u8::from(checks.iter().any(|c| !c.ok)))
}

/// Every (host, app) pair of the environment, and each host without an app once.
fn places(config: &Config, environment: &Environment) -> Vec<(Option<String>, Place)> {
    let mut places: Vec<(Option<String>, Place)> = Vec::new();
    for app in config.apps.values() {
        if let Ok(found) = placements(config, &environment.name, app, &[]) {
            places.extend(found.iter().map(|p| (Some(app.name.clone()), Place::from(p))));
        }
    }
    for host in environment.hosts.values() {
        if !places.iter().any(|(_, p)| p.host == host.name) {
            places.push((None, Place::host_level(host)));
        }
    }
    places.sort_by(|a, b| (&a.1.host, &a.0).cmp(&(&b.1.host, &b.0)));
    places
}

async fn check_all<T: Transport>(transport: &T, environment: &Environment, places: &[(Option<String>, Place)]) -> Vec<HostCheck> {
    let command = Command::new(["sh", "-c", PROBE]);
    join_all(places.iter().map(|(app, place)| {
        let command = &command;
        async move {
            let mut check = HostCheck {
                env: environment.name.clone(),
                host: place.host.clone(),
                app: app.clone(),
                ok: false,
                user: None,
                free_bytes: None,
                problem: None,
            };
            match crate::transport::send_command(transport, place, command, CHECK_LIMIT).await {
                Ok(out) if out.success() => {
                    let mut lines = out.stdout.lines();
                    check.user = lines.next().map(str::to_owned);
                    check.free_bytes = lines.next().and_then(|l| l.trim().parse::<u64>().ok()).map(|kib| kib * 1024);
                    check.ok = true;
                }
                Ok(out) => check.problem = Some(out.stderr.lines().last().unwrap_or("failed").to_owned()),
                Err(reason) => check.problem = Some(reason.to_string()),
            }
            check
        }
    }))
    .await
}

fn print_table(checks: &[HostCheck]) {
    for c in checks {
        let app = c.app.as_deref().unwrap_or("-");
        match &c.problem {
            None => {
                let user = c.user.as_deref().unwrap_or("?");
                let free = c.free_bytes.map_or("?".to_owned(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
                println!("{:<10} {:<12} {:<20} ok      user {user:<12} free {free}", c.env, c.host, app);
            }
            Some(problem) => println!("{:<10} {:<12} {:<20} FAILED  {problem}", c.env, c.host, app),
        }
    }
}
