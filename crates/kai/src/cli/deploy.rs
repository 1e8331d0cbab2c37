//! `kai deploy`: stage, switch, verify.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use futures_util::stream::{self, StreamExt};
use kai_core::config::{App, Config, TransportKind};
use kai_core::facts::{HostFacts, LockOwner};
use kai_core::plan::{placements, Options, Placement, Role};

use super::plan::{lock_owner, run_id, PlanArgs};
use super::Globals;
use crate::balancer::Balancer;
use crate::deploy::{deploy_app, probe, AppReport, AppResult, Request, What};
use crate::error::CliError;
use crate::executor::Executor;
use crate::json::RunDoc;
use crate::progress::{summary, Progress};
use crate::repository::Repository;
use crate::resolve;
use crate::settings::Settings;
use crate::transport::{LocalTransport, Place, SshOptions, SshTransport, Transport};

/// Deploy applications to an environment: stage on every host at once, then switch
/// the active servers one at a time (stop, switch, start, health check); standby
/// servers get the release but stay disabled and stopped. A failure puts that
/// application back as it was; the others carry on.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: String,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`.
    #[arg(required = true, value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Print the plan (every command, per host, in order) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation on protected environments.
    #[arg(long)]
    pub yes: bool,
    /// Applications deployed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Redeploy even where the version already runs.
    #[arg(long)]
    pub force: bool,
    /// Do not update the configuration repository first. By default, when it is a git
    /// checkout with an upstream, kai fast-forwards it (as `git pull --ff-only`) and
    /// deploys what the team has committed.
    #[arg(long)]
    pub no_sync: bool,
    /// Deploy to a protected environment even though the configuration has uncommitted
    /// changes.
    #[arg(long)]
    pub allow_dirty: bool,
}

pub async fn run(globals: &Globals, args: DeployArgs, settings: &Settings) -> Result<u8, CliError> {
    if args.dry_run {
        let plan = PlanArgs { env: args.env, apps: args.apps, only: args.only, force: args.force };
        return super::plan::run(globals, plan, settings).await;
    }
    let root = super::config_root(&globals.config, settings)?;
    let synced = super::sync_config(&root, args.no_sync).await?;
    let config = super::load_config_at(&root)?;
    let environment = super::environment(&config, &args.env)?;
    super::refuse_dirty(synced.as_ref(), environment, args.allow_dirty)?;
    super::check_only(environment, &args.only)?;
    let wanted = resolve::parse_apps(&config, &args.env, &args.apps)?;
    let repo = resolve::repository(&config, settings)?;
    let mut versions = Vec::new();
    for (app, wanted) in &wanted {
        versions.push((*app, resolve::resolve_version(&repo, app, wanted).await?));
    }
    let batch = Batch {
        config: &config,
        env: &args.env,
        repo: &repo,
        ask: (environment.protected && !args.yes).then_some(settings),
        progress: Progress::with_look(&args.env, globals.look),
        http: reqwest::Client::builder().build().map_err(|e| CliError::Failed(e.into()))?,
        options: Options { run_id: run_id(), force: args.force, only: args.only.clone() },
        owner: lock_owner(settings),
        credentials: resolve::curl_credentials(&config, settings),
        jobs: usize::from(args.jobs),
    };
    let reports = match environment.transport {
        TransportKind::Local => batch.run(&LocalTransport::default(), versions).await?,
        TransportKind::Ssh => {
            let transport = SshTransport::new(environment, SshOptions::for_environment(environment));
            let reports = batch.run(&transport, versions).await;
            transport.close().await;
            reports?
        }
    };
    let code = exit_code(&reports);
    print_outcome(globals, "deploy", &args.env, &reports, code)?;
    crate::notify::after_deploy(&config, &args.env, settings, &reports).await;
    Ok(code)
}

/// The summary for people, and with `--json` the document for programs: then the
/// summary goes to standard error and the document alone to standard output.
pub(super) fn print_outcome(globals: &Globals, command: &'static str, env: &str, reports: &[AppReport], code: u8) -> Result<(), CliError> {
    if globals.json {
        eprint!("{}", summary(env, reports));
        super::survey::emit_json(&RunDoc::new(command, env, reports, code))
    } else {
        super::survey::emit(&summary(env, reports));
        Ok(())
    }
}

