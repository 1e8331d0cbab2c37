//! Loading a configuration repository: the valid example of docs/configuration.md, and every kind of
//! mistake reported with its file, line and key.

use super::*;

const KAI: &str = r#"[repository]
url = "https://artifactory.example.org/artifactory/libs-release-local/"
group = "org.example.services"
username_env = "KAI_REPO_USER"
password_env = "KAI_REPO_PASSWORD"

[defaults]
keep_releases = 5
fetch = "auto"
health_timeout = "60s"

[notify]
email = { smtp = "smtp.example.org:587", tls = "starttls", from = "kai@example.org", to = ["ops@example.org"], username_env = "KAI_SMTP_USER", password_env = "KAI_SMTP_PASSWORD" }
webhook = { url_env = "KAI_WEBHOOK_URL" }
"#;

const PROD: &str = r#"protected = true
transport = "ssh"
ssh_config = "ssh/config"
known_hosts = "ssh/known_hosts"
rollout = { batch = 1, canary = true }
on_failure = "rollback"

[hosts]
app01 = "app01.prod.example.org"
app02 = { address = "10.1.0.12", port = 22, login = "deploy" }
app03 = "app03.prod.example.org"
lb01  = "lb01.prod.example.org"

[balancer]
kind = "haproxy"
proxies = ["lb01"]
admin = "unix:/run/haproxy/admin.sock"
backend = "{app}"
server = "{host}"
drain_wait = "2s"
settle = "2s"
"#;

const DEV: &str = r#"transport = "local"
rollout = { batch = "50%" }
on_failure = "halt"

[hosts]
dev01 = "localhost"
dev02 = { address = "localhost", root = "hosts/two" }

[notify]
webhook = { url_env = "KAI_DEV_WEBHOOK" }
"#;

const JMSADMIN: &str = r#"artifact = "jmsadmin-assembly"
classifier = "standalone"
packaging = "zip"
user = "jmsadmin"
home = "~"
start = "bin/start.sh"
stop = "bin/stop.sh --now 'after all'"
properties_file = "config/app.properties"

[properties]
"jmx.port" = 30
"jvm.xmx" = "128m"
"node" = "{host}-{env}"

[health]
http = "http://{address}:8080/ready"
timeout = "90s"

[env.prod]
servers = ["app01", "app02"]
standby = ["app03"]
[env.prod.properties]
"jvm.xmx" = "512m"
"#;

const TELENOR: &str = r#"group = "org.example.mobile"
packaging = "tar.gz"
user = "telenor"
home = "/srv/telenor"
start = "bin/start.sh"
stop = "bin/stop.sh"
rollout = { batch = 2 }
on_failure = "halt"

[health]
command = "bin/status.sh --quiet"

[env.dev]
servers = ["dev01", "dev02"]
"#;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile { path: PathBuf::from(path), text: text.to_owned() }
}

/// A repository rooted at `/cfg`: the valid example with `changes` swapped in by path.
fn repo(changes: &[(&str, &str)]) -> ConfigSources {
    let mut files = vec![
        ("kai.toml", KAI),
        ("environments/dev.toml", DEV),
        ("environments/prod.toml", PROD),
        ("apps/jmsadmin.toml", JMSADMIN),
        ("apps/telenormobil.toml", TELENOR),
    ];
    for &(path, text) in changes {
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some(entry) => entry.1 = text,
            None => files.push((path, text)),
        }
    }
    let pick = |prefix: &str| -> Vec<SourceFile> { files.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(p, t)| file(p, t)).collect() };
    ConfigSources {
        root: PathBuf::from("/cfg"),
        kai_toml: file("kai.toml", files[0].1),
        environments: pick("environments/"),
        apps: pick("apps/"),
    }
}

fn errors(changes: &[(&str, &str)]) -> Vec<ConfigError> {
    match load(&repo(changes)) {
        Ok(_) => panic!("expected errors for {changes:?}"),
        Err(ConfigErrors(errors)) => errors,
    }
}

/// The only error of a load; panics with all of them otherwise.
fn only_error(changes: &[(&str, &str)]) -> ConfigError {
    let mut all = errors(changes);
    assert_eq!(all.len(), 1, "{}", ConfigErrors(all.clone()));
    all.remove(0)
}

fn where_(error: &ConfigError) -> (String, Option<usize>, Option<&str>) {
    (error.file.display().to_string(), error.line, error.key.as_deref())
}

fn template(source: &str) -> Template {
    Template::parse(source).expect("valid template")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn loaded() -> Config {
    match load(&repo(&[])) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    }
}

// --- the valid example ---------------------------------------------------------------

