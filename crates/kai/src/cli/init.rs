//! `kai init`: a starter configuration repository, one environment and one app, with
//! a comment on every key.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::settings::Settings;

/// Create a starter configuration repository: one environment, one app, every key commented.
///
/// Writes kai.toml, environments/test.toml and apps/hello.toml into DIR (default: the
/// current folder). Edit the repository URL and the hosts, run `kai check`, and keep
/// the folder in git so the team shares it. Refuses to touch a folder that already
/// holds a kai.toml.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Where to create it; created if missing.
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    dir: Option<PathBuf>,
}

/// The files of the starter, relative to its folder.
const FILES: [(&str, &str); 5] = [
    ("kai.toml", KAI_TOML),
    ("environments/test.toml", ENVIRONMENT),
    ("apps/hello.toml", APP),
    (".gitignore", GITIGNORE),
    ("secrets/README", SECRETS_README),
];

/// What kai keeps beside the configuration and git should not: the hosts of local
/// environments and the cache.
const GITIGNORE: &str = "# kai's own state beside the configuration (local hosts): not configuration\n.kai/\n";

pub fn run(args: InitArgs, settings: &Settings) -> Result<u8, CliError> {
    let dir: PathBuf = settings.cwd.join(args.dir.unwrap_or_default()).components().collect();
    if dir.join("kai.toml").exists() {
        return Err(CliError::usage(
            format!("{} already holds a kai.toml; nothing was written", dir.display()),
            Some("pick an empty folder: `kai init <DIR>`, or run `kai check` to validate this one".to_owned()),
        ));
    }
    if let Some((existing, _)) = FILES.iter().find(|(file, _)| dir.join(file).exists()) {
        return Err(CliError::usage(format!("{} exists; nothing was written", dir.join(existing).display()), None));
    }
    for (file, text) in FILES {
        write_new(&dir.join(file), text)
            .map_err(|e| CliError::Failed(anyhow::anyhow!("cannot write {}: {e}", dir.join(file).display())))?;
    }
    println!("created a kai configuration repository in {}:", dir.display());
    println!("  kai.toml                 the Maven repository and the defaults");
    println!("  environments/test.toml   the hosts of the \"test\" environment");
    println!("  apps/hello.toml          the \"hello\" application");
    println!("  .gitignore               keeps kai's local state (.kai/) out of git");
    println!("  secrets/README           how secrets are kept here, encrypted (kai secrets)");
    println!("next: set the repository URL in kai.toml and the hosts in environments/test.toml, run `kai check`,");
    println!("and keep the folder in git (`git init`) so the team shares it");
    Ok(0)
}

/// Writes `text` to a file that must not exist yet, creating its folder.
fn write_new(path: &Path, text: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::File::options().write(true).create_new(true).open(path)?.write_all(text.as_bytes())
}

const KAI_TOML: &str = r#"# A kai configuration repository: kai.toml (the Maven repository and the defaults),
# environments/<env>.toml (the hosts of one environment each) and apps/<app>.toml (one
# application each). `kai check` validates all of it; keep it in git so the team shares it.

# The environments in the order a release goes through them (a pipeline), the order
# `kai status`, completion and `kai serve` list them in; add each one you create, e.g.
# environments = ["test", "systest", "prod"]. Unlisted ones come after, alphabetically.
environments = ["test"]

[repository]
# Where artifacts come from: an http(s) URL (Artifactory, Nexus), file:///absolute/path,
# or a folder relative to this one. Replace it with your repository.
url = "https://repo.example.org/artifactory/libs-release-local"
# The Maven groupId of every app that does not set its own `group`.
group = "org.example.services"
# Credentials only ever come from the environment: the names of the variables holding them.
# username_env = "KAI_REPO_USER"
# password_env = "KAI_REPO_PASSWORD"
# The longest one request for metadata or a checksum may take, whole.
timeout = "60s"

[defaults]
# Releases kept in <home>/releases on each host (never the current one or the one before it).
keep_releases = 5
# pull: servers download from the repository; push: kai downloads and uploads;
# auto: pull for an http(s) repository, push otherwise.
fetch = "auto"
# How long an app may take to become ready after a start, unless its [health] says otherwise.
health_timeout = "60s"
# How long an app's start and stop scripts may run before kai stops them and the step has
# failed (apps may set their own start_timeout and stop_timeout).
start_timeout = "2m"
stop_timeout = "2m"
# How long a server may take to download and unpack an artifact.
fetch_timeout = "10m"

