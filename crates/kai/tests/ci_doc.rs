//! docs/ci.md kept true (issue 26): the shell of its GitHub Actions workflow (the `run:`
//! of each step, with the `env:` the workflow gives it) and of its GitLab CI job
//! (`script:`, then `after_script:`), read out of the page itself, run as the CI would
//! run them, with no terminal and stdin closed, against a real sshd
//! (`support::fleet`). The key and the hosts' keys are what the doc's commands write
//! to `~/.ssh`, nothing else: ssh finds `~` in the password database, not in `HOME`, so
//! each step runs in a mount namespace of its own where this world's home is mounted
//! on the user's home directory (root only, as scripts/test.sh runs the tests). Only
//! kai's installation (the `Install kai` step, `before_script`) is not run: the kai
//! built for these tests is on PATH instead.

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Artifact, World, ENV};
use yaml::Node;

const KAI: &str = env!("CARGO_BIN_EXE_kai");
/// The longest one CI step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

// ---- the page ----------------------------------------------------------------------------

fn page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced yaml block of docs/ci.md whose first line is `first`.
fn block(first: &str) -> String {
    let page = page();
    let mut blocks = page.split("```yaml\n").skip(1).map(|rest| rest.split("```").next().unwrap_or_default());
    let found = blocks.find(|b| b.lines().next().is_some_and(|l| l.starts_with(first)));
    found.unwrap_or_else(|| panic!("docs/ci.md has no ```yaml block starting with {first:?}")).to_owned()
}

fn github() -> Node {
    yaml::parse(&block("# .github/workflows/deploy.yml"))
}

fn gitlab() -> Node {
    yaml::parse(&block("# .gitlab-ci.yml"))
}

#[track_caller]
fn text<'n>(node: &'n Node, path: &[&str]) -> &'n str {
    let mut at = node;
    for key in path {
        at = at.get(key).unwrap_or_else(|| panic!("no {} in the workflow", path.join(".")));
    }
    at.str().unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

// ---- running the page's shell ------------------------------------------------------------

/// How one piece of CI shell ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A world whose environment reaches its hosts with the user's own ssh files (no
/// `ssh_config`, no `known_hosts` in environments/test.toml), and the secrets a CI
/// would hold for it.
struct Ci {
    world: World,
    /// Holds `kai`, first on PATH.
    bin: PathBuf,
    /// The user's home in the password database: where ssh looks for `~/.ssh`.
    passwd_home: String,
    ssh_key: String,
    known_hosts: String,
    scripts: std::sync::atomic::AtomicU32,
}

