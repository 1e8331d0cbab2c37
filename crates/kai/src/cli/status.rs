//! `kai status`: which version runs where; drift, unreachable hosts and failing health.

use std::path::PathBuf;
use std::time::SystemTime;

use futures_util::future::join_all;
use kai_core::config::{App, Config, Environment};
use kai_core::status::{self, HostStatus};

use crate::error::CliError;
use crate::settings::Settings;

/// Show which version runs where. Every host is read at once: the version `current`
/// points to, and for active servers the health check and the version the app reports
/// (when its health answer is a bare version).
///
/// Without arguments: applications × environments. With ENV: applications × its hosts,
/// standby servers marked. With ENV and APP: each host in detail (current, reported
/// version, health, in rotation, lock holder, releases kept).
///
/// Marks: `*` hosts disagree (drift), `?` a host could not be read, `%` the load
/// balancer could not be read (rotation unknown, never guessed), `!` a health check
/// fails, `~` an active server is out of the balancer's rotation, `#` a deploy lock is
/// held (a deploy under way, or one that was interrupted: a lock whose kai process is
/// gone from this machine is called stale), `+` a process runs from a release that is
/// not the current one (left behind; `kai ps` shows which); each is explained below the
/// table.
///
/// Exit status: 0 when nothing is marked, 1 when anything is, 2 for a wrong name.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this environment (a file in environments/).
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
    env: Option<String>,
    /// With ENV: these applications, host by host.
    #[arg(requires = "env", add = clap_complete::ArgValueCandidates::new(crate::complete::apps))]
    apps: Vec<String>,
    /// Print one JSON document: every host of every app, and the problems found.
    #[arg(long)]
    pub(super) json: bool,
}

pub async fn run(config: &Option<PathBuf>, args: StatusArgs, settings: &Settings) -> Result<u8, CliError> {
    let config = crate::config_files::load_config(config, settings)?;
    let targets = targets(&config, &args)?;
    let mut statuses: Vec<HostStatus> =
        join_all(targets.iter().map(|(environment, apps)| crate::fleet::read_env(settings, &config, environment, apps, true)))
            .await
            .concat();
    crate::fleet::judge_locks(&mut statuses, &settings.machine);
    let problems = status::problems(&statuses);
    if args.json {
        let document = crate::json::StatusDoc { hosts: &statuses, problems: &problems };
        crate::output::emit_json(&document)?;
        return Ok(u8::from(!problems.is_empty()));
    }
    match (&args.env, args.apps.as_slice()) {
        (None, _) if statuses.is_empty() => crate::output::emit("no application is deployed to any environment yet\n"),
        (None, _) => crate::output::emit(&status::render_matrix(&statuses, &problems, crate::color::stdout())),
        (Some(env), []) if statuses.is_empty() => {
            crate::output::emit(&format!("no application is deployed to {env} (no apps/*.toml has [env.{env}])\n"));
        }
        (Some(env), []) => crate::output::emit(&status::render_env(env, &statuses, &problems, crate::color::stdout())),
        (Some(env), apps) => {
            let now = SystemTime::now();
            for (i, app) in apps.iter().enumerate() {
                if apps.len() > 1 {
                    crate::output::emit(&format!("{}{app} in {env}:\n", if i > 0 { "\n" } else { "" }));
                }
                crate::output::emit(&status::render_app(env, app, &statuses, &problems, now, crate::color::stdout()));
            }
        }
    }
    Ok(u8::from(!problems.is_empty()))
}

/// The environments to read, each with the apps to read there.
fn targets<'c>(config: &'c Config, args: &StatusArgs) -> Result<Vec<(&'c Environment, Vec<&'c App>)>, CliError> {
    let Some(env) = &args.env else {
        return Ok(config.environments_in_order().map(|e| (e, crate::config_files::apps_in(config, &e.name))).collect());
    };
    let environment = crate::config_files::environment(config, env)?;
    if args.apps.is_empty() {
        return Ok(vec![(environment, crate::config_files::apps_in(config, env))]);
    }
    let apps = args.apps.iter().map(|name| crate::config_files::app_in(config, env, name)).collect::<Result<Vec<_>, _>>()?;
    Ok(vec![(environment, apps)])
}