# Notices after every deploy: who deployed what, where, and how it went.
# [notify]
# email = { smtp = "smtp.example.org:587", from = "kai@example.org", to = ["ops@example.org"] }
# webhook = { url_env = "KAI_WEBHOOK_URL" }   # Slack/Mattermost/Teams-compatible
"#;

const SECRETS_README: &str = r#"secrets/<env>.age: an environment's secrets, encrypted (the age format) for every public key
in secrets/recipients (one `age1...` a line). `kai secrets set <env> NAME` sets one (the
value read from standard input), `kai secrets list <env>` names them, `kai secrets edit
<env>` opens them in $EDITOR, `kai secrets rekey` encrypts every file again after a
recipient was added or removed. Your identity (private key) is ~/.config/kai/identity.txt
or the file KAI_AGE_IDENTITY names (`age-keygen -o ~/.config/kai/identity.txt`); it is
never in this repository.
"#;

const ENVIRONMENT: &str = r#"# The "test" environment: its hosts, how kai reaches them, and its load balancer.
# The file name is the environment's name; copy this file to add one (prod.toml, ...).

# Deploys ask you to type the environment's name first when true (set it for prod).
protected = false
# How kai reaches the hosts: "ssh" (OpenSSH, with your ~/.ssh/config, agent and known_hosts),
# or "local" (folders under .kai/hosts/<host>/ beside kai.toml, for trying kai out).
transport = "ssh"
# Servers switched at a time (a number, or a share like "25%"); canary: a first wave of one.
rollout = { batch = 1, canary = false }
# When a server fails: "rollback" puts every switched server back; "halt" only the failed one.
on_failure = "rollback"

[hosts]
# name = "address", or name = { address = "10.1.0.12", port = 22, login = "deploy" };
# apps place themselves on these names.
app01 = "app01.test.example.org"
app02 = "app02.test.example.org"

[balancer]
# How a server leaves and rejoins rotation: haproxy | health-file | command | none.
kind = "none"

# Secrets ({secret:NAME} in a property's value) come from secrets/test.age, encrypted
# for the keys in secrets/recipients (`kai secrets set test db.password` writes it), or
# from a command run on your machine, once per secret, its output being the value:
# [secrets]
# command = "pass show kai/{env}/{name}"
# timeout = "30s"
"#;

const APP: &str = r#"# The "hello" application: which artifact to deploy, how to run it, how to know it is up,
# and where. The file name is the name you deploy: `kai deploy test hello-1.2.0`.

# The Maven artifactId (default: the file name); the groupId is kai.toml's unless `group` is set here.
artifact = "hello"
# The artifact's file type: zip | tar.gz | jar.
packaging = "zip"
# The Unix account that owns and runs the app (kai logs in as it, or as the host's login with sudo -u).
user = "hello"
# The app's home on the server: "~" is the user's home, or an absolute path.
home = "~"
# Starts the app: run in <home>/current, and expected to return once it has launched it.
# Its output goes to <home>/.kai/start.log (kai shows the end of it when the start fails).
start = "bin/start.sh"
# Stops the app: run in <home>/current, and must succeed when nothing runs.
stop = "bin/stop.sh"
# The longest each may run before kai stops it and the step has failed (kai.toml's default).
start_timeout = "2m"
stop_timeout = "2m"
# Where kai writes [properties] inside each release, as key=value lines.
properties_file = "config/app.properties"

[properties]
# Templates: {app} {env} {host} {address} {version} are filled in per host and release.
"app.name" = "{app}"
# Numbers are written as they are.
"http.port" = 8080
# A secret is named, never written here: {secret:NAME} (see environments/test.toml).
# "db.url" = "jdbc:postgresql://hello:{secret:db.password}@db/hello"
# The JVM's heap, for every environment unless one says otherwise (below).
"jvm.xmx" = "128m"

[health]
# kai's readiness check after a start, polled until it answers 2xx; it must ignore `disabled`.
# Or: command = "bin/status.sh" (run in <home>/current).
http = "http://{address}:8080/ready"
# How long the app may take to become ready before the deploy counts as failed.
timeout = "60s"
# After its first answer it must stay healthy this long before the next server is taken
# out (a release that dies a second after start is caught).
stable = "3s"

[env.test]
# Active servers: they get the release and are switched one after another.
servers = ["app01", "app02"]
# Standby servers: they get the release too, but stay disabled and stopped.
standby = []

[env.test.properties]
# Properties for this environment only, over the ones above.
"jvm.xmx" = "256m"
"#;
