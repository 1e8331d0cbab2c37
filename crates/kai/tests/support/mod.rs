//! The end-to-end harness: one temporary folder holding a configuration repository, a
//! folder Maven repository with releases of the demo service, and local hosts; the real
//! `kai` binary run against it with HOME and USER pinned; readers of what kai left on
//! each host. Dropping the [`World`] stops every service it started.
//!
//! ```ignore
//! let world = World::builder().active(2).standby(1).publish("1.0.0").build();
//! world.deploy(["hello-1.0.0"]).assert_exit(0);
//! assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
//! ```
//!
//! Every world has its own loopback addresses (`127.<process>.<world>.<host>`) and one
//! free port, so tests run in parallel without meeting each other's services. kai has
//! no clock to pin: nothing here compares timestamps.
//!
//! A test crate that sets `const OVER_SSH: bool = true` gets the same worlds reached
//! over SSH: one real sshd (see `fleet`) listens on the hosts' addresses, and kai logs
//! in as the user running the tests, who is also the app's user.

#![allow(dead_code)]

#[path = "../fleet/mod.rs"]
pub mod fleet;

mod apps;
mod everyday;
mod host;
mod run;
mod snapshot;
mod visibility;

pub use host::*;
pub use run::*;
pub use snapshot::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

/// What this test crate's transport needs: nothing for local hosts; over SSH, sshd
/// (the test fails without it, saying what to install).
#[track_caller]
pub fn require_transport() {
    if crate::OVER_SSH {
        fleet::require_sshd();
    }
}

/// The environment every world deploys to.
pub const ENV: &str = "test";
/// The one application of every world.
pub const APP: &str = "hello";
/// Who runs kai (`USER`): lock owners and history lines name it.
pub const USER: &str = "tester";
/// The Maven groupId of the app.
const GROUP: &str = "org.example.test";
/// The longest a single `kai` run may take before the test fails.
const KAI_TIMEOUT: Duration = Duration::from_secs(90);
/// kai's readiness budget per server: short, the service is up in milliseconds.
const HEALTH_TIMEOUT: &str = "3s";
/// How long a server must stay healthy: short, so the scenarios stay quick (the
/// scenario of a release that dies after start sets a longer one).
const HEALTH_STABLE: &str = "300ms";

const KAI: &str = env!("CARGO_BIN_EXE_kai");
const SERVICE: &str = env!("CARGO_BIN_EXE_kai-demo-service");

/// What a published version of the app does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artifact {
    /// Starts and answers `/ready`.
    Good,
    /// Starts, but `/ready` answers 500 (its start.sh adds `fail.ready=true`).
    Broken,
    /// Broken on this host only, good everywhere else.
    BrokenOn(&'static str),
    /// Its `.sha256` does not match the file.
    Corrupt,
    /// Its start.sh leaves a child that holds start.sh's standard output (a classic
    /// `cmd &` without redirection), then starts the service as usual.
    HoldsOutput,
    /// Its start.sh never returns (it waits in the foreground).
    HangsOnStart,
    /// Starts and answers, then the process exits this many milliseconds later.
    DiesAfter(u32),
    /// Its start.sh waits this many milliseconds (not the demo's 200) after starting the
    /// service before it checks that the service still runs, and removes the pid file
    /// when it does not, as the demo's does.
    SlowStart(u32),
    /// Passes its checks; every `fail_every`th answer to `/` is a 500 (0: none) and
    /// each answer to `/` takes `delay_ms`: what a canary is judged on.
    Serves { fail_every: u32, delay_ms: u32 },
}

/// The shape of a world: its hosts, configuration and published versions.
#[derive(Debug)]
pub struct WorldBuilder {
    active: usize,
    standby: usize,
    keep_releases: Option<u32>,
    properties: Vec<(String, String)>,
    published: Vec<(String, Artifact)>,
    /// The environment's `[balancer]` section (without its header); `kind = "none"` if unset.
    balancer: Option<String>,
    /// Serve the Maven repository over HTTP (python3 -m http.server): hosts download.
    http_repository: bool,
    /// `[health] stable`, when not the harness's short default.
    stable: Option<&'static str>,
    /// kai.toml names `KAI_TEST_REPO_USER` and `KAI_TEST_REPO_PASSWORD` for the credentials.
    credentials: bool,
    /// More top-level keys of apps/hello.toml, as TOML lines (`start_timeout = "2s"`).
    app_keys: Vec<String>,
}