/// Everything the apps of one `kai deploy` share.
struct Batch<'a> {
    config: &'a Config,
    env: &'a str,
    repo: &'a Repository,
    /// A protected environment without `--yes`: confirm first.
    ask: Option<&'a Settings>,
    progress: Progress,
    http: reqwest::Client,
    options: Options,
    owner: LockOwner,
    credentials: Option<String>,
    jobs: usize,
}

impl Batch<'_> {
    /// Asks first where it must, then deploys the apps, up to `jobs` at once; reports
    /// in the order given.
    async fn run<T: Transport>(&self, transport: &T, versions: Vec<(&App, String)>) -> Result<Vec<AppReport>, CliError> {
        if let Some(settings) = self.ask {
            can_ask(self.env, "deploy", settings)?;
            let previews = versions.iter().map(|(app, version)| {
                preview(transport, self.config, self.env, app, &self.options.only, |_: &BTreeMap<String, HostFacts>| version.clone())
            });
            let lines: Vec<String> = futures_util::future::join_all(previews).await.into_iter().flatten().collect();
            ask(self.env, "deploy", &lines)?;
        }
        self.progress.expect(&versions.iter().map(|(app, _)| app.name.as_str()).collect::<Vec<_>>());
        let deploys = stream::iter(versions).map(|(app, version)| self.one(transport, app, version)).buffered(self.jobs).collect();
        Ok(self.progress.while_running(deploys).await)
    }

    async fn one<T: Transport>(&self, transport: &T, app: &App, version: String) -> AppReport {
        self.progress.phase(&app.name, "artifact", 0);
        let release = match resolve::release(self.repo, self.config, app, &version, true).await {
            Ok(release) => release,
            Err(e) => {
                let report = unavailable(&app.name, &version, e.to_string());
                self.progress.finish(&report);
                return report;
            }
        };
        self.progress.note(&format!("{} {version}: {}", app.name, describe_source(&release.source)));
        let balancer = Balancer::new(transport, &self.config.environments[self.env]);
        let exec = Executor {
            transport,
            balancer: &balancer,
            http: &self.http,
            progress: &self.progress,
            app: &app.name,
            download_credentials: self.credentials.as_deref(),
        };
        let request = Request {
            config: self.config,
            env: self.env,
            app,
            what: What::Deploy(release),
            options: self.options.clone(),
            owner: self.owner.clone(),
        };
        let report = deploy_app(&exec, request).await;
        self.progress.finish(&report);
        report
    }
}

fn describe_source(source: &kai_core::plan::Source) -> String {
    match source {
        kai_core::plan::Source::Push { local } => format!("artifact verified, pushing {}", local.display()),
        kai_core::plan::Source::Pull { url, .. } => format!("hosts download {url}"),
    }
}

/// A report for an app whose artifact could not be had: nothing was touched.
fn unavailable(app: &str, version: &str, reason: String) -> AppReport {
    AppReport {
        app: app.to_owned(),
        from: "?".into(),
        to: version.to_owned(),
        hosts: Vec::new(),
        result: AppResult::Failed,
        duration: std::time::Duration::ZERO,
        failure: None,
        message: Some(format!("{reason}; nothing was touched")),
    }
}

/// 0 when every app is deployed or up to date, 3 when the only trouble is a lock
/// held by someone else, 1 otherwise.
pub(super) fn exit_code(reports: &[AppReport]) -> u8 {
    if reports.iter().all(|r| r.result.is_ok()) {
        0
    } else if reports.iter().all(|r| r.result.is_ok() || matches!(r.result, AppResult::Locked(_))) {
        3
    } else {
        1
    }
}

