//! `kai deploy`: stage, switch, verify; or apply a saved plan.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use kai_core::config::{App, Config};
use kai_core::facts::HostFacts;
use kai_core::plan::{placements, Options, Placement, Role};
use kai_core::saved::SavedPlan;

use super::globals::Globals;
use super::plan::{LocalArgs, PlanArgs};
use crate::error::CliError;
use crate::json::RunDoc;
use crate::progress::Progress;
use crate::report::{summary, AppReport, AppResult};
use crate::resolve;
use crate::runner::{self, run_id, Runner, SyncWish, Work};
use crate::settings::Settings;
use crate::transport::{EnvTransport, Place, Transport};

/// Deploy applications to an environment: stage on every host at once, then switch
/// the active servers one at a time (stop, switch, start, health check); standby
/// servers get the release but stay disabled and stopped. A failure puts that
/// application back as it was; the others carry on.
///
/// With --plan FILE (made by `kai plan --out FILE`), makes the plan again from the
/// configuration, the hosts and the artifact as they are, and runs it only when it is
/// the plan in FILE, step for step; otherwise refuses (exit 2, nothing changed), naming
/// what changed since (a host, the configuration, the artifact) or the first step of
/// the file that differs. The file itself never decides what runs.
///
/// A local build: `kai deploy test ./target/hello-1.4.0.tar.gz` pushes that file (its
/// sha256 computed here, checked on every host) and installs it like any release, as
/// `1.4.0+local.<first 8 hex digits of its sha256>`, so it is never mistaken for the
/// repository's 1.4.0. The app is the one whose artifact name the file name matches
/// (or --app), the version is read from the file name (or --version). History, status
/// and notices show it as a local build with its sha256 and who deployed it from where.
/// A protected environment refuses local builds unless it sets `allow_local = true`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The environment (a file in environments/).
    #[arg(required_unless_present = "plan", add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    pub env: Option<String>,
    /// Applications: `<app>` (its newest release), `<app>-<version>` or `<app>@<version>`;
    /// or a local build: a path to an artifact file (with a `/`, or an existing file
    /// ending in .zip, .jar or .tar.gz).
    #[arg(required_unless_present = "plan", value_name = "APP[-VERSION]", add = clap_complete::ArgValueCompleter::new(crate::complete::apps_and_versions))]
    pub apps: Vec<String>,
    /// Print the plan (as `kai plan` does) and run nothing.
    #[arg(long, conflicts_with = "plan")]
    pub dry_run: bool,
    /// With --dry-run: every command, per host, in order, exactly as kai sends it.
    #[arg(long, requires = "dry_run")]
    pub commands: bool,
    /// Apply the plan saved in FILE by `kai plan --out FILE` (made again and compared).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation on protected environments.
    #[arg(long)]
    pub yes: bool,
    /// Applications deployed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Only these hosts (comma-separated or repeated).
    #[arg(long, value_name = "HOST", value_delimiter = ',', conflicts_with = "plan", add = clap_complete::ArgValueCandidates::new(crate::complete::hosts))]
    pub only: Vec<String>,
    /// Redeploy even where the version already runs.
    #[arg(long, conflicts_with = "plan")]
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
    #[command(flatten)]
    pub local: LocalArgs,
}