impl WorldBuilder {
    /// Active servers `web1..webN`.
    pub fn active(mut self, count: usize) -> Self {
        self.active = count;
        self
    }

    /// Standby servers, named after the active ones.
    pub fn standby(mut self, count: usize) -> Self {
        self.standby = count;
        self
    }

    /// `[defaults] keep_releases` in kai.toml.
    pub fn keep_releases(mut self, count: u32) -> Self {
        self.keep_releases = Some(count);
        self
    }

    /// One more `[properties]` entry in apps/hello.toml, the value written literally.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The environment's `[balancer]` section (its lines, without the header). The
    /// environment also gets a host `lb` on 127.0.0.1 to name in `proxies`.
    pub fn balancer(mut self, section: &str) -> Self {
        self.balancer = Some(section.to_owned());
        self
    }

    /// kai.toml takes the repository credentials from `KAI_TEST_REPO_USER` and
    /// `KAI_TEST_REPO_PASSWORD` (give them with `start_kai`).
    pub fn repository_credentials(mut self) -> Self {
        self.credentials = true;
        self
    }

    /// One more top-level key of apps/hello.toml; `value` is TOML (`"2s"`, `5`).
    pub fn app_key(mut self, key: &str, value: &str) -> Self {
        self.app_keys.push(format!("{key} = {value}"));
        self
    }

    /// `[health] stable` of the app: how long it must stay healthy after start.
    pub fn stable(mut self, duration: &'static str) -> Self {
        self.stable = Some(duration);
        self
    }

    /// Serves the Maven repository over real HTTP; kai.toml points at it, so every
    /// host downloads the artifact itself (`fetch = "auto"` pulls from http).
    pub fn http_repository(mut self) -> Self {
        self.http_repository = true;
        self
    }

    /// Publishes a good release of `version` (in the order of these calls).
    pub fn publish(self, version: &str) -> Self {
        self.publish_as(version, Artifact::Good)
    }

    pub fn publish_as(mut self, version: &str, artifact: Artifact) -> Self {
        self.published.push((version.to_owned(), artifact));
        self
    }

