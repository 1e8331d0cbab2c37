//! `kai check`: validate the configuration repository; `--hosts` also connects to
//! every host and reports what kai would meet there.

use std::path::PathBuf;

use futures_util::future::join_all;
use futures_util::StreamExt;
use kai_core::config::{Config, Environment};
use kai_core::plan::placements;
use kai_core::shell::command::Command;
use kai_core::version::{newest_release, sort_versions, MavenVersion};
use serde::Serialize;

use crate::error::CliError;
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// Validate the configuration repository and report every problem, not just the first.
///
/// Exits 0 when all is well, 1 when a host or the repository check found a problem,
/// 2 when the configuration itself has problems.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Also connect to every host (of ENV, or of every environment) and report, per
    /// host and app: reachable, login user, sudo, free disk in the app home.
    #[arg(long)]
    hosts: bool,
    /// Also ask the Maven repository for every app's artifact: it must exist and list
    /// at least one version.
    #[arg(long)]
    repository: bool,
    /// Only this environment (with --hosts).
    #[arg(requires = "hosts")]
    env: Option<String>,
    /// Print one JSON document.
    #[arg(long)]
    pub(super) json: bool,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct CheckDoc {
    root: String,
    /// Nothing found wrong.
    ok: bool,
    environments: usize,
    hosts: usize,
    applications: usize,
    warnings: Vec<String>,
    /// With --hosts: one entry per host and app.
    host_checks: Option<Vec<HostCheck>>,
    /// With --repository: one entry per app.
    repository: Option<Vec<ArtifactCheck>>,
    /// The secrets each environment's apps use, and whether its source holds them.
    secrets: Vec<SecretsCheck>,
}

/// One environment's secrets: the names its apps use, where they come from, and what
/// is wrong (never a value).
#[derive(Debug, Serialize)]
struct SecretsCheck {
    env: String,
    /// `secrets/<env>.age`, or `command` (not run by `kai check`).
    source: String,
    names: Vec<String>,
    ok: bool,
    problems: Vec<String>,
}

/// What the repository said about one app's artifact.
#[derive(Debug, Serialize)]
struct ArtifactCheck {
    app: String,
    /// `group:artifact`
    coordinates: String,
    ok: bool,
    versions: usize,
    newest_release: Option<String>,
    problem: Option<String>,
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
    if let Some(problem) = crate::config_files::repository_folder_problem(&config) {
        return Err(CliError::Config(kai_core::config::ConfigErrors(vec![problem])));
    }
    let hosts: usize = config.environments.values().map(|e| e.hosts.len()).sum();
    let warnings: Vec<String> = kai_core::config::warnings(&config).iter().map(ToString::to_string).collect();
    for warning in &warnings {
        crate::terminal::write_stderr(&format!("warning: {warning}\n"));
    }
    let mut host_checks = None;
    if args.hosts {
        let envs: Vec<&Environment> = match &args.env {
            Some(name) => vec![crate::config_files::environment(&config, name)?],
            None => config.environments_in_order().collect(),
        };
        let mut checks = Vec::new();
        for environment in envs {
            let places = places(&config, environment);
            let transport = EnvTransport::open(environment, settings);
            checks.extend(check_all(&transport, environment, &places).await);
            transport.close().await;
        }
        host_checks = Some(checks);
    }
    let repository = if args.repository { Some(check_repository(&config, settings).await?) } else { None };
    let secrets = check_secrets(&config, settings);
    let ok = host_checks.iter().flatten().all(|c| c.ok) && repository.iter().flatten().all(|c| c.ok) && secrets.iter().all(|c| c.ok);
    let doc = CheckDoc {
        root: config.root.display().to_string(),
        ok,
        environments: config.environments.len(),
        hosts,
        applications: config.apps.len(),
        warnings,
        host_checks,
        repository,
        secrets,
    };
    if args.json {
        crate::output::emit_json(&doc)?;
    } else {
        print_text(&doc);
    }
    Ok(u8::from(!ok))
}

/// Every environment's secrets: the age file read with this user's identity (a missing
/// identity is said once), a command not run.
fn check_secrets(config: &Config, settings: &Settings) -> Vec<SecretsCheck> {
    let identity = crate::secrets::identity_path(settings);
    let mut identity_said = false;
    let mut checks = Vec::new();
    for environment in config.environments_in_order() {
        let env = environment.name.as_str();
        let needed = kai_core::secrets::needed(env, crate::config_files::apps_in(config, env));
        if needed.is_empty() {
            continue;
        }
        let names: Vec<String> = needed.keys().cloned().collect();
        let mut problems = Vec::new();
        let source = match &environment.secret_source {
            kai_core::config::SecretSource::Command { .. } => "command (not run by kai check)".to_owned(),
            kai_core::config::SecretSource::File => {
                let file = format!("secrets/{env}.age");
                let readable = identity.as_ref().is_some_and(|p| p.exists());
                if !readable {
                    if !identity_said {
                        let at = identity.as_ref().map_or_else(|| "(no HOME)".to_owned(), |p| p.display().to_string());
                        problems.push(format!(
                            "no identity at {at}: the values cannot be checked (`kai secrets list {env}` shows the names); make one with `age-keygen -o {at}`"
                        ));
                        identity_said = true;
                    }
                } else {
                    match crate::secrets::held(&config.root, env, settings) {
                        Ok(held) => {
                            problems.extend(needed.iter().filter(|(n, _)| !held.contains_key(*n)).map(|(n, apps)| {
                                format!("{n} ({}) is not in {file}: `kai secrets set {env} {n}` adds it", apps.join(", "))
                            }))
                        }
                        Err(e) => problems.push(format!("{e}{}", e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default())),
                    }
                }
                file
            }
        };
        checks.push(SecretsCheck { env: env.to_owned(), source, names, ok: problems.is_empty(), problems });
    }
    checks
}