#[test]
fn kai_toml_loads_repository_defaults_and_notify() {
    let config = loaded();
    assert_eq!(config.root, PathBuf::from("/cfg"));
    assert_eq!(
        config.repository,
        RepositoryConfig {
            location: RepoLocation::Http("https://artifactory.example.org/artifactory/libs-release-local".into()),
            group: Some("org.example.services".into()),
            username_env: Some("KAI_REPO_USER".into()),
            password_env: Some("KAI_REPO_PASSWORD".into()),
            timeout: REPOSITORY_TIMEOUT,
        }
    );
    assert_eq!(config.defaults, Defaults::default());
    let email = EmailNotify {
        smtp: "smtp.example.org:587".into(),
        tls: SmtpTls::Starttls,
        from: "kai@example.org".into(),
        to: strings(&["ops@example.org"]),
        username_env: Some("KAI_SMTP_USER".into()),
        password_env: Some("KAI_SMTP_PASSWORD".into()),
    };
    let webhook = WebhookNotify { url_env: "KAI_WEBHOOK_URL".into() };
    assert_eq!(config.notify, Some(NotifyConfig { email: Some(email), webhook: Some(webhook) }));
}

#[test]
fn environments_are_listed_in_pipeline_order_then_alphabetically() {
    assert_eq!(loaded().environment_order, strings(&["dev", "prod"]), "no list: alphabetical");
    let qa = "transport = \"local\"\n[hosts]\nqa01 = \"localhost\"\n";
    let kai = format!("environments = [\"prod\", \"dev\"]\n{KAI}");
    let config = load(&repo(&[("kai.toml", &kai), ("environments/qa.toml", qa)])).unwrap();
    assert_eq!(config.environment_order, strings(&["prod", "dev", "qa"]));
    let names: Vec<&str> = config.environments_in_order().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["prod", "dev", "qa"]);
}

#[test]
fn an_environment_listed_without_its_file_or_twice_is_an_error_at_its_line() {
    let kai = format!("environments = [\"dev\",\n  \"prd\"]\n{KAI}");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(where_(&error), ("kai.toml".into(), Some(2), Some("environments")));
    assert!(error.message.contains("unknown environment \"prd\""), "{error}");
    assert_eq!(error.hint.as_deref(), Some("did you mean \"prod\"?"));
    let twice = format!("environments = [\"dev\", \"dev\"]\n{KAI}");
    let error = only_error(&[("kai.toml", &twice)]);
    assert!(error.message.contains("\"dev\" is listed twice"), "{error}");
    let wrong = format!("environments = \"dev\"\n{KAI}");
    assert_eq!(where_(&only_error(&[("kai.toml", &wrong)])).2, Some("environments"), "a string, not a list");
}

#[test]
fn ssh_environment_loads_hosts_rollout_and_balancer() {
    let config = loaded();
    let host = |name: &str, address: &str| Host { name: name.into(), address: address.into(), port: None, login: None, root: None };
    let mut hosts = BTreeMap::new();
    hosts.insert("app01".to_owned(), host("app01", "app01.prod.example.org"));
    hosts.insert("app02".to_owned(), Host { port: Some(22), login: Some("deploy".into()), ..host("app02", "10.1.0.12") });
    hosts.insert("app03".to_owned(), host("app03", "app03.prod.example.org"));
    hosts.insert("lb01".to_owned(), host("lb01", "lb01.prod.example.org"));
    let expected = Environment {
        secrets: Default::default(),
        secret_source: Default::default(),
        name: "prod".into(),
        protected: true,
        allow_local: false,
        transport: TransportKind::Ssh,
        ssh_config: Some(PathBuf::from("/cfg/ssh/config")),
        known_hosts: Some(PathBuf::from("/cfg/ssh/known_hosts")),
        ssh_persist: Duration::from_secs(60),
        rollout: RolloutPolicy { batch: Batch::Count(1), canary: true },
        on_failure: OnFailure::Rollback,
        canary: None,
        hosts,
        balancer: Balancer {
            kind: BalancerKind::Haproxy,
            proxies: strings(&["lb01"]),
            admin: Some("unix:/run/haproxy/admin.sock".into()),
            ..Balancer::default()
        },
        notify: None,
    };
    assert_eq!(config.environments["prod"], expected);
}

#[test]
fn local_environment_puts_hosts_under_the_config_root() {
    let dev = &loaded().environments["dev"];
    assert_eq!(dev.transport, TransportKind::Local);
    assert!(!dev.protected);
    assert_eq!(dev.rollout, RolloutPolicy { batch: Batch::Percent(50), canary: false });
    assert_eq!(dev.on_failure, OnFailure::Halt);
    assert_eq!(dev.hosts["dev01"].root.as_deref(), Some("/cfg/.kai/hosts/dev01"));
    assert_eq!(dev.hosts["dev02"].root.as_deref(), Some("/cfg/hosts/two"));
    assert_eq!(dev.balancer, Balancer::default());
    let webhook = WebhookNotify { url_env: "KAI_DEV_WEBHOOK".into() };
    assert_eq!(dev.notify, Some(NotifyConfig { email: None, webhook: Some(webhook) }));
}