pub async fn run(globals: &Globals, args: DeployArgs, settings: &Settings) -> Result<u8, CliError> {
    if let Some(file) = args.plan.clone() {
        return apply(globals, args, settings, &file).await;
    }
    let env = args.env.clone().unwrap_or_default();
    if args.dry_run {
        let plan = PlanArgs {
            env,
            apps: args.apps,
            from: None,
            local: args.local,
            only: args.only,
            force: args.force,
            no_sync: args.no_sync,
            allow_dirty: args.allow_dirty,
            commands: args.commands,
            out: None,
        };
        return super::plan::run(globals, plan, settings).await;
    }
    let prepared =
        runner::prepare(&globals.config, settings, &env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    let config = &prepared.config;
    let environment = &config.environments[&env];
    crate::config_files::check_only(environment, &args.only)?;
    let (locals, named) = resolve::locals(config, &env, &args.apps, &args.local.wish(), settings).await?;
    let wanted = resolve::parse_apps(config, &env, &named)?;
    let repo = resolve::repository(config, settings)?;
    let mut work: Vec<Work> = locals.into_iter().map(|(app, release)| Work::Release { app, release: Box::new(release) }).collect();
    for (app, wanted) in &wanted {
        work.push(Work::Deploy { app, version: resolve::resolve_version(&repo, config, app, wanted).await? });
    }
    let progress = Progress::with_look(&env, globals.look);
    let mut runner =
        Runner::new(&prepared, &env, &repo, settings, &progress, Options { run_id: run_id(), force: args.force, only: args.only.clone() });
    runner.jobs = usize::from(args.jobs);
    let transport = EnvTransport::open(environment, settings);
    let confirm = environment.protected && !args.yes;
    let reports = async {
        if confirm {
            can_ask(&env, "deploy", settings)?;
            let previews = work.iter().map(|w| {
                let (app, version) = match w {
                    Work::Release { app, release } => (*app, release.version.clone()),
                    Work::Deploy { app, version } => (*app, version.clone()),
                    _ => unreachable!("deploy work"),
                };
                preview(&transport, config, &env, app, &args.only, |_: &BTreeMap<String, HostFacts>| version)
            });
            let lines: Vec<String> = futures_util::future::join_all(previews).await.into_iter().flatten().collect();
            ask(&env, "deploy", &lines)?;
        }
        Ok::<_, CliError>(runner.deploy(&transport, work).await)
    }
    .await;
    transport.close().await;
    let reports = reports?;
    let code = exit_code(&reports);
    print_outcome(globals, "deploy", &env, &reports, code)?;
    crate::notify::after_run(config, "deploy", &env, settings, &reports).await;
    Ok(code)
}

/// `kai deploy --plan FILE`: the saved plan, as it is, or refused.
async fn apply(globals: &Globals, args: DeployArgs, settings: &Settings, file: &std::path::Path) -> Result<u8, CliError> {
    let saved = read_saved(file)?;
    if let Some(env) = args.env.as_deref().filter(|e| *e != saved.env) {
        return Err(CliError::usage(
            format!("{} is a plan for {}, not {env}", file.display(), saved.env),
            Some(format!("kai deploy --plan {}", file.display())),
        ));
    }
    let env = saved.env.clone();
    let prepared =
        runner::prepare(&globals.config, settings, &env, SyncWish { no_sync: args.no_sync, allow_dirty: args.allow_dirty }).await?;
    if prepared.fingerprint != saved.config {
        let commits = match (&saved.commit, &prepared.commit) {
            (Some(then), Some(now)) if then != now => format!(" (commit {then} then, {now} now)"),
            _ => String::new(),
        };
        return Err(CliError::usage(
            format!("the configuration changed since {} was made{commits}; nothing was deployed", file.display()),
            Some(format!(
                "make the plan again: kai plan {env} {} --out {}",
                saved.apps.iter().map(|a| a.app.as_str()).collect::<Vec<_>>().join(" "),
                file.display()
            )),
        ));
    }
    let config = &prepared.config;
    let environment = &config.environments[&env];
    let mut work = Vec::new();
    for saved_app in &saved.apps {
        let app = crate::config_files::application(config, &saved_app.app)?;
        work.push(Work::Saved { app, saved: Box::new(saved_app.clone()) });
    }
    let repo = resolve::repository(config, settings)?;
    let progress = Progress::with_look(&env, globals.look);
    let mut runner = Runner::new(&prepared, &env, &repo, settings, &progress, saved.options(run_id()));
    runner.jobs = usize::from(args.jobs);
    if environment.protected && !args.yes {
        can_ask(&env, "apply this plan", settings)?;
        let lines: Vec<String> = saved
            .apps
            .iter()
            .map(|a| {
                format!(
                    "{}  {} -> {} (plan made {} by {})",
                    a.app,
                    kai_core::deploy::from_versions(&a.plan),
                    a.plan.version,
                    saved.made,
                    saved.by
                )
            })
            .collect();
        ask(&env, "apply this plan", &lines)?;
    }
    let transport = EnvTransport::open(environment, settings);
    let reports = runner.deploy(&transport, work).await;
    transport.close().await;
    let code = exit_code(&reports);
    print_outcome(globals, "deploy", &env, &reports, code)?;
    crate::notify::after_run(config, "deploy", &env, settings, &reports).await;
    Ok(code)
}

/// A saved plan, or a usage error saying why the file is not one.
fn read_saved(file: &std::path::Path) -> Result<SavedPlan, CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::usage(format!("{}: {e}", file.display()), None))?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        CliError::usage(
            format!("{}: not a plan kai saved ({e})", file.display()),
            Some("make one with `kai plan <env> <app>... --out FILE`".into()),
        )
    })?;
    if saved.kai_plan != kai_core::saved::FORMAT {
        return Err(CliError::usage(
            format!("{}: a plan of format {}, this kai reads format {}", file.display(), saved.kai_plan, kai_core::saved::FORMAT),
            None,
        ));
    }
    Ok(saved)
}