impl Ci {
    fn new(world: World) -> Ci {
        let uid = output(Command::new("id").arg("-u"));
        assert_eq!(
            uid.trim(),
            "0",
            "this test mounts the world's home over the user's home in a mount namespace of its own (unshare -m): run it as root (scripts/test.sh does)"
        );
        let passwd = output(Command::new("getent").args(["passwd", uid.trim()]));
        let passwd_home = passwd.trim().split(':').nth(5).expect("a home in the password database").to_owned();
        let env_file = world.root().join(format!("environments/{ENV}.toml"));
        let env_text = std::fs::read_to_string(&env_file).expect("the environment file");
        let own: String = env_text
            .lines()
            .filter(|l| !l.starts_with("ssh_config = ") && !l.starts_with("known_hosts = "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(own, env_text, "the world's environment named its own ssh files");
        world.write_file(&format!("environments/{ENV}.toml"), &own);
        let bin = world.base().join("ci-bin");
        std::fs::create_dir_all(&bin).expect("the bin folder");
        std::os::unix::fs::symlink(KAI, bin.join("kai")).expect("kai on PATH");
        let fleet = world.fleet();
        let ssh_key = std::fs::read_to_string(fleet.dir.path().join("client_key")).expect("the client key");
        let known_hosts = std::fs::read_to_string(&fleet.known_hosts).expect("the fleet's known_hosts");
        Ci { world, bin, passwd_home, ssh_key, known_hosts, scripts: Default::default() }
    }

    fn home(&self) -> &Path {
        self.world.home_dir()
    }

    /// The CI's workspace: the checkout of the configuration repository.
    fn workspace(&self) -> &Path {
        self.world.root()
    }

    /// Runs `script` with `shell` (`bash -e`, …) in the workspace: no terminal (a
    /// session of its own), stdin closed, only `vars` and a CI's basic environment set,
    /// the world's home mounted on the user's home.
    fn shell(&self, shell: &[&str], script: &str, vars: &BTreeMap<String, String>) -> Ran {
        let n = self.scripts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.world.base().join(format!("ci-step-{n}.sh"));
        std::fs::write(&file, script).expect("the step's script");
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
        let (out, err) = (file.with_extension("out"), file.with_extension("err"));
        let mut child = Command::new("setsid")
            .args(["--wait", "unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#)
            .arg("sh")
            .arg(self.home())
            .arg(&self.passwd_home)
            .args(shell)
            .arg(&file)
            .current_dir(self.workspace())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home())
            .env("USER", "ci")
            .env("LOGNAME", "ci")
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .env("CI", "true")
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("the step's stdout"))
            .stderr(std::fs::File::create(&err).expect("the step's stderr"))
            .spawn()
            .expect("setsid and unshare (util-linux) start");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for a step") {
                break status;
            }
            if started.elapsed() > STEP_TIMEOUT {
                let _ = child.kill();
                panic!("a CI step ran longer than {STEP_TIMEOUT:?}:\n{script}\n{}", read(&err));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ran { code: status.code().unwrap_or(-1), stdout: read(&out), stderr: read(&err) }
    }

    /// The GitHub workflow run by hand with these inputs: every step after `Install
    /// kai` that has a `run:`, each in its own `bash -e` as the runner does, with the
    /// job's and the step's `env:` (their `${{ }}` worked out), a step without `if:`
    /// skipped once one failed. Each step's name and how it ended.
    fn github(&self, environment: &str, release: &str) -> Vec<(String, Ran)> {
        let workflow = github();
        let job = workflow.get("jobs").and_then(|j| j.get("deploy")).expect("jobs.deploy");
        let inputs = BTreeMap::from([("environment", environment), ("release", release)]);
        let secrets = BTreeMap::from([("DEPLOY_SSH_KEY", self.ssh_key.as_str()), ("DEPLOY_KNOWN_HOSTS", self.known_hosts.as_str())]);
        let evaluate = |value: &str| expressions(value, &inputs, &secrets);
        let job_env: Vec<(String, String)> = job
            .get("env")
            .map(Node::map)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), evaluate(v.str().unwrap_or_default())))
            .collect();
        let steps = job.get("steps").map(Node::seq).expect("jobs.deploy.steps");
        let install = steps.iter().position(|s| s.get("name").and_then(Node::str) == Some("Install kai")).expect("an `Install kai` step");
        let mut ran: Vec<(String, Ran)> = Vec::new();
        for step in &steps[install + 1..] {
            let Some(run) = step.get("run").and_then(Node::str) else { continue };
            let name = step.get("name").and_then(Node::str).unwrap_or(run).to_owned();
            assert!(!run.contains("${{"), "step {name}: an expression in `run:` becomes shell text; give it through `env:`");
            match step.get("if").and_then(Node::str) {
                None if ran.iter().any(|(_, r)| r.code != 0) => continue,
                None | Some("always()") => {}
                Some(other) => panic!("step {name}: `if: {other}` is not understood here"),
            }
            let mut vars: BTreeMap<String, String> = job_env.iter().cloned().collect();
            for (key, value) in step.get("env").map(Node::map).unwrap_or_default() {
                vars.insert(key.clone(), evaluate(value.str().unwrap_or_default()));
            }
            ran.push((name, self.shell(&["bash", "-e"], run, &vars)));
        }
        ran
    }

    /// The GitLab job run by hand with these CI/CD variables: `script:` in one `bash`
    /// that stops at the first failing line, then `after_script:` in a new one.
    fn gitlab(&self, environment: &str, release: &str) -> (Ran, Ran) {
        let ci = gitlab();
        let job = ci.get("deploy").expect("the job deploy");
        let lines = |key: &str| -> String {
            let items = job.get(key).map(Node::seq).unwrap_or_else(|| panic!("deploy.{key}"));
            items.iter().map(|l| format!("{}\n", l.str().unwrap_or_else(|| panic!("deploy.{key}: a line of shell")))).collect()
        };
        let vars: BTreeMap<String, String> = [
            ("DEPLOY_ENV", environment),
            ("DEPLOY_RELEASE", release),
            ("DEPLOY_SSH_KEY", &self.ssh_key),
            ("DEPLOY_KNOWN_HOSTS", &self.known_hosts),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let script = self.shell(&["bash", "-eo", "pipefail"], &lines("script"), &vars);
        let after = self.shell(&["bash"], &lines("after_script"), &vars);
        (script, after)
    }

    /// A document the page's commands left in the workspace (and removes it).
    #[track_caller]
    fn take_json(&self, name: &str) -> Value {
        let path = self.workspace().join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name} was not written: {e}"));
        std::fs::remove_file(&path).expect("remove the document");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not one JSON document ({e}):\n{text}"))
    }
}