#[test]
fn app_loads_artifact_runtime_health_and_placement() {
    let config = loaded();
    let properties = vec![
        ("jmx.port".to_owned(), Template::literal("30")),
        ("jvm.xmx".to_owned(), template("128m")),
        ("node".to_owned(), template("{host}-{env}")),
    ];
    let prod_properties = vec![("jvm.xmx".to_owned(), template("512m"))];
    let mut envs = BTreeMap::new();
    envs.insert(
        "prod".to_owned(),
        AppEnv { servers: strings(&["app01", "app02"]), standby: strings(&["app03"]), properties: prod_properties },
    );
    let expected = App {
        name: "jmsadmin".into(),
        group: "org.example.services".into(),
        artifact: "jmsadmin-assembly".into(),
        classifier: Some("standalone".into()),
        packaging: Packaging::Zip,
        user: "jmsadmin".into(),
        home: "~".into(),
        start: strings(&["bin/start.sh"]),
        stop: strings(&["bin/stop.sh", "--now", "after all"]),
        start_timeout: Duration::from_secs(120),
        stop_timeout: Duration::from_secs(120),
        properties_file: Some("config/app.properties".into()),
        properties,
        health: Health {
            check: HealthCheck::Http { url: template("http://{address}:8080/ready") },
            timeout: Duration::from_secs(90),
            stable: DEFAULT_STABLE,
        },
        rollout: None,
        on_failure: None,
        canary: None,
        envs,
    };
    assert_eq!(config.apps["jmsadmin"], expected);
}

#[test]
fn app_defaults_and_own_settings() {
    let app = &loaded().apps["telenormobil"];
    assert_eq!(app.group, "org.example.mobile");
    assert_eq!(app.artifact, "telenormobil");
    assert_eq!(app.classifier, None);
    assert_eq!(app.packaging, Packaging::TarGz);
    assert_eq!(app.home, "/srv/telenor");
    assert_eq!(app.properties_file, None);
    assert_eq!(
        app.health,
        Health {
            check: HealthCheck::Command { argv: strings(&["bin/status.sh", "--quiet"]) },
            timeout: Duration::from_secs(60),
            stable: DEFAULT_STABLE
        }
    );
    assert_eq!(app.rollout, Some(RolloutPolicy { batch: Batch::Count(2), canary: false }));
    assert_eq!(app.on_failure, Some(OnFailure::Halt));
    assert_eq!(app.envs["dev"].standby, Vec::<String>::new());
}

#[test]
fn minimal_files_take_every_default() {
    let kai = "[repository]\nurl = \"maven-repo\"\n";
    let app = "group = \"g\"\nuser = \"u\"\nstart = \"s\"\nstop = \"t\"\n";
    let sources = ConfigSources {
        root: PathBuf::from("/cfg"),
        kai_toml: file("kai.toml", kai),
        environments: vec![file("environments/test.toml", "[hosts]\nt1 = \"t1.example.org\"\n")],
        apps: vec![file("apps/a.toml", app)],
    };
    let config = match load(&sources) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    assert_eq!(config.repository.location, RepoLocation::Folder(PathBuf::from("/cfg/maven-repo")));
    assert_eq!(config.defaults, Defaults::default());
    assert_eq!(config.notify, None);
    let test = &config.environments["test"];
    assert_eq!((test.transport, test.rollout, test.on_failure), (TransportKind::Ssh, RolloutPolicy::default(), OnFailure::Rollback));
    let app = &config.apps["a"];
    assert_eq!((app.artifact.as_str(), app.packaging, app.home.as_str()), ("a", Packaging::Jar, "~"));
    assert_eq!(app.health, Health { check: HealthCheck::None, timeout: Duration::from_secs(60), stable: DEFAULT_STABLE });
}

#[test]
fn repository_url_forms() {
    let location = |url: &str| {
        let kai = format!("[repository]\nurl = {url:?}\ngroup = \"g\"\n");
        match load(&ConfigSources { kai_toml: file("kai.toml", &kai), ..repo(&[]) }) {
            Ok(config) => config.repository.location,
            Err(errors) => panic!("{errors}"),
        }
    };
    assert_eq!(location("http://nexus:8081/repo//"), RepoLocation::Http("http://nexus:8081/repo".into()));
    assert_eq!(location("file:///srv/maven"), RepoLocation::Folder(PathBuf::from("/srv/maven")));
    assert_eq!(location("./repo/"), RepoLocation::Folder(PathBuf::from("/cfg/repo")));
    assert_eq!(location("/abs/repo"), RepoLocation::Folder(PathBuf::from("/abs/repo")));
}

// --- each kind of mistake -------------------------------------------------------------