/// A protected environment asks on a terminal; without one (and without `--yes`) kai
/// refuses before it touches anything.
pub(super) fn can_ask(env: &str, what: &str, settings: &Settings) -> Result<(), CliError> {
    if settings.stdin_is_terminal {
        return Ok(());
    }
    Err(CliError::usage(
        format!("{env} is protected and there is no terminal to confirm on; nothing was changed"),
        Some(format!("pass --yes to {what} without confirmation")),
    ))
}

/// On a protected environment, the user types its name to go on: `what` is about to
/// happen, as `lines` show.
pub(super) fn ask(env: &str, what: &str, lines: &[String]) -> Result<(), CliError> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{env} is protected. About to {what}:");
    for line in lines {
        let _ = writeln!(err, "  {line}");
    }
    let _ = write!(err, "Type the environment name ({env}) to go on: ");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| CliError::Failed(e.into()))?;
    if answer.trim() == env {
        Ok(())
    } else {
        Err(CliError::usage(format!("confirmation {:?} does not match {env}; nothing was changed", answer.trim()), None))
    }
}

/// What the confirmation shows of one app: the version its hosts run now (read from
/// them, without locking) and the one they get, its active and standby hosts.
pub(super) async fn preview<T: Transport>(
    transport: &T,
    config: &Config,
    env: &str,
    app: &App,
    only: &[String],
    target: impl FnOnce(&BTreeMap<String, HostFacts>) -> String,
) -> Vec<String> {
    let placements = match placements(config, env, app, only) {
        Ok(placements) => placements,
        Err(e) => return vec![format!("{}: {e}", app.name)],
    };
    let places: Vec<Place> = placements.iter().map(Place::from).collect();
    let (current, new) = match probe(transport, &places).await {
        Ok(facts) => (current_versions(&facts), target(&facts)),
        Err(failure) => (format!("? ({} could not be read: {})", failure.host, failure.reason), target(&BTreeMap::new())),
    };
    preview_lines(&app.name, &placements, &current, &new)
}

fn preview_lines(app: &str, placements: &[Placement], current: &str, new: &str) -> Vec<String> {
    let hosts = |role: Role| placements.iter().filter(|p| p.role == role).map(|p| p.host.as_str()).collect::<Vec<_>>().join(", ");
    let mut lines = vec![format!("{app}  {current} -> {new}"), format!("  hosts:   {}", hosts(Role::Active))];
    let standby = hosts(Role::Standby);
    if !standby.is_empty() {
        lines.push(format!("  standby: {standby}"));
    }
    lines
}

/// The versions `current` points to on the hosts: one, several (they differ), or none.
fn current_versions(facts: &BTreeMap<String, HostFacts>) -> String {
    let mut versions: Vec<&str> = facts.values().filter_map(|f| f.current.as_deref()).collect();
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        "(none)".into()
    } else {
        versions.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(host: &str, role: Role) -> Placement {
        Placement { host: host.into(), role, home: "~".into(), user: "hello".into() }
    }

    #[test]
    fn a_preview_shows_the_change_the_hosts_and_the_standby() {
        let placements = [placement("web1", Role::Active), placement("web2", Role::Active), placement("web3", Role::Standby)];
        assert_eq!(
            preview_lines("hello", &placements, "1.0.0", "1.1.0"),
            ["hello  1.0.0 -> 1.1.0", "  hosts:   web1, web2", "  standby: web3"]
        );
        assert_eq!(preview_lines("hello", &placements[..1], "(none)", "1.1.0"), ["hello  (none) -> 1.1.0", "  hosts:   web1"]);
    }

    #[test]
    fn current_versions_are_listed_once_each() {
        let at = |v: Option<&str>| HostFacts { current: v.map(Into::into), ..HostFacts::default() };
        let facts: BTreeMap<String, HostFacts> =
            [("a", at(Some("1.1.0"))), ("b", at(Some("1.0.0"))), ("c", at(Some("1.1.0"))), ("d", at(None))]
                .into_iter()
                .map(|(h, f)| (h.to_owned(), f))
                .collect();
        assert_eq!(current_versions(&facts), "1.0.0, 1.1.0");
        assert_eq!(current_versions(&BTreeMap::new()), "(none)");
    }
}