/// `value` with its `${{ inputs.X }}`, `${{ secrets.X }}` (empty when the CI holds no
/// such secret) and `${{ github.run_id }}` worked out; any other expression fails.
fn expressions(value: &str, inputs: &BTreeMap<&str, &str>, secrets: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").unwrap_or_else(|| panic!("an unclosed expression in {value:?}")) + at;
        let expression = rest[at + 3..end].trim();
        let got = match expression.split_once('.') {
            Some(("inputs", name)) => inputs.get(name).unwrap_or_else(|| panic!("no input {name}")).to_string(),
            Some(("secrets", name)) => secrets.get(name).copied().unwrap_or_default().to_owned(),
            Some(("github", "run_id")) => "1".to_owned(),
            _ => panic!("the expression {expression:?} is not understood here"),
        };
        out.push_str(&got);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn output(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[track_caller]
fn step<'r>(ran: &'r [(String, Ran)], name: &str) -> &'r Ran {
    &ran.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no step {name} ran: {:?}", ran.iter().map(|(n, _)| n).collect::<Vec<_>>()))
        .1
}

/// Each app of a deploy document: (app, from, to, result).
fn deployed(doc: &Value) -> Vec<(String, String, String, String)> {
    let field = |a: &Value, key: &str| a[key].as_str().unwrap_or("-").to_owned();
    doc["apps"]
        .as_array()
        .unwrap_or_else(|| panic!("no apps in {doc}"))
        .iter()
        .map(|a| (field(a, "app"), field(a, "from"), field(a, "to"), field(a, "result")))
        .collect()
}

/// What a status document says each host runs: (host, current).
fn currents(doc: &Value) -> Vec<(String, String)> {
    let hosts = doc["hosts"].as_array().unwrap_or_else(|| panic!("no hosts in {doc}"));
    hosts.iter().map(|h| (h["host"].as_str().unwrap_or("?").to_owned(), h["current"].as_str().unwrap_or("-").to_owned())).collect()
}

fn pair(host: &str, version: &str) -> (String, String) {
    (host.to_owned(), version.to_owned())
}

// ---- the tests ---------------------------------------------------------------------------