    pub fn build(self) -> World {
        let dir = tempfile::Builder::new().prefix("kai-e2e-").tempdir().expect("a temporary folder");
        let base = dir.path().canonicalize().expect("the temporary folder has a real path");
        let count = self.active + self.standby;
        let (addresses, port) = network(count);
        let hosts = (0..count)
            .map(|i| HostSpec { name: format!("web{}", i + 1), address: addresses[i].to_string(), standby: i >= self.active })
            .collect();
        let world = World {
            root: base.join("config"),
            home: base.join("home"),
            cwd: base.join("cwd"),
            base,
            port,
            hosts,
            published: Vec::new(),
            user: APP.to_owned(),
            fleet: None,
            http: None,
            _dir: dir,
        };
        let mut world = world;
        if crate::OVER_SSH {
            let fleet = fleet::Fleet::start_on_except(world.hosts.iter().map(|h| h.address.clone()).collect(), world.port);
            world.user = fleet.user.clone();
            world.fleet = Some(fleet);
        }
        for dir in [&world.root, &world.home, &world.cwd] {
            fs::create_dir_all(dir).expect("the world's folders");
        }
        let repository = if self.http_repository {
            let port = network(1).1;
            fs::create_dir_all(world.root.join("repo")).expect("the repository folder");
            let child = Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
                .arg(world.root.join("repo"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 -m http.server (the HTTP repository)");
            world.http = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "the HTTP repository did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            format!("http://127.0.0.1:{port}")
        } else {
            "repo".to_owned()
        };
        world.write_config(&self, &repository);
        for (version, artifact) in &self.published {
            world.publish(version, *artifact);
        }
        world
    }
}

#[derive(Clone, Debug)]
struct HostSpec {
    name: String,
    address: String,
    standby: bool,
}

/// A configuration repository, a Maven repository and local hosts in one temporary folder.
pub struct World {
    /// Everything of this world is below it.
    base: PathBuf,
    /// The configuration repository (`--config`); the Maven repository is its `repo/`.
    root: PathBuf,
    /// kai's HOME: its artifact cache is this world's own.
    home: PathBuf,
    /// kai's working directory.
    cwd: PathBuf,
    /// The port of the app on every host.
    port: u16,
    hosts: Vec<HostSpec>,
    /// Versions in the order they were published.
    published: Vec<String>,
    /// The app's Unix user: `hello` on local hosts, the test's own user over SSH.
    user: String,
    /// The sshd of the hosts, when the world is reached over SSH.
    fleet: Option<fleet::Fleet>,
    /// The HTTP server of the Maven repository, when it is served.
    http: Option<std::process::Child>,
    /// Removed after `Drop::drop` has stopped the services.
    _dir: TempDir,
}

impl World {
    /// Two active servers and one standby, nothing published.
    pub fn builder() -> WorldBuilder {
        WorldBuilder {
            active: 2,
            standby: 1,
            keep_releases: None,
            properties: Vec::new(),
            published: Vec::new(),
            balancer: None,
            http_repository: false,
            stable: None,
            app_keys: Vec::new(),
            credentials: false,
        }
    }

    /// Kills the hosts' sshd and every connection it serves (an SSH world only), as
    /// a network failure would, without waiting for anything.
    pub fn cut_ssh(&self) {
        let pid = self.fleet.as_ref().and_then(fleet::Fleet::sshd_pid).expect("an SSH world");
        fleet::kill_tree(pid);
    }

    /// The hosts' sshd, its keys and known_hosts (an SSH world only).
    pub fn fleet(&self) -> &fleet::Fleet {
        self.fleet.as_ref().expect("an SSH world")
    }

    /// Starts the hosts' sshd again after [`cut_ssh`](Self::cut_ssh).
    pub fn restore_ssh(&mut self) {
        self.fleet.as_mut().expect("an SSH world").restart();
    }

    /// The folder all of this world lives in.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The configuration repository.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    // ---- running kai ----------------------------------------------------------------

    /// `command` in this world's working folder with only a pinned environment:
    /// PATH, HOME (this world's own), USER, LOGNAME, LC_ALL and TZ.
    fn pinned<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .env("HOME", &self.home)
            .env("USER", USER)
            .env("LOGNAME", USER)
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
    }

    /// Runs `kai --config <root> ARGS...` with HOME, USER and the environment pinned.
    pub fn kai<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.start_kai(args, &[]).wait()
    }