#[test]
fn unknown_key_names_it_lists_the_allowed_ones_and_suggests_the_nearest() {
    let prod = PROD.replace("protected = true", "protectd = true");
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(1), Some("protectd")));
    assert!(error.message.starts_with("unknown field `protectd`, expected one of `protected`"), "{error}");
    assert_eq!(error.hint.as_deref(), Some("did you mean `protected`?"));
}

#[test]
fn unknown_key_inside_an_inline_table() {
    let prod = PROD.replace("port = 22,", "port = 22, user = \"x\",");
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(10), Some("hosts.app02.user")));
    assert!(error.message.contains("`address`, `port`, `login`, `root`"), "{error}");
}

#[test]
fn wrong_type() {
    let kai = KAI.replace("keep_releases = 5", "keep_releases = \"five\"");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(where_(&error), ("kai.toml".into(), Some(8), Some("defaults.keep_releases")));
    assert_eq!(error.message, "expected a whole number, found string \"five\"");
    assert_eq!(error.hint, None);
}

#[test]
fn a_number_in_quotes_says_how_to_write_it() {
    let kai = KAI.replace("keep_releases = 5", "keep_releases = \"5\"");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(error.message, "expected a whole number, found string \"5\"");
    assert_eq!(error.hint.as_deref(), Some("write it without quotes: 5"));
    let kai = KAI.replace("fetch = \"auto\"", "fetch = 3");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(error.message, "expected a string, found integer 3");
    assert_eq!(error.hint.as_deref(), Some("write it in quotes: \"3\""));
}

#[test]
fn wrong_type_for_a_host() {
    let prod = PROD.replace("lb01  = \"lb01.prod.example.org\"", "lb01 = 7");
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(12), Some("hosts.lb01")));
    assert!(error.message.contains("expected an address, or a table"), "{error}");
}

#[test]
fn bad_duration() {
    let app = JMSADMIN.replace("timeout = \"90s\"", "timeout = \"ninety\"");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert_eq!(where_(&error), ("apps/jmsadmin.toml".into(), Some(17), Some("health.timeout")));
    assert_eq!(error.message, "expected a duration like \"60s\", found \"ninety\"");
}

#[test]
fn unknown_host_in_servers() {
    let app = JMSADMIN.replace("[\"app01\", \"app02\"]", "[\"app01\", \"app09\"]");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert_eq!(
        error.to_string(),
        "apps/jmsadmin.toml:20: env.prod.servers: unknown host \"app09\" in environment prod \
         (expected one of: app01, app02, app03, lb01)\n  hint: did you mean \"app01\"?"
    );
}

#[test]
fn unknown_environment_in_env_table() {
    let app = JMSADMIN.replace("[env.prod]", "[env.prd]").replace("[env.prod.", "[env.prd.");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert_eq!(where_(&error), ("apps/jmsadmin.toml".into(), Some(19), Some("env.prd")));
    assert_eq!(error.message, "unknown environment \"prd\" (expected one of: dev, prod)");
    assert_eq!(error.hint.as_deref(), Some("did you mean \"prod\"?"));
}

#[test]
fn bad_template_placeholder_names_the_key() {
    let app = JMSADMIN.replace("\"jvm.xmx\" = \"128m\"", "\"jvm.xmx\" = \"{user}m\"");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert_eq!(where_(&error), ("apps/jmsadmin.toml".into(), Some(12), Some("properties.\"jvm.xmx\"")));
    assert!(error.message.contains("unknown placeholder {user}"), "{error}");
}

#[test]
fn bad_placeholder_in_balancer_template() {
    let prod = PROD.replace("server = \"{host}\"", "server = \"{hostname}\"");
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(19), Some("balancer.server")));
}

#[test]
fn a_secret_in_the_configuration_points_to_the_env_key() {
    let kai = KAI.replace("password_env = \"KAI_REPO_PASSWORD\"", "password = \"hunter2\"");
    let all = errors(&[("kai.toml", &kai)]);
    assert!(all.iter().all(|e| !e.to_string().contains("hunter2")), "{}", ConfigErrors(all.clone()));
    let error = all.into_iter().next().expect("an error");
    assert_eq!(where_(&error), ("kai.toml".into(), Some(5), Some("repository.password")));
    assert!(error.message.starts_with("unknown field `password`"), "{error}");
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("`password_env`")), "{error}");
    assert!(!error.to_string().contains("hunter2"));
}

#[test]
fn a_webhook_url_belongs_in_the_environment() {
    let kai = KAI.replace("url_env = \"KAI_WEBHOOK_URL\"", "url = \"https://hooks.example.org/x\"");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(where_(&error), ("kai.toml".into(), Some(14), Some("notify.webhook.url")));
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("`url_env`")), "{error}");
}