/// The promises the page makes about the workflows themselves, which a run by hand
/// cannot show: one deploy per environment, results kept whatever happened, secrets
/// kept out of the shell text and of other steps, strict host keys, kai installed from
/// this workspace's crate.
#[test]
fn the_workflows_keep_one_deploy_per_environment_and_their_results() {
    let workflow = github();
    let job = workflow.get("jobs").and_then(|j| j.get("deploy")).expect("jobs.deploy");
    assert_eq!(text(job, &["concurrency", "group"]), "kai-deploy-${{ inputs.environment }}");
    assert_eq!(text(job, &["concurrency", "cancel-in-progress"]), "false");
    assert_eq!(text(job, &["environment"]), "${{ inputs.environment }}");
    let steps = job.get("steps").map(Node::seq).expect("steps");
    let upload = steps
        .iter()
        .find(|s| s.get("uses").and_then(Node::str).is_some_and(|u| u.starts_with("actions/upload-artifact@")))
        .expect("an upload");
    assert_eq!(text(upload, &["if"]), "always()");
    assert_eq!(text(upload, &["with", "path"]), "deploy.json\nstatus.json\n");
    let with_key: Vec<&str> = steps
        .iter()
        .filter(|s| {
            s.get("env").is_some_and(|e| e.map().iter().any(|(_, v)| v.str().is_some_and(|v| v.contains("secrets.DEPLOY_SSH_KEY"))))
        })
        .filter_map(|s| s.get("name").and_then(Node::str))
        .collect();
    assert_eq!(with_key, ["SSH key and known_hosts"], "the key goes to one step");
    assert!(job.get("env").map(Node::map).unwrap_or_default().iter().all(|(_, v)| !v.str().unwrap_or_default().contains("secrets.")));
    let install = steps.iter().find(|s| s.get("name").and_then(Node::str) == Some("Install kai")).expect("Install kai");
    let sources = steps.iter().find(|s| s.get("with").and_then(|w| w.get("repository")).is_some()).expect("a checkout of kai");
    let crate_path = text(install, &["run"]).strip_prefix("cargo install --locked --path ").expect("cargo install --locked --path");
    let in_sources = crate_path.strip_prefix(&format!("{}/", text(sources, &["with", "path"]))).expect("the crate in kai's checkout");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(in_sources).join("Cargo.toml").is_file(),
        "{in_sources} is no crate of kai"
    );

    let ci = gitlab();
    let job = ci.get("deploy").expect("the job deploy");
    assert_eq!(text(job, &["resource_group"]), "kai-deploy-$DEPLOY_ENV");
    assert_eq!(text(job, &["environment", "name"]), "$DEPLOY_ENV");
    assert_eq!(text(job, &["artifacts", "when"]), "always");
    let kept: Vec<&str> =
        job.get("artifacts").and_then(|a| a.get("paths")).map(Node::seq).unwrap_or_default().iter().filter_map(Node::str).collect();
    assert_eq!(kept, ["deploy.json", "status.json"]);
    let before: Vec<&str> = job.get("before_script").map(Node::seq).unwrap_or_default().iter().filter_map(Node::str).collect();
    assert!(before.iter().any(|l| l.starts_with("cargo install --locked --path ") && l.ends_with("/crates/kai")), "{before:?}");

    for (name, yaml) in [("github", block("# .github/workflows/deploy.yml")), ("gitlab", block("# .gitlab-ci.yml"))] {
        for banned in ["StrictHostKeyChecking", "ssh-keyscan", "UserKnownHostsFile=/dev/null"] {
            assert!(!yaml.contains(banned), "the {name} workflow turns host key checking off ({banned})");
        }
    }
    let page = page();
    assert!(page.contains("target/debian/kai_<version>_<arch>.deb") && page.contains("scripts/package.sh"), "the Debian package");
}

