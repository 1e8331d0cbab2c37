//! Where an app lives in an environment: its hosts and their roles, its home on each,
//! the account kai logs in as and how it enters the home. What the planner, the
//! balancer rotation and the binary all start from.

use serde::{Deserialize, Serialize};

use crate::config::{App, Config, Environment, Host, TransportKind};
use crate::shell::session::Access;
use crate::template::Vars;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Active,
    Standby,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("{app} is not deployed to {env}: apps/{app}.toml has no [env.{env}] section")]
    NotInEnvironment { app: String, env: String },
    #[error("no host of {app} in {env} matches --only")]
    NoHostSelected { app: String, env: String },
}

/// The app home on `host`, as the transport `cd`s into it: `~user` (the user's home)
/// or an absolute path, under the host's `root` prefix when it has one.
pub fn app_home(host: &Host, app: &App) -> String {
    let root = host.root.as_deref().unwrap_or("").trim_end_matches('/');
    match app.home.as_str() {
        "~" if root.is_empty() => format!("~{}", app.user),
        "~" => format!("{root}/home/{}", app.user),
        path => format!("{root}{path}"),
    }
}

/// A host of the app in an environment, before anything is known about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub host: String,
    pub role: Role,
    pub home: String,
    /// The Unix account that owns and runs the app there.
    pub user: String,
    /// The account kai logs in as (SSH): the host's `login`, else the app's user.
    pub login: String,
    pub access: Access,
}

/// How kai enters `host` for `app`: into the app home, through `sudo -n -u <user>`
/// when it logs in (over SSH) as another account.
pub fn access(environment: &Environment, host: &Host, app: &App) -> Access {
    let login = host.login.as_deref().unwrap_or(&app.user);
    let sudo = (environment.transport == TransportKind::Ssh && login != app.user).then(|| app.user.clone());
    Access { home: Some(app_home(host, app)), sudo }
}

/// The hosts of `app` in `env` (active first, then standby), restricted to `only`
/// unless it is empty.
pub fn placements(config: &Config, env: &str, app: &App, only: &[String]) -> Result<Vec<Placement>, PlacementError> {
    let environment = &config.environments[env];
    let placement = app.envs.get(env).ok_or_else(|| PlacementError::NotInEnvironment { app: app.name.clone(), env: env.into() })?;
    let roles = placement.servers.iter().map(|h| (h, Role::Active)).chain(placement.standby.iter().map(|h| (h, Role::Standby)));
    let selected: Vec<Placement> = roles
        .filter(|(host, _)| only.is_empty() || only.contains(host))
        .map(|(host, role)| {
            let h = &environment.hosts[host];
            Placement {
                host: host.clone(),
                role,
                home: app_home(h, app),
                user: app.user.clone(),
                login: h.login.clone().unwrap_or_else(|| app.user.clone()),
                access: access(environment, h, app),
            }
        })
        .collect();
    if selected.is_empty() {
        return Err(PlacementError::NoHostSelected { app: app.name.clone(), env: env.into() });
    }
    Ok(selected)
}

/// What `{placeholders}` stand for on `host` (a host of `environment`).
pub(crate) fn host_vars<'a>(environment: &'a Environment, app: &'a App, host: &'a str, version: &'a str, home: &'a str) -> Vars<'a> {
    Vars {
        app: &app.name,
        env: &environment.name,
        host,
        address: &environment.hosts[host].address,
        version,
        home,
        secrets: Some(&environment.secrets),
    }
}