#[test]
fn a_secret_value_in_an_env_key_is_not_echoed() {
    let kai = KAI.replace("\"KAI_REPO_PASSWORD\"", "\"s3cr3t!pw\"");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(where_(&error), ("kai.toml".into(), Some(5), Some("repository.password_env")));
    assert!(!error.to_string().contains("s3cr3t"), "{error}");
}

#[test]
fn missing_required_key() {
    let app = JMSADMIN.replace("user = \"jmsadmin\"\n", "");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert_eq!(where_(&error), ("apps/jmsadmin.toml".into(), None, Some("user")));
    assert_eq!(error.message, "missing `user`");
    assert!(error.hint.as_deref().is_some_and(|h| h.starts_with("add `user = ")), "{error}");
}

#[test]
fn missing_key_in_a_nested_table() {
    let prod = format!("{PROD}\n[hosts.app04]\nport = 22\n");
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(23), Some("hosts.app04.address")));
}

#[test]
fn invalid_app_file_name() {
    let error = only_error(&[("apps/-bad name.toml", TELENOR)]);
    assert_eq!(where_(&error), ("apps/-bad name.toml".into(), None, None));
    assert!(error.message.starts_with("invalid app name \"-bad name\""), "{error}");
    assert!(error.hint.is_some());
}

#[test]
fn toml_syntax_error_has_a_line() {
    let all = errors(&[("apps/jmsadmin.toml", "user = \"x\"\nstart = \n")]);
    assert_eq!((all[0].file.clone(), all[0].line), (PathBuf::from("apps/jmsadmin.toml"), Some(2)));
    let keys: Vec<&str> = all.iter().filter_map(|e| e.key.as_deref()).collect();
    assert_eq!(keys, ["start", "stop"], "start is reported once, on its line: {}", ConfigErrors(all.clone()));
}

#[test]
fn every_broken_file_is_reported() {
    let kai = KAI.replace("fetch = \"auto\"", "fetch = \"pul\"");
    let prod = PROD.replace("kind = \"haproxy\"", "kind = \"f5\"");
    let app = JMSADMIN.replace("home = \"~\"", "home = \"srv/jms\"");
    let all = errors(&[
        ("kai.toml", &kai),
        ("environments/prod.toml", &prod),
        ("apps/jmsadmin.toml", &app),
        ("apps/telenormobil.toml", "user = 1\n"),
    ]);
    let places: Vec<_> = all.iter().map(where_).collect();
    assert_eq!(
        places,
        [
            ("kai.toml".into(), Some(9), Some("defaults.fetch")),
            ("environments/prod.toml".into(), Some(15), Some("balancer.kind")),
            ("environments/prod.toml".into(), Some(17), Some("balancer.admin")),
            ("apps/jmsadmin.toml".into(), Some(5), Some("home")),
            ("apps/telenormobil.toml".into(), Some(1), Some("user")),
            ("apps/telenormobil.toml".into(), None, Some("start")),
            ("apps/telenormobil.toml".into(), None, Some("stop")),
        ]
    );
    assert_eq!(all[0].hint.as_deref(), Some("did you mean \"pull\"?"));
}

#[test]
fn every_problem_in_one_file_is_reported() {
    let app = JMSADMIN
        .replace("home = \"~\"", "home = \"rel\"")
        .replace("packaging = \"zip\"", "packaging = \"war\"")
        .replace("config/app.properties", "../app.properties")
        .replace("standby = [\"app03\"]", "standby = [\"app01\", \"app03\", \"app03\"]");
    let keys: Vec<_> = errors(&[("apps/jmsadmin.toml", &app)]).into_iter().filter_map(|e| e.key).collect();
    assert_eq!(keys, ["packaging", "home", "properties_file", "env.prod.standby", "env.prod.standby"]);
}

#[test]
fn a_broken_environment_does_not_make_apps_report_it_unknown() {
    let all = errors(&[("environments/prod.toml", "protected = maybe\n")]);
    let said: Vec<(String, Option<usize>, Option<&str>)> = all.iter().map(where_).collect();
    assert_eq!(
        said,
        [("environments/prod.toml".into(), Some(1), Some("protected")), ("environments/prod.toml".into(), Some(1), Some("hosts"))],
        "both problems of the file, none of the apps that name it: {}",
        ConfigErrors(all.clone())
    );
}

#[test]
fn a_duplicate_key_is_named() {
    let app = JMSADMIN.replace("stop = ", "start = \"bin/again.sh\"\nstop = ");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert_eq!(where_(&error), ("apps/jmsadmin.toml".into(), Some(7), Some("start")));
    assert_eq!(error.message, "`start` is set twice (a key may appear once in its table)");
}