    /// Starts `kai --config <root> ARGS...` in the background, with `vars` added to the
    /// pinned environment; [`Background::wait`] ends it.
    pub fn start_kai<I, S>(&self, args: I, vars: &[(&str, &str)]) -> Background
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let id = RUNS.fetch_add(1, Ordering::Relaxed);
        let (out_path, err_path) = (self.base.join(format!("kai-{id}.stdout")), self.base.join(format!("kai-{id}.stderr")));
        let child = self
            .pinned(Command::new(KAI).arg("--config").arg(&self.root).args(&args))
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("kai's stdout file"))
            .stderr(fs::File::create(&err_path).expect("kai's stderr file"))
            .spawn()
            .expect("kai starts");
        Background { child, args, out_path, err_path, started: Instant::now() }
    }

    /// `kai deploy test APPS...`
    pub fn deploy<I, S>(&self, apps: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.kai(["deploy", ENV].into_iter().map(str::to_owned).chain(apps.into_iter().map(|a| a.as_ref().to_owned())))
    }

    /// `kai plan test APPS... --commands`: the plan with every command.
    pub fn plan<I, S>(&self, apps: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let args = ["plan", ENV].into_iter().map(str::to_owned).chain(apps.into_iter().map(|a| a.as_ref().to_owned()));
        self.kai(args.chain(["--commands".to_owned()]))
    }

    /// A deploy that must succeed: the "given" of a scenario.
    #[track_caller]
    pub fn deployed(self, app: &str) -> World {
        self.deploy([app]).assert_exit(0);
        self
    }

    // ---- the hosts ------------------------------------------------------------------

    #[track_caller]
    pub fn host(&self, name: &str) -> Host<'_> {
        let spec = self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name} in this world"));
        Host { world: self, spec }
    }

    pub fn hosts(&self) -> impl Iterator<Item = Host<'_>> {
        self.hosts.iter().map(|spec| Host { world: self, spec })
    }

    pub fn actives(&self) -> impl Iterator<Item = Host<'_>> {
        self.hosts().filter(|h| !h.spec.standby)
    }

    pub fn standbys(&self) -> impl Iterator<Item = Host<'_>> {
        self.hosts().filter(|h| h.spec.standby)
    }

    /// Every file, folder and link below the hosts' folders.
    pub fn snapshot(&self) -> Snapshot {
        let mut entries = BTreeMap::new();
        walk(&self.root.join(".kai/hosts"), Path::new(""), &mut entries);
        Snapshot(entries)
    }

    /// Every path in the world, kai's cache and the configuration included, named `name`.
    pub fn files_named(&self, name: &str) -> Vec<PathBuf> {
        let mut entries = BTreeMap::new();
        walk(&self.base, Path::new(""), &mut entries);
        entries.into_keys().filter(|p| p.file_name().is_some_and(|n| n == name)).collect()
    }

    // ---- the repositories -----------------------------------------------------------

    /// Publishes `version` into the Maven repository, as the last upload.
    pub fn publish(&mut self, version: &str, artifact: Artifact) {
        self.publish_with(version, artifact, |_| {});
    }

    /// Publishes `version` with `extra` adding to its folder before it is packed (links,
    /// odd names: a hostile artifact). Everything in the folder is packed.
    pub fn publish_with(&mut self, version: &str, artifact: Artifact, extra: impl FnOnce(&Path)) {
        let dir = self.artifact_dir().join(version);
        fs::create_dir_all(&dir).expect("the version folder");
        let file = dir.join(format!("{APP}-{version}.tar.gz"));
        self.pack(version, artifact, extra, &file);
        let mut digest = sha256(&file);
        if artifact == Artifact::Corrupt {
            let flipped = if digest.starts_with('0') { "1" } else { "0" };
            digest.replace_range(0..1, flipped);
        }
        fs::write(dir.join(format!("{APP}-{version}.tar.gz.sha256")), digest).expect("the .sha256");
        self.published.push(version.to_owned());
        self.write_metadata();
    }

    /// Builds `version` as a developer would on their machine: the file
    /// `<base>/build/<name>`, not published. Returns its absolute path.
    pub fn build_locally(&self, version: &str, artifact: Artifact, name: &str) -> PathBuf {
        let dir = self.base.join("build");
        fs::create_dir_all(&dir).expect("the build folder");
        let file = dir.join(name);
        self.pack(version, artifact, |_| {}, &file);
        file
    }

    /// The app at `version` (its VERSION file says so), packed into `file`.
    fn pack(&self, version: &str, artifact: Artifact, extra: impl FnOnce(&Path), file: &Path) {
        let stage = self.base.join("stage").join(version);
        fs::create_dir_all(stage.join("bin")).expect("the staging folder");
        let start = fs::read_to_string(demo_bin("start.sh")).expect("demo/app/bin/start.sh");
        write_executable(&stage.join("bin/start.sh"), &self.start_script(&start, artifact));
        fs::copy(demo_bin("stop.sh"), stage.join("bin/stop.sh")).expect("copy stop.sh");
        fs::copy(SERVICE, stage.join("bin/kai-demo-service")).expect("copy kai-demo-service");
        fs::write(stage.join("VERSION"), format!("{version}\n")).expect("VERSION");
        extra(&stage);
        let tar = Command::new("tar").arg("-C").arg(&stage).arg("-czf").arg(file).arg(".").status().expect("tar runs");
        assert!(tar.success(), "tar could not pack {version}");
        fs::remove_dir_all(&stage).expect("remove the staging folder");
    }

    /// Lists `version` in maven-metadata.xml without publishing anything for it (a
    /// repository that names what it should not).
    pub fn list_in_metadata(&mut self, version: &str) {
        self.published.push(version.to_owned());
        self.write_metadata();
    }

    /// The demo's start.sh, made to fail its readiness check where `artifact` says.
    fn start_script(&self, demo: &str, artifact: Artifact) -> String {
        let sabotage = match artifact {
            Artifact::Good | Artifact::Corrupt => return demo.to_owned(),
            Artifact::SlowStart(ms) => {
                assert!(demo.contains("\nsleep 0.2\n"), "the demo's start.sh waits 0.2 s after starting the service");
                return demo.replace("\nsleep 0.2\n", &format!("\nsleep {}.{:03}\n", ms / 1000, ms % 1000));
            }
            Artifact::HoldsOutput => "sleep 300 &   # holds our stdout, on purpose".to_owned(),
            Artifact::HangsOnStart => "sleep 300   # never returns, on purpose".to_owned(),
            Artifact::DiesAfter(ms) => format!("echo exit.after.ms={ms} >> config/app.properties   # dies soon, on purpose"),
            Artifact::Serves { fail_every, delay_ms } => {
                format!("printf 'fail.every={fail_every}\\ndelay.ms={delay_ms}\\n' >> config/app.properties   # how it serves, on purpose")
            }
            Artifact::Broken => "echo fail.ready=true >> config/app.properties   # broken on purpose".to_owned(),
            Artifact::BrokenOn(host) => {
                let address = &self.host(host).spec.address;
                format!(
                    "if grep -qx 'http.address={address}' config/app.properties; then echo fail.ready=true >> config/app.properties; fi"
                )
            }
        };
        let mut lines: Vec<&str> = demo.lines().collect();
        let at = lines.iter().position(|l| l.starts_with("cd -P .")).expect("demo start.sh changes to its release folder");
        lines.insert(at + 1, &sabotage);
        lines.join("\n") + "\n"
    }

    fn artifact_dir(&self) -> PathBuf {
        self.root.join("repo").join(GROUP.replace('.', "/")).join(APP)
    }

    /// maven-metadata.xml as an upload leaves it: `<latest>` and `<release>` are the
    /// last published (release: the last that is not a SNAPSHOT).
    fn write_metadata(&self) {
        let latest = self.published.last().expect("something was published");
        let release = self.published.iter().rev().find(|v| !v.ends_with("-SNAPSHOT"));
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>{GROUP}</groupId>\n  <artifactId>{APP}</artifactId>\n  \
             <versioning>\n    <latest>{latest}</latest>\n"
        );
        if let Some(release) = release {
            xml.push_str(&format!("    <release>{release}</release>\n"));
        }
        xml.push_str("    <versions>\n");
        for version in &self.published {
            xml.push_str(&format!("      <version>{version}</version>\n"));
        }
        xml.push_str("    </versions>\n    <lastUpdated>20260101000000</lastUpdated>\n  </versioning>\n</metadata>\n");
        fs::write(self.artifact_dir().join("maven-metadata.xml"), xml).expect("maven-metadata.xml");
    }

    // ---- the configuration repository ----------------------------------------------

    fn write_config(&self, shape: &WorldBuilder, repository: &str) {
        let mut kai = format!("[repository]\nurl = \"{repository}\"\ngroup = \"{GROUP}\"\n");
        if shape.credentials {
            kai.push_str("username_env = \"KAI_TEST_REPO_USER\"\npassword_env = \"KAI_TEST_REPO_PASSWORD\"\n");
        }
        if let Some(keep) = shape.keep_releases {
            kai.push_str(&format!("\n[defaults]\nkeep_releases = {keep}\n"));
        }
        self.write_file("kai.toml", &kai);

        let mut env = String::new();
        match &self.fleet {
            None => {
                env.push_str("transport = \"local\"\n\n[hosts]\n");
                for host in &self.hosts {
                    env.push_str(&format!("{} = \"{}\"\n", host.name, host.address));
                }
            }
            Some(fleet) => {
                env.push_str(&format!(
                    "transport = \"ssh\"\nssh_config = {}\nknown_hosts = {}\n\n[hosts]\n",
                    toml_string(&fleet.ssh_config.display().to_string()),
                    toml_string(&fleet.known_hosts.display().to_string())
                ));
                for host in &self.hosts {
                    let root = self.root.join(".kai/hosts").join(&host.name);
                    env.push_str(&format!(
                        "{} = {{ address = \"{}\", port = {}, root = {} }}\n",
                        host.name,
                        host.address,
                        fleet.port,
                        toml_string(&root.display().to_string())
                    ));
                }
            }
        }
        // The proxy host: on this machine, or reached like the app hosts, through the
        // fleet's sshd (on the first host's address).
        let lb = match &self.fleet {
            None => "lb = \"127.0.0.1\"".to_owned(),
            Some(fleet) => format!("lb = {{ address = \"{}\", port = {} }}", self.hosts[0].address, fleet.port),
        };
        match &shape.balancer {
            None => env.push_str("\n[balancer]\nkind = \"none\"\n"),
            Some(section) => env.push_str(&format!("{lb}\n\n[balancer]\n{section}\n")),
        }
        self.write_file(&format!("environments/{ENV}.toml"), &env);

        let port = self.port;
        let mut app = format!(
            "artifact = \"{APP}\"\npackaging = \"tar.gz\"\nuser = \"{}\"\nhome = \"~\"\nstart = \"bin/start.sh\"\n\
             stop = \"bin/stop.sh\"\nproperties_file = \"config/app.properties\"\n{}\n[properties]\n\"app.name\" = \"{{app}}\"\n\
             \"app.version\" = \"{{version}}\"\n\"http.address\" = \"{{address}}\"\n\"http.port\" = {port}\n\
             \"greeting\" = \"hello from {{host}}\"\n",
            self.user,
            shape.app_keys.iter().map(|k| format!("{k}\n")).collect::<String>()
        );
        for (key, value) in &shape.properties {
            app.push_str(&format!("{} = {}\n", toml_string(key), toml_string(value)));
        }
        app.push_str(&format!(
            "\n[health]\nhttp = \"http://{{address}}:{port}/ready\"\ntimeout = \"{HEALTH_TIMEOUT}\"\nstable = \"{}\"\n",
            shape.stable.unwrap_or(HEALTH_STABLE)
        ));
        let names =
            |standby: bool| self.hosts.iter().filter(|h| h.standby == standby).map(|h| toml_string(&h.name)).collect::<Vec<_>>().join(", ");
        app.push_str(&format!("\n[env.{ENV}]\nservers = [{}]\nstandby = [{}]\n", names(false), names(true)));
        self.write_file(&format!("apps/{APP}.toml"), &app);
    }

    /// Writes a file of the configuration repository.
    pub fn write_file(&self, relative: &str, contents: &str) {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().expect("a file in a folder")).expect("the file's folder");
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Replaces `from` (which must be there) with `to` in a file of the configuration repository.
    #[track_caller]
    pub fn edit_file(&self, relative: &str, from: &str, to: &str) {
        let path = self.root.join(relative);
        let text = read(&path);
        assert!(text.contains(from), "{from:?} is not in {relative}");
        fs::write(&path, text.replace(from, to)).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Appends `line` to a file of the configuration repository; returns its line number.
    pub fn append_line(&self, relative: &str, line: &str) -> usize {
        let path = self.root.join(relative);
        let mut text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        fs::write(&path, &text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        text.lines().count()
    }

    // ---- cleaning up ----------------------------------------------------------------

    /// Stops every service of this world: each host's `current/bin/stop.sh`, then a KILL
    /// for whatever still works in here (a pid file may be gone or stale: the world's
    /// processes are found by their working folder or executable).
    fn stop_services(&self) {
        for host in self.hosts() {
            let current = host.home().join("current");
            if current.join("bin/stop.sh").is_file() {
                let _ = Command::new(current.join("bin/stop.sh"))
                    .current_dir(&current)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        kill_processes_under(&self.base);
    }
}

impl Drop for World {
    /// Nothing of the world may outlive it, pass or fail: its services are stopped, and
    /// a process still running from any removed world (of this test or one before)
    /// fails the test that finds it, once it is killed.
    fn drop(&mut self) {
        self.stop_services();
        if let Some(mut http) = self.http.take() {
            let _ = http.kill();
            let _ = http.wait();
        }
        let orphans = kill_processes_of_removed_worlds();
        if !std::thread::panicking() {
            assert!(orphans.is_empty(), "processes of removed test worlds were still running (a test left them): {orphans:?}");
        }
    }
}

/// Kills every process whose working folder or executable is `dir` or below it; what
/// each was (`pid command`).
pub fn kill_processes_under(dir: &Path) -> Vec<String> {
    kill_processes(|path| path.starts_with(dir))
}

/// Kills every process running in a test world's folder that no longer exists (or was
/// removed under it); what each was.
pub fn kill_processes_of_removed_worlds() -> Vec<String> {
    kill_processes(|path| {
        let text = path.to_string_lossy();
        let Some(at) = text.find("/kai-e2e-") else { return false };
        let world = text[at + 1..].split('/').next().unwrap_or_default();
        let world = world.strip_suffix(" (deleted)").unwrap_or(world);
        text.ends_with(" (deleted)") || !Path::new(&text[..at]).join(world).exists()
    })
}

fn kill_processes(doomed: impl Fn(&Path) -> bool) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut killed = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let links = [fs::read_link(entry.path().join("cwd")), fs::read_link(entry.path().join("exe"))];
        if links.iter().flatten().any(|p| doomed(p)) {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let _ = Command::new("kill").args(["-KILL", &pid]).stderr(Stdio::null()).status();
            killed.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned()));
        }
    }
    // Gone once its folder can no longer be read (a zombie's cannot).
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && killed.iter().any(|(pid, _)| fs::read_link(format!("/proc/{pid}/cwd")).is_ok()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    killed.into_iter().map(|(pid, command)| format!("{pid} {command}")).collect()
}