/// Both workflows deploy, over a real sshd, with only what their commands wrote to
/// `~/.ssh`; the JSON kept says what was deployed, `kai status` says where it runs;
/// kai prints a short log; the exit codes the page lists are what the jobs get.
#[test]
fn the_commands_of_both_workflows_deploy_over_ssh_and_keep_the_results() {
    support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").publish("1.1.0").build();
    world.protect();
    let mut ci = Ci::new(world);

    // Without the doc's key and known_hosts, the hosts cannot be reached at all.
    let bare = ci.shell(&["bash", "-e"], "kai status test --json > status.json\n", &BTreeMap::new());
    assert_eq!(bare.code, 1, "{bare:?}");
    let unread = ci.take_json("status.json");
    assert!(unread["problems"].as_array().is_some_and(|p| p.iter().any(|p| p["problem"] == "unreachable")), "{unread}");

    // GitHub Actions: the newest is not asked for, 1.0.0 is.
    let ran = ci.github(ENV, "hello-1.0.0");
    let names: Vec<&str> = ran.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["SSH key and known_hosts", "Deploy", "Status"]);
    for (name, run) in &ran {
        assert_eq!(run.code, 0, "{name}: {run:?}");
    }
    for file in ["id_ed25519", "known_hosts"] {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(ci.home().join(".ssh").join(file)).expect("written").permissions());
        assert_eq!(mode & 0o777, 0o600, "~/.ssh/{file}");
    }
    let deploy = step(&ran, "Deploy");
    assert!(!deploy.stderr.contains('\u{1b}'), "no terminal, no escapes: {deploy:?}");
    let log_line = |l: &str, what: &str| l.split_once(' ').is_some_and(|(time, rest)| time.ends_with('Z') && rest.starts_with(what));
    assert!(deploy.stderr.lines().any(|l| log_line(l, "test hello staged on web1, web2 (")), "staged: {deploy:?}");
    for host in ["web1", "web2"] {
        let switched = format!("test hello {host} switched, healthy after ");
        assert!(deploy.stderr.lines().any(|l| log_line(l, &switched)), "{host} switched: {deploy:?}");
    }
    assert!(deploy.stderr.lines().count() <= 14, "a short log: {deploy:?}");
    let doc = ci.take_json("deploy.json");
    assert_eq!(
        (doc["command"].as_str(), doc["env"].as_str(), doc["ok"].as_bool(), doc["exit_code"].as_i64()),
        (Some("deploy"), Some("test"), Some(true), Some(0))
    );
    assert_eq!(deployed(&doc), [("hello".into(), "-".into(), "1.0.0".into(), "deployed".into())]);
    assert_eq!(currents(&ci.take_json("status.json")), [pair("web1", "1.0.0"), pair("web2", "1.0.0")]);

    // GitLab CI: a bare app name, its newest release.
    let (script, after) = ci.gitlab(ENV, "hello");
    assert_eq!((script.code, after.code), (0, 0), "{script:?}\n{after:?}");
    assert_eq!(deployed(&ci.take_json("deploy.json")), [("hello".into(), "1.0.0".into(), "1.1.0".into(), "deployed".into())]);
    assert_eq!(currents(&ci.take_json("status.json")), [pair("web1", "1.1.0"), pair("web2", "1.1.0")]);
    for host in ["web1", "web2"] {
        assert_eq!(ci.world.host(host).version().as_deref(), Some("1.1.0"), "{host} answers");
    }

    // --all: every app placed, at its newest release, which runs already.
    let ran = ci.github(ENV, "--all");
    assert_eq!(step(&ran, "Deploy").code, 0, "{:?}", step(&ran, "Deploy"));
    assert_eq!(deployed(&ci.take_json("deploy.json")), [("hello".into(), "1.1.0".into(), "1.1.0".into(), "up-to-date".into())]);
    ci.take_json("status.json");

    // 1: a release that fails its health check is put back; after_script still reports.
    ci.world.publish("1.2.0", Artifact::Broken);
    let (script, after) = ci.gitlab(ENV, "hello-1.2.0");
    assert_eq!((script.code, after.code), (1, 0), "{script:?}\n{after:?}");
    let doc = ci.take_json("deploy.json");
    assert_eq!((doc["ok"].as_bool(), doc["exit_code"].as_i64()), (Some(false), Some(1)));
    assert_eq!(deployed(&doc), [("hello".into(), "1.1.0".into(), "1.2.0".into(), "rolled-back".into())]);
    assert!(doc["apps"][0]["failure"]["host"].as_str() == Some("web1"), "{doc}");
    assert_eq!(currents(&ci.take_json("status.json")), [pair("web1", "1.1.0"), pair("web2", "1.1.0")]);

    // 2: nothing touched, the error document kept; Status still runs.
    let ran = ci.github(ENV, "helo-1.1.0");
    assert_eq!(
        ran.iter().map(|(n, r)| (n.as_str(), r.code)).collect::<Vec<_>>(),
        [("SSH key and known_hosts", 0), ("Deploy", 2), ("Status", 0)]
    );
    let doc = ci.take_json("deploy.json");
    assert_eq!((doc["error"]["kind"].as_str(), doc["error"]["exit_code"].as_i64()), (Some("usage"), Some(2)), "{doc}");
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("did you mean hello?")), "{doc}");
    ci.take_json("status.json");

    // 3: someone else's deploy holds the lock.
    ci.world.host("web2").hold_lock(ANN_LOCK);
    let ran = ci.github(ENV, "hello-1.0.0");
    assert_eq!(step(&ran, "Deploy").code, 3, "{:?}", step(&ran, "Deploy"));
    let doc = ci.take_json("deploy.json");
    assert_eq!(deployed(&doc), [("hello".into(), "-".into(), "1.0.0".into(), "locked".into())]);
    assert_eq!(doc["apps"][0]["locked_by"]["user"].as_str(), Some("ann"), "{doc}");
    assert_eq!(step(&ran, "Status").code, 1, "status marks the lock: {:?}", step(&ran, "Status"));
    assert_eq!(currents(&ci.take_json("status.json")), [pair("web1", "1.1.0"), pair("web2", "1.1.0")]);
}