/// Issue 22: one problem of a file never hides the next: an unknown key, a bad
/// duration, a missing `start`, an unknown host and an unknown environment, each with
/// its line and key.
#[test]
fn every_problem_of_a_file_is_reported_whatever_comes_first() {
    let app = JMSADMIN
        .replace("start = \"bin/start.sh\"\n", "")
        .replace("[health]\n", "[health]\ntimout = \"5s\"\n")
        .replace("timeout = \"90s\"", "timeout = \"sixty\"")
        .replace("servers = [\"app01\", \"app02\"]", "servers = [\"app01\", \"app09\"]")
        + "[env.prd]\nservers = [\"app01\"]\n";
    let all = errors(&[("apps/jmsadmin.toml", &app)]);
    let keys: Vec<&str> = all.iter().filter_map(|e| e.key.as_deref()).collect();
    for key in ["health.timout", "health.timeout", "start", "env.prod.servers", "env.prd"] {
        assert!(keys.contains(&key), "{key} is not reported: {}", ConfigErrors(all.clone()));
    }
    assert!(all.iter().all(|e| e.file == std::path::Path::new("apps/jmsadmin.toml")), "{}", ConfigErrors(all.clone()));
}

#[test]
fn group_missing_everywhere_is_reported_on_the_app() {
    let kai = KAI.replace("group = \"org.example.services\"\n", "");
    let error = only_error(&[("kai.toml", &kai)]);
    assert_eq!(where_(&error), ("apps/jmsadmin.toml".into(), None, Some("group")));
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("kai.toml [repository]")), "{error}");
}

#[test]
fn values_out_of_range() {
    let kai = KAI.replace("keep_releases = 5", "keep_releases = 1");
    assert_eq!(only_error(&[("kai.toml", &kai)]).key.as_deref(), Some("defaults.keep_releases"));
    for batch in ["0", "\"0%\"", "\"101%\"", "\"half\"", "-1"] {
        let prod = PROD.replace("batch = 1", &format!("batch = {batch}"));
        let error = only_error(&[("environments/prod.toml", &prod)]);
        assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(5), Some("rollout.batch")));
    }
}

#[test]
fn hosts_are_checked() {
    let prod = PROD
        .replace("app03 = \"app03.prod.example.org\"", "\"app 03\" = \"x\"")
        .replace("lb01  = \"lb01.prod.example.org\"", "lb01 = \"lb01; rm -rf /\"");
    let all = errors(&[("environments/prod.toml", &prod)]);
    let keys: Vec<_> = all.iter().filter_map(|e| e.key.as_deref()).collect();
    assert!(keys.contains(&"hosts.\"app 03\""), "{keys:?}");
    assert!(keys.contains(&"hosts.lb01"), "{keys:?}");
}

#[test]
fn proxies_must_be_hosts_of_the_environment() {
    let prod = PROD.replace("proxies = [\"lb01\"]", "proxies = [\"lb1\"]");
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(where_(&error), ("environments/prod.toml".into(), Some(16), Some("balancer.proxies")));
    assert_eq!(error.hint.as_deref(), Some("did you mean \"lb01\"?"));
}

#[test]
fn health_needs_exactly_one_check() {
    let both = JMSADMIN.replace("timeout = \"90s\"", "command = \"bin/status.sh\"");
    assert_eq!(only_error(&[("apps/jmsadmin.toml", &both)]).key.as_deref(), Some("health"));
    let neither = JMSADMIN.replace("http = \"http://{address}:8080/ready\"\n", "");
    assert_eq!(only_error(&[("apps/jmsadmin.toml", &neither)]).key.as_deref(), Some("health"));
}

#[test]
fn plain_smtp_only_on_loopback() {
    let kai = KAI.replace("tls = \"starttls\"", "tls = \"none\"");
    assert_eq!(only_error(&[("kai.toml", &kai)]).key.as_deref(), Some("notify.email.smtp"));
    let local = kai.replace("smtp.example.org:587", "127.0.0.1:25");
    assert!(load(&repo(&[("kai.toml", &local)])).is_ok());
}

#[test]
fn display_without_line_or_key() {
    let error = ConfigError::new("apps/x y.toml", "bad name").with_hint("rename it");
    assert_eq!(error.to_string(), "apps/x y.toml: bad name\n  hint: rename it");
    let two = ConfigErrors(vec![error.clone().with_line(3).with_key("k"), ConfigError::new("kai.toml", "m")]);
    assert_eq!(two.to_string(), "apps/x y.toml:3: k: bad name\n  hint: rename it\nkai.toml: m");
}

#[test]
fn nearest_names() {
    assert_eq!(nearest("prd", ["dev", "prod", "test"]), Some("prod"));
    assert_eq!(nearest("zzzzzz", ["dev", "prod"]), None);
}

// --- Apache httpd and local builds ------------------------------------------------------

/// prod.toml with its `[balancer]` section replaced by `section`.
fn prod_with_balancer(section: &str) -> String {
    let start = PROD.find("[balancer]").expect("prod has a balancer");
    format!("{}[balancer]\n{section}\n", &PROD[..start])
}