static RUNS: AtomicU32 = AtomicU32::new(0);
static WORLDS: AtomicU32 = AtomicU32::new(0);

/// `count` loopback addresses no other world uses, and a port free on all of them.
fn network(count: usize) -> (Vec<Ipv4Addr>, u16) {
    let process = u8::try_from(std::process::id() % 250 + 1).expect("below 251");
    for _ in 0..50 {
        let world = u8::try_from(WORLDS.fetch_add(1, Ordering::Relaxed) % 256).expect("below 256");
        let addresses: Vec<Ipv4Addr> =
            (1..=count).map(|host| Ipv4Addr::new(127, process, world, u8::try_from(host).expect("at most 254 hosts"))).collect();
        let Ok(probe) = TcpListener::bind("127.0.0.1:0") else { continue };
        let Ok(port) = probe.local_addr().map(|a| a.port()) else { continue };
        let held: Vec<_> = addresses.iter().map_while(|a| TcpListener::bind((*a, port)).ok()).collect();
        if held.len() == count {
            return (addresses, port);
        }
    }
    panic!("no free loopback addresses and port");
}

// ---- small helpers --------------------------------------------------------------------

fn demo_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/app/bin").join(name)
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).expect("write a script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("make a script executable");
}

pub fn sha256(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().expect("sha256sum runs");
    assert!(out.status.success(), "sha256sum {}", file.display());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_owned()
}

/// The names in a folder, sorted; none when it does not exist.
fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// A TOML basic string holding `value` literally.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