/// The summary for people, and with `--json` the document for programs: then the
/// summary goes to standard error and the document alone to standard output.
pub(super) fn print_outcome(globals: &Globals, command: &'static str, env: &str, reports: &[AppReport], code: u8) -> Result<(), CliError> {
    if globals.json {
        crate::terminal::write_stderr(&summary(env, reports));
        super::survey::emit_json(&RunDoc::new(command, env, reports, code))
    } else {
        super::survey::emit(&summary(env, reports));
        Ok(())
    }
}

/// 128 + the signal when a stop was asked for; else 0 when every app is deployed or up
/// to date; 1 when one failed; else 2 when a saved plan was refused; else 3 when the
/// only trouble is a lock held by someone else.
pub(super) fn exit_code(reports: &[AppReport]) -> u8 {
    let fine = |r: &AppReport| r.result.is_ok();
    if crate::interrupt::requested() {
        crate::interrupt::exit_code()
    } else if reports.iter().all(fine) {
        0
    } else if reports.iter().any(|r| !fine(r) && !matches!(r.result, AppResult::Locked(_) | AppResult::Refused | AppResult::Interrupted)) {
        1
    } else if reports.iter().any(|r| r.result == AppResult::Refused) {
        2
    } else if reports.iter().any(|r| matches!(r.result, AppResult::Locked(_))) {
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
    let mut facts = BTreeMap::new();
    let mut unread = None;
    for (place, read) in places.iter().zip(crate::fleet::probe(transport, app, &places).await) {
        match read {
            Ok(found) => {
                facts.insert(place.host.clone(), found);
            }
            Err(failure) => unread = unread.or(Some(failure)),
        }
    }
    let (current, new) = match unread {
        None => (current_versions(&facts), target(&facts)),
        Some(failure) => (format!("? ({} could not be read: {})", failure.host, failure.reason), target(&BTreeMap::new())),
    };
    preview_lines(&app.name, &placements, &current, &new, true)
}

/// `downgrades`: whether a version lower than the hosts' is pointed out (a deploy's
/// preview; a rollback goes lower on purpose).
pub(super) fn preview_lines(app: &str, placements: &[Placement], current: &str, new: &str, downgrades: bool) -> Vec<String> {
    let hosts = |role: Role| placements.iter().filter(|p| p.role == role).map(|p| p.host.as_str()).collect::<Vec<_>>().join(", ");
    // A version lower than one the hosts run, in Maven order: rarely meant, so said.
    let lower = |v: &str| {
        let v = v.trim();
        v.starts_with(|c: char| c.is_ascii_digit())
            && kai_core::version::MavenVersion::parse(new) < kai_core::version::MavenVersion::parse(v)
    };
    let downgrade = if downgrades && current.split(", ").any(lower) { "  (a DOWNGRADE)" } else { "" };
    let mut lines = vec![format!("{app}  {current} -> {new}{downgrade}"), format!("  hosts:   {}", hosts(Role::Active))];
    let standby = hosts(Role::Standby);
    if !standby.is_empty() {
        lines.push(format!("  standby: {standby}"));
    }
    lines
}

/// The versions `current` points to on the hosts: one, several (they differ), or none.
pub(super) fn current_versions(facts: &BTreeMap<String, HostFacts>) -> String {
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
        let access = kai_core::session::Access { home: Some("~hello".into()), sudo: None };
        Placement { host: host.into(), role, home: "~".into(), user: "hello".into(), login: "hello".into(), access }
    }

    #[test]
    fn a_preview_shows_the_change_the_hosts_and_the_standby() {
        let placements = [placement("web1", Role::Active), placement("web2", Role::Active), placement("web3", Role::Standby)];
        assert_eq!(
            preview_lines("hello", &placements, "1.0.0", "1.1.0", true),
            ["hello  1.0.0 -> 1.1.0", "  hosts:   web1, web2", "  standby: web3"]
        );
        assert_eq!(preview_lines("hello", &placements[..1], "(none)", "1.1.0", true), ["hello  (none) -> 1.1.0", "  hosts:   web1"]);
        assert_eq!(
            preview_lines("hello", &placements[..1], "1.10.0, 1.2.0", "1.9.0", true)[0],
            "hello  1.10.0, 1.2.0 -> 1.9.0  (a DOWNGRADE)"
        );
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