const HTTPD: &str = r#"kind = "httpd"
proxies = ["lb01"]
manager = "https://{address}:8443/balancer-manager"
balancer = "{app}-pool"
worker = "http://{address}:8080"
username_env = "KAI_LB_USER"
password_env = "KAI_LB_PASSWORD"
reload = "sudo -n /usr/sbin/apachectl -k graceful"
"#;

#[test]
fn an_httpd_balancer_loads_with_its_manager_worker_login_and_reload() {
    let prod = prod_with_balancer(HTTPD);
    let config = match load(&repo(&[("environments/prod.toml", &prod)])) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    let balancer = &config.environments["prod"].balancer;
    assert_eq!(balancer.kind, BalancerKind::Httpd);
    assert_eq!(balancer.backend.source(), "{app}-pool", "httpd's `balancer` names the pool");
    assert!(balancer.manager.is_some() && balancer.worker.is_some());
    assert_eq!((balancer.username_env.as_deref(), balancer.password_env.as_deref()), (Some("KAI_LB_USER"), Some("KAI_LB_PASSWORD")));
    let words: Vec<&str> = balancer.reload.iter().map(Template::source).collect();
    assert_eq!(words, ["sudo", "-n", "/usr/sbin/apachectl", "-k", "graceful"]);
    assert!(!config.environments["prod"].allow_local);
}

#[test]
fn an_httpd_balancer_needs_its_manager_and_worker_and_a_real_url() {
    let prod = prod_with_balancer("kind = \"httpd\"\nproxies = [\"lb01\"]");
    let all = errors(&[("environments/prod.toml", &prod)]);
    let keys: Vec<Option<&str>> = all.iter().map(|e| e.key.as_deref()).collect();
    assert_eq!(keys, [Some("balancer.manager"), Some("balancer.worker")], "{}", ConfigErrors(all.clone()));
    let prod = prod_with_balancer(&HTTPD.replace("https://{address}:8443/balancer-manager", "{address}:8443"));
    let error = only_error(&[("environments/prod.toml", &prod)]);
    assert_eq!(error.key.as_deref(), Some("balancer.manager"));
    assert!(error.message.contains("http(s) URL"), "{error}");
}

#[test]
fn httpd_keys_are_refused_on_another_kind_of_balancer() {
    let prod = PROD.replace("settle = \"2s\"", "settle = \"2s\"\nreload = \"apachectl -k graceful\"\nworker = \"http://{address}:8080\"");
    let all = errors(&[("environments/prod.toml", &prod)]);
    let found: Vec<(Option<&str>, &str)> = all.iter().map(|e| (e.key.as_deref(), e.message.as_str())).collect();
    assert!(found.contains(&(Some("balancer.worker"), "`worker` is only used with kind = \"httpd\"")), "{found:?}");
    assert!(found.contains(&(Some("balancer.reload"), "`reload` is only used with kind = \"httpd\"")), "{found:?}");
    let prod = PROD.replace("settle = \"2s\"", "settle = \"2s\"\nbalancer = \"{app}\"");
    assert_eq!(only_error(&[("environments/prod.toml", &prod)]).key.as_deref(), Some("balancer.balancer"));
    let both = prod_with_balancer(&format!("{HTTPD}backend = \"x\"\n"));
    let error = only_error(&[("environments/prod.toml", &both)]);
    assert!(error.message.contains("keep one"), "{error}");
}

#[test]
fn allow_local_is_read_per_environment() {
    let prod = PROD.replace("protected = true", "protected = true\nallow_local = true");
    let config = match load(&repo(&[("environments/prod.toml", &prod)])) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    assert!(config.environments["prod"].allow_local);
    assert!(!config.environments["dev"].allow_local);
}

// --- [canary] ---------------------------------------------------------------------------

#[test]
fn a_canary_section_loads_every_key() {
    let prod = format!(
        "{PROD}\n[canary]\nhosts = \"25%\"\nwindow = \"30s\"\nmin_requests = 200\nerror_factor = 3.0\nerror_margin = \"2%\"\n\
         slowdown = 2.0\nslowdown_margin = \"10ms\"\non_low_traffic = \"pass\"\nmax_windows = 2\n"
    );
    let config = match load(&repo(&[("environments/prod.toml", &prod)])) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    let canary = config.environments["prod"].canary.clone().expect("a canary");
    assert_eq!(canary.hosts, Batch::Percent(25));
    let p = canary.policy;
    assert_eq!((p.window, p.min_requests, p.max_windows), (Duration::from_secs(30), 200, 2));
    assert_eq!((p.error_factor, p.error_margin, p.slowdown, p.slowdown_margin_ms), (3.0, 0.02, 2.0, 10.0));
    assert_eq!(p.on_low_traffic, crate::canary::LowTraffic::Pass);
    assert!(canary.judge_command.is_empty());
}