/// The subset of YAML docs/ci.md is written in: block mappings and sequences, `|`
/// blocks, plain and quoted scalars, comments. Anything else fails the test, naming
/// the line, rather than being read wrong.
mod yaml {
    #[derive(Clone, Debug, PartialEq)]
    pub enum Node {
        Str(String),
        Seq(Vec<Node>),
        Map(Vec<(String, Node)>),
    }

    impl Node {
        pub fn get(&self, key: &str) -> Option<&Node> {
            self.map().iter().find(|(k, _)| k == key).map(|(_, v)| v)
        }

        pub fn str(&self) -> Option<&str> {
            match self {
                Node::Str(s) => Some(s),
                _ => None,
            }
        }

        pub fn seq(&self) -> &[Node] {
            match self {
                Node::Seq(items) => items,
                _ => &[],
            }
        }

        pub fn map(&self) -> &[(String, Node)] {
            match self {
                Node::Map(entries) => entries,
                _ => &[],
            }
        }
    }

    pub fn parse(text: &str) -> Node {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut at = 0;
        let node = block(&mut lines, &mut at, 0);
        skip_blank(&lines, &mut at);
        assert!(at == lines.len(), "yaml line {}: not read: {:?}", at + 1, lines.get(at));
        node
    }

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start_matches(' ').len()
    }

    fn skip_blank(lines: &[String], at: &mut usize) {
        while lines.get(*at).is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            *at += 1;
        }
    }

    fn block(lines: &mut [String], at: &mut usize, min: usize) -> Node {
        skip_blank(lines, at);
        let line = lines.get(*at).unwrap_or_else(|| panic!("yaml: a value is missing at the end")).clone();
        let level = indent(&line);
        assert!(level >= min, "yaml line {}: indented less than its key", *at + 1);
        if line.trim_start().starts_with("- ") {
            sequence(lines, at, level)
        } else {
            mapping(lines, at, level)
        }
    }

    fn sequence(lines: &mut [String], at: &mut usize, level: usize) -> Node {
        let mut items = Vec::new();
        loop {
            skip_blank(lines, at);
            let Some(line) = lines.get(*at).filter(|l| indent(l) == level && l.trim_start().starts_with("- ")).cloned() else { break };
            let rest = &line.trim_start()[2..];
            if key_value(rest).is_some() {
                lines[*at] = format!("{}{rest}", " ".repeat(level + 2));
                items.push(mapping(lines, at, level + 2));
            } else {
                items.push(Node::Str(scalar(&strip_comment(rest), *at)));
                *at += 1;
            }
        }
        Node::Seq(items)
    }

    fn mapping(lines: &mut [String], at: &mut usize, level: usize) -> Node {
        let mut entries = Vec::new();
        loop {
            skip_blank(lines, at);
            let Some(line) = lines.get(*at).filter(|l| indent(l) == level).cloned() else { break };
            let (key, value) =
                key_value(line.trim_start()).unwrap_or_else(|| panic!("yaml line {}: expected `key: value`: {line}", *at + 1));
            let value = strip_comment(value);
            *at += 1;
            let node = match value.as_str() {
                "" => {
                    skip_blank(lines, at);
                    assert!(lines.get(*at).is_some_and(|l| indent(l) > level), "yaml line {}: {key} has no value", *at);
                    block(lines, at, level + 1)
                }
                "|" => Node::Str(literal(lines, at, level)),
                _ => Node::Str(scalar(&value, *at)),
            };
            entries.push((key.to_owned(), node));
        }
        Node::Map(entries)
    }

    fn key_value(text: &str) -> Option<(&str, &str)> {
        let (key, after) = text.split_once(':')?;
        let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        (is_key && (after.is_empty() || after.starts_with(' '))).then(|| (key, after.trim()))
    }

    /// The lines of a `|` block: those indented more than its key, less their indent,
    /// with one newline at the end.
    fn literal(lines: &[String], at: &mut usize, level: usize) -> String {
        let mut body: Vec<&str> = Vec::new();
        let mut content = None;
        while let Some(line) = lines.get(*at) {
            if !line.trim().is_empty() {
                if indent(line) <= level {
                    break;
                }
                let by = *content.get_or_insert(indent(line));
                assert!(indent(line) >= by, "yaml line {}: a `|` block indented less than its first line", *at + 1);
                body.push(&line[by..]);
            } else {
                body.push("");
            }
            *at += 1;
        }
        while body.last() == Some(&"") {
            body.pop();
        }
        body.join("\n") + "\n"
    }

    /// `value` without a comment (` #` outside quotes).
    fn strip_comment(value: &str) -> String {
        let mut quote = None;
        for (i, c) in value.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') if i == 0 || value[..i].ends_with(' ') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '#') if i == 0 || value[..i].ends_with(' ') => return value[..i].trim_end().to_owned(),
                _ => {}
            }
        }
        value.trim_end().to_owned()
    }

    fn scalar(value: &str, line: usize) -> String {
        let flow = ['{', '[', '>', '&', '*', '!', '%', '@', '`'];
        assert!(!value.starts_with(flow), "yaml line {}: {value:?} is not read here", line + 1);
        if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            assert!(!inner.contains('\\'), "yaml line {}: escapes are not read here", line + 1);
            return inner.to_owned();
        }
        if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            return inner.replace("''", "'");
        }
        value.to_owned()
    }

    #[test]
    fn reads_the_subset_the_page_uses() {
        let text =
            "a: 1  # one\nb:\n  - x: \"q # not a comment\"\n    y: |\n      line 1\n\n      line 2\n  - plain ' text\nc:\n  d: 'it''s'\n";
        let node = parse(text);
        assert_eq!(node.get("a").and_then(Node::str), Some("1"));
        let b = node.get("b").map(Node::seq).expect("b");
        assert_eq!(b[0].get("x").and_then(Node::str), Some("q # not a comment"));
        assert_eq!(b[0].get("y").and_then(Node::str), Some("line 1\n\nline 2\n"));
        assert_eq!(b[1].str(), Some("plain ' text"));
        assert_eq!(node.get("c").and_then(|c| c.get("d")).and_then(Node::str), Some("it's"));
    }
}