/// Every app's artifact, asked of the repository (a few at once).
async fn check_repository(config: &Config, settings: &Settings) -> Result<Vec<ArtifactCheck>, CliError> {
    let repo = crate::resolve::repository(config, settings)?;
    let checks = config.apps.values().map(|app| {
        let repo = &repo;
        async move {
            let coordinates = format!("{}:{}", app.group, app.artifact);
            match crate::resolve::list_versions(repo, config, app).await {
                Ok(listed) => {
                    let mut versions: Vec<MavenVersion> = listed.iter().map(|v| MavenVersion::parse(v)).collect();
                    sort_versions(&mut versions);
                    let newest_release = newest_release(&versions).map(|v| v.as_str().to_owned());
                    let problem = listed.is_empty().then(|| "the repository lists no version".to_owned());
                    ArtifactCheck {
                        app: app.name.clone(),
                        coordinates,
                        ok: problem.is_none(),
                        versions: listed.len(),
                        newest_release,
                        problem,
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    let message = message.strip_prefix(&format!("{}: ", app.name)).unwrap_or(&message).to_owned();
                    let problem = match e.hint() {
                        Some(hint) => format!("{message}\n  hint: {hint}"),
                        None => message,
                    };
                    ArtifactCheck {
                        app: app.name.clone(),
                        coordinates,
                        ok: false,
                        versions: 0,
                        newest_release: None,
                        problem: Some(problem),
                    }
                }
            }
        }
    });
    Ok(futures_util::stream::iter(checks).buffered(8).collect().await)
}

fn print_text(doc: &CheckDoc) {
    use kai_core::table::count;
    println!(
        "{}: {} ({}, {}, {})",
        doc.root,
        if !doc.secrets.iter().all(|c| c.ok) {
            "valid, with problems below"
        } else if doc.host_checks.is_none() && doc.repository.is_none() {
            "ok"
        } else {
            "valid"
        },
        count(doc.environments, "environment"),
        count(doc.hosts, "host"),
        count(doc.applications, "application")
    );
    if let Some(checks) = &doc.host_checks {
        print_table(checks);
    }
    for c in &doc.secrets {
        let state = if c.ok { "ok" } else { "FAILED" };
        println!("secrets of {}: {} from {}: {state}", c.env, c.names.join(", "), c.source);
        for problem in &c.problems {
            println!("  {problem}");
        }
    }
    if let Some(checks) = &doc.repository {
        for c in checks {
            match &c.problem {
                None => println!(
                    "{:<20} {:<40} ok      {}, newest release {}",
                    c.app,
                    c.coordinates,
                    count(c.versions, "version"),
                    c.newest_release.as_deref().unwrap_or("(none)")
                ),
                Some(problem) => println!("{:<20} {:<40} FAILED  {problem}", c.app, c.coordinates),
            }
        }
    }
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
                    check.free_bytes = lines.next().and_then(|l| l.trim().parse::<u64>().ok()).and_then(|kib| kib.checked_mul(1024));
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

/// A line per host and app (what the host said, made printable), then the total.
fn print_table(checks: &[HostCheck]) {
    use kai_core::table::{count, printable};
    for c in checks {
        let app = c.app.as_deref().unwrap_or("-");
        match &c.problem {
            None => {
                let user = printable(c.user.as_deref().unwrap_or("?"));
                let free = c.free_bytes.map_or("?".to_owned(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
                println!("{:<10} {:<12} {:<20} ok      user {user:<12} free {free}", c.env, c.host, app);
            }
            Some(problem) => println!("{:<10} {:<12} {:<20} FAILED  {}", c.env, c.host, app, printable(problem)),
        }
    }
    let hosts: std::collections::BTreeSet<(&str, &str)> = checks.iter().map(|c| (c.env.as_str(), c.host.as_str())).collect();
    let failed: std::collections::BTreeSet<(&str, &str)> =
        checks.iter().filter(|c| !c.ok).map(|c| (c.env.as_str(), c.host.as_str())).collect();
    let failed_checks = checks.iter().filter(|c| !c.ok).count();
    if failed.is_empty() {
        println!("{} ok ({})", count(hosts.len(), "host"), count(checks.len(), "check"));
    } else {
        println!(
            "{} of {} FAILED ({} of {}); the others ok",
            count(failed.len(), "host"),
            hosts.len(),
            count(failed_checks, "check"),
            checks.len()
        );
    }
}