#[test]
fn a_canary_needs_haproxy_or_a_judge_command() {
    let dev = format!("{DEV}\n[canary]\nwindow = \"10s\"\n");
    let error = only_error(&[("environments/dev.toml", &dev)]);
    assert_eq!(error.key.as_deref(), Some("canary"));
    assert!(error.message.contains("no kind = \"haproxy\" balancer"), "{error}");
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("judge_command")), "{error}");
    let dev = format!("{DEV}\n[canary]\njudge_command = \"bin/judge --app {{app}}\"\n");
    if let Err(errors) = load(&repo(&[("environments/dev.toml", &dev)])) {
        panic!("{errors}");
    }
    // An app's own canary is checked against every environment it is placed in.
    let app = format!("{TELENOR}\n[canary]\nhosts = 1\n");
    let errors = errors(&[("apps/telenormobil.toml", &app)]);
    assert!(
        errors.iter().any(|e| e.file == std::path::Path::new("apps/telenormobil.toml") && e.key.as_deref() == Some("canary")),
        "{}",
        ConfigErrors(errors.clone())
    );
}

#[test]
fn canary_values_out_of_range_are_named() {
    for (line, key) in [
        ("error_margin = \"two\"", "canary.error_margin"),
        ("slowdown = 0.5", "canary.slowdown"),
        ("on_low_traffic = \"maybe\"", "canary.on_low_traffic"),
        ("hosts = 0", "canary.hosts"),
        ("max_windows = 0", "canary.max_windows"),
        ("window = \"soon\"", "canary.window"),
    ] {
        let prod = format!("{PROD}\n[canary]\n{line}\n");
        let error = only_error(&[("environments/prod.toml", &prod)]);
        assert_eq!(error.key.as_deref(), Some(key), "{line}: {error}");
    }
}

// --- secrets ---------------------------------------------------------------------------

#[test]
fn secrets_come_from_the_age_file_unless_a_command_says_otherwise() {
    assert_eq!(loaded().environments["prod"].secret_source, crate::config::SecretSource::File);
    let prod = format!("{PROD}\n[secrets]\ncommand = \"pass show 'kai/{{env}}/{{name}}'\"\ntimeout = \"5s\"\n");
    let config = match load(&repo(&[("environments/prod.toml", &prod)])) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    let expected =
        crate::config::SecretSource::Command { argv: strings(&["pass", "show", "kai/{env}/{name}"]), timeout: Duration::from_secs(5) };
    assert_eq!(config.environments["prod"].secret_source, expected);
}

#[test]
fn a_secrets_command_must_name_the_secret_and_knows_only_env_and_name() {
    let with = |section: &str| format!("{PROD}\n[secrets]\n{section}\n");
    let error = only_error(&[("environments/prod.toml", &with("command = \"pass show kai/{env}/db\""))]);
    assert_eq!(where_(&error).2, Some("secrets.command"));
    assert!(error.message.contains("put {name} in it"), "{error}");
    let error = only_error(&[("environments/prod.toml", &with("command = \"vault kv get {app}/{name}\""))]);
    assert!(error.message.contains("unknown placeholder {app}"), "{error}");
    let error = only_error(&[("environments/prod.toml", &with("timeout = \"5s\""))]);
    assert!(error.message.contains("set secrets.command too"), "{error}");
}

#[test]
fn a_secret_may_stand_in_a_property_and_nowhere_else() {
    let app = JMSADMIN.replace("[properties]\n", "[properties]\n\"db.url\" = \"jdbc:pg://svc:{secret:db.password}@db/x\"\n");
    let config = match load(&repo(&[("apps/jmsadmin.toml", &app)])) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    assert_eq!(config.apps["jmsadmin"].secret_names("prod").into_iter().collect::<Vec<_>>(), ["db.password"]);
    let app = JMSADMIN.replace("http = \"http://{address}:8080/ready\"", "http = \"http://{address}:8080/ready?t={secret:probe.token}\"");
    let error = only_error(&[("apps/jmsadmin.toml", &app)]);
    assert!(error.message.contains("only stand in a property's value"), "{error}");
}

#[test]
fn apps_without_health_are_one_warning_each_or_one_for_many() {
    use crate::config::warnings;
    let mut config = loaded();
    let template = config.apps.values().next().expect("an app").clone();
    config.apps.clear();
    for n in 0..8 {
        let mut app = template.clone();
        app.name = format!("app{n}");
        app.health.check = HealthCheck::None;
        config.apps.insert(app.name.clone(), app);
    }
    let said = warnings(&config);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("8 apps have no [health] check (app0, app1, app2, app3, app4 and 3 more)"), "{said:?}");
    config.apps.retain(|name, _| name == "app0" || name == "app1");
    let said = warnings(&config);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].starts_with("apps/app0.toml has no [health] check"), "{said:?}");
}
