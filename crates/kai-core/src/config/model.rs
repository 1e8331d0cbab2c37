//! The validated configuration: what `kai.toml`, `environments/*.toml` and `apps/*.toml`
//! say once every reference has been checked. Everything downstream reads only this.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::maven::Packaging;
use crate::template::Template;

/// A whole configuration repository.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The folder holding `kai.toml` (absolute).
    pub root: PathBuf,
    pub repository: RepositoryConfig,
    pub defaults: Defaults,
    pub notify: Option<NotifyConfig>,
    pub environments: BTreeMap<String, Environment>,
    /// Every environment's name once, in the order kai lists them: the pipeline order
    /// of `environments = [...]` in kai.toml, then the others alphabetically.
    pub environment_order: Vec<String>,
    pub apps: BTreeMap<String, App>,
}

impl Config {
    /// The environments in the order kai lists them ([`Config::environment_order`]).
    pub fn environments_in_order(&self) -> impl Iterator<Item = &Environment> {
        self.environment_order.iter().filter_map(|name| self.environments.get(name))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RepositoryConfig {
    pub location: RepoLocation,
    /// Default Maven groupId for apps that do not set their own.
    pub group: Option<String>,
    /// Names of the environment variables holding the credentials (never the values).
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// The longest one request for a document (metadata, a checksum) may take, whole.
    pub timeout: Duration,
}

/// `[repository] timeout` when not set.
pub const REPOSITORY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoLocation {
    /// A folder laid out as a Maven repository; relative paths are resolved against the
    /// configuration root at load time, so this is absolute.
    Folder(PathBuf),
    /// An `http://` or `https://` base URL, without a trailing slash.
    Http(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub keep_releases: u32,
    pub fetch: FetchMode,
    pub health_timeout: Duration,
    /// The longest an app's start script may run (apps may set their own).
    pub start_timeout: Duration,
    /// The longest an app's stop script may run (apps may set their own).
    pub stop_timeout: Duration,
    /// The longest a host may take to download an artifact (pull).
    pub fetch_timeout: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            keep_releases: 5,
            fetch: FetchMode::Auto,
            health_timeout: Duration::from_secs(60),
            start_timeout: Duration::from_secs(120),
            stop_timeout: Duration::from_secs(120),
            fetch_timeout: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchMode {
    /// `pull` for http(s) repositories, `push` otherwise.
    Auto,
    /// Servers download from the repository themselves.
    Pull,
    /// kai downloads once and uploads to every server.
    Push,
}

/// `[notify]`, kept as data until the notification issue builds on it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NotifyConfig {
    pub email: Option<EmailNotify>,
    pub webhook: Option<WebhookNotify>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmailNotify {
    pub smtp: String,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    Starttls,
    Implicit,
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookNotify {
    pub url_env: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    Ssh,
    Local,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    pub name: String,
    pub protected: bool,
    /// Whether a protected environment takes builds pushed from someone's machine
    /// (`kai deploy <env> ./app.zip`); unprotected ones always do.
    pub allow_local: bool,
    pub transport: TransportKind,
    /// Resolved against the configuration root (absolute).
    pub ssh_config: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// How long an SSH connection stays open after the run that opened it, for the
    /// next kai run to reuse (0: closed with the run).
    pub ssh_persist: Duration,
    pub rollout: RolloutPolicy,
    pub on_failure: OnFailure,
    /// `[canary]`: the first servers judged before the others follow.
    pub canary: Option<Canary>,
    pub hosts: BTreeMap<String, Host>,
    pub balancer: Balancer,
    pub notify: Option<NotifyConfig>,
    /// The values of the secrets this run needs (`{secret:NAME}` in its apps'
    /// properties): none when loaded; filled from the environment's secret source
    /// before anything is planned.
    pub secrets: crate::template::Secrets,
    /// Where those values come from.
    pub secret_source: SecretSource,
}

/// Where an environment's secrets come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SecretSource {
    /// `secrets/<env>.age` in the configuration repository, decrypted with the user's
    /// identity.
    #[default]
    File,
    /// `[secrets] command`: run on this machine once per secret, `{env}` and `{name}`
    /// replaced in its words; the value is its standard output.
    Command { argv: Vec<String>, timeout: Duration },
}

/// How long a `[secrets] command` may take for one secret, unless `timeout` says.
pub const SECRET_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// `[canary]`: how many servers go first, and how they are judged once back in
/// rotation: by HAProxy's counters against the other servers, or by `judge_command`.
#[derive(Clone, Debug, PartialEq)]
pub struct Canary {
    pub hosts: Batch,
    pub policy: crate::canary::Policy,
    /// Run on this machine (words are templates); exit 0 means good. Empty: HAProxy judges.
    pub judge_command: Vec<Template>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    /// Account kai logs in as; when unset kai logs in as the app's `user`.
    pub login: Option<String>,
    /// Prefix for every path kai touches on this host. For local hosts the default is
    /// `<config root>/.kai/hosts/<host>` (filled in at load time, absolute).
    pub root: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RolloutPolicy {
    pub batch: Batch,
    pub canary: bool,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy { batch: Batch::Count(1), canary: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    Count(u32),
    Percent(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnFailure {
    #[default]
    Rollback,
    Halt,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Balancer {
    pub kind: BalancerKind,
    pub proxies: Vec<String>,
    pub admin: Option<String>,
    pub backend: Template,
    pub server: Template,
    pub drain_wait: Duration,
    pub settle: Duration,
    /// haproxy: longest wait for a server's sessions to end, for a fresh check, and
    /// for the other servers to be back in rotation.
    pub drain_timeout: Duration,
    /// command: run on every proxy (or, without proxies, on the app host); words are
    /// templates.
    pub drain_command: Vec<Template>,
    pub undrain_command: Vec<Template>,
    /// httpd: the balancer-manager page of each proxy; `{host}` and `{address}` are the
    /// proxy's.
    pub manager: Option<Template>,
    /// httpd: the worker URL of an app host, as the balancer lists it.
    pub worker: Option<Template>,
    /// httpd: the variables holding the balancer-manager's basic-auth login.
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// httpd: run on every proxy, one after the other, before a server goes back into
    /// rotation (`apachectl -k graceful`); words are templates. Empty: no reload.
    pub reload: Vec<Template>,
}

impl Default for Balancer {
    fn default() -> Self {
        Balancer {
            kind: BalancerKind::None,
            proxies: Vec::new(),
            admin: None,
            backend: Template::parse("{app}").expect("valid template"),
            server: Template::parse("{host}").expect("valid template"),
            drain_wait: Duration::from_secs(2),
            settle: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(60),
            drain_command: Vec::new(),
            undrain_command: Vec::new(),
            manager: None,
            worker: None,
            username_env: None,
            password_env: None,
            reload: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalancerKind {
    Haproxy,
    /// Apache httpd's mod_proxy_balancer, through its balancer-manager page.
    Httpd,
    HealthFile,
    Command,
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub name: String,
    /// Maven groupId: the app's own `group`, else the repository's.
    pub group: String,
    pub artifact: String,
    pub classifier: Option<String>,
    pub packaging: Packaging,
    pub user: String,
    /// `~` (the user's home) or an absolute path.
    pub home: String,
    /// Argument vectors, split from the configured command line at load time.
    pub start: Vec<String>,
    pub stop: Vec<String>,
    /// The longest `start` may run before it is stopped and the start has failed.
    pub start_timeout: Duration,
    /// The longest `stop` may run before it is killed and the stop has failed.
    pub stop_timeout: Duration,
    pub properties_file: Option<String>,
    /// In the order the file lists them.
    pub properties: Vec<(String, Template)>,
    pub health: Health,
    pub rollout: Option<RolloutPolicy>,
    pub on_failure: Option<OnFailure>,
    /// The app's own `[canary]`, in place of its environments'.
    pub canary: Option<Canary>,
    pub envs: BTreeMap<String, AppEnv>,
}

impl App {
    /// The property keys whose value in `env` holds a `{secret:NAME}`: their values are
    /// secrets wherever they are shown or compared, whatever the key's name.
    pub fn secret_keys(&self, env: &str) -> std::collections::BTreeSet<String> {
        let overrides = self.envs.get(env).map(|e| e.properties.as_slice()).unwrap_or_default();
        let effective = |key: &str, base: &Template| overrides.iter().find(|(k, _)| k == key).map_or(base, |(_, t)| t).clone();
        let mut keys: std::collections::BTreeSet<String> =
            self.properties.iter().filter(|(k, t)| effective(k, t).secret_names().next().is_some()).map(|(k, _)| k.clone()).collect();
        keys.extend(overrides.iter().filter(|(_, t)| t.secret_names().next().is_some()).map(|(k, _)| k.clone()));
        keys
    }

    /// The names of the secrets the app's properties use in `env`.
    pub fn secret_names(&self, env: &str) -> std::collections::BTreeSet<String> {
        let overrides = self.envs.get(env).map(|e| e.properties.as_slice()).unwrap_or_default();
        let base = self.properties.iter().filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        base.chain(overrides).flat_map(|(_, t)| t.secret_names().map(str::to_owned).collect::<Vec<_>>()).collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppEnv {
    pub servers: Vec<String>,
    pub standby: Vec<String>,
    /// Overrides merged over the app's `[properties]` for this environment: a key
    /// the app has keeps its place, a new one comes last.
    pub properties: Vec<(String, Template)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub check: HealthCheck,
    pub timeout: Duration,
    /// After the first pass, the check must keep passing this long before the server
    /// counts as healthy (a process that dies a second after start is caught).
    pub stable: Duration,
}

/// `[health] stable` when not set.
pub const DEFAULT_STABLE: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, PartialEq)]
pub enum HealthCheck {
    /// Polled from the control machine until it answers 2xx.
    Http { url: Template },
    /// Run in `<home>/current` until it exits 0.
    Command { argv: Vec<String> },
    /// No `[health]` section: the start command's exit status is the check.
    None,
}

/// What is valid but probably not meant: said by `kai check` and at each deploy.
pub fn warnings(config: &Config) -> Vec<String> {
    let unchecked: Vec<&str> =
        config.apps.values().filter(|app| app.health.check == HealthCheck::None).map(|app| app.name.as_str()).collect();
    if unchecked.len() <= 3 {
        return unchecked.into_iter().map(no_health_check).collect();
    }
    // Many: one line, not one per app (an estate of 120 apps would bury the rest).
    let (named, more) = unchecked.split_at(5.min(unchecked.len()));
    let more = if more.is_empty() { String::new() } else { format!(" and {} more", more.len()) };
    vec![format!(
        "{} apps have no [health] check ({}{more}): kai only knows that their start script exited 0, not that they answer, \
         before it takes the next server out of rotation; add `[health] http = \"http://{{address}}:PORT/ready\"` (or `command = ...`)",
        unchecked.len(),
        named.join(", ")
    )]
}

/// The warning for an app without `[health]`.
pub fn no_health_check(app: &str) -> String {
    format!(
        "apps/{app}.toml has no [health] check: kai only knows that its start script exited 0, not that {app} answers, \
         before it takes the next server out of rotation; add `[health] http = \"http://{{address}}:PORT/ready\"` (or `command = ...`)"
    )
}

/// `ssh_persist` when an environment does not say: long enough for the next command
/// of someone at work (`kai status`, then `kai deploy`), short enough that nobody
/// finds a forgotten connection.
pub const SSH_PERSIST: Duration = Duration::from_secs(60);
