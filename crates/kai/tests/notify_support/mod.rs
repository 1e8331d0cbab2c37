//! The harness of the notification tests: a configuration repository with two
//! local hosts and a folder Maven repository (as `demo/` has), the real `kai`
//! binary run with a pinned HOME and user, a real SMTP server and a local webhook
//! receiver.

pub mod smtp;
pub mod webhook;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

pub use smtp::{closed_port, require_smtp, Login, SmtpServer};
pub use webhook::{Answer, WebhookReceiver};

/// The user every run of kai is pinned to.
pub const USER: &str = "tester";
/// The variables the test configurations name for the credentials and the URL.
pub const SMTP_USER_VAR: &str = "KAI_TEST_SMTP_USER";
pub const SMTP_PASSWORD_VAR: &str = "KAI_TEST_SMTP_PASSWORD";
pub const WEBHOOK_URL_VAR: &str = "KAI_TEST_WEBHOOK_URL";

/// A temporary folder holding the configuration repository (`config/`, with its
/// folder Maven repository in `config/repo/`) and the HOME kai runs with.
pub struct Workspace {
    dir: tempfile::TempDir,
    /// Environment variables every run of kai gets (credentials, webhook URL).
    vars: Vec<(String, String)>,
}

/// What one run of kai did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything kai printed, for "never shows a secret" checks.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Workspace {
    /// The `demo` environment (local hosts web1 and web2, no balancer) and the
    /// `hello` app, without notifications until [`Workspace::set_notify`].
    pub fn new() -> Workspace {
        let workspace = Workspace { dir: tempfile::tempdir().expect("a temporary folder"), vars: Vec::new() };
        workspace.set_notify("", "");
        workspace.write(
            "config/apps/hello.toml",
            "artifact = \"hello\"\npackaging = \"tar.gz\"\nuser = \"hello\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\n\n\
             [env.demo]\nservers = [\"web1\", \"web2\"]\n",
        );
        std::fs::create_dir_all(workspace.path("home")).expect("HOME");
        workspace
    }

    /// Writes the `[notify]` tables of kai.toml and environments/demo.toml ("" for none).
    pub fn set_notify(&self, kai_notify: &str, env_notify: &str) {
        self.write(
            "config/kai.toml",
            &format!("[repository]\nurl = \"repo\"\ngroup = \"org.example.demo\"\n\n[defaults]\nkeep_releases = 3\n\n{kai_notify}"),
        );
        self.write(
            "config/environments/demo.toml",
            &format!(
                "transport = \"local\"\n\n[hosts]\nweb1 = \"127.0.0.1\"\nweb2 = \"127.0.0.1\"\n\n[balancer]\nkind = \"none\"\n\n{env_notify}"
            ),
        );
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("its folder");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Sets an environment variable for every later run of kai.
    pub fn var(&mut self, name: &str, value: &str) {
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    /// Publishes `hello` `version` into the folder repository; its start script
    /// succeeds, or (`starts = false`) fails as an app that cannot start does.
    pub fn publish(&self, version: &str, starts: bool) {
        let stage = self.path(&format!("stage-{version}"));
        let start = if starts { "#!/bin/sh\nexit 0\n" } else { "#!/bin/sh\necho 'port 18080 already in use' >&2\nexit 1\n" };
        self.write(&format!("stage-{version}/bin/start.sh"), start);
        self.write(&format!("stage-{version}/bin/stop.sh"), "#!/bin/sh\nexit 0\n");
        for script in ["start.sh", "stop.sh"] {
            let path = stage.join("bin").join(script);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let folder = self.path(&format!("config/repo/org/example/demo/hello/{version}"));
        std::fs::create_dir_all(&folder).expect("the version's folder");
        let artifact = folder.join(format!("hello-{version}.tar.gz"));
        let status = Command::new("tar").arg("-C").arg(&stage).arg("-czf").arg(&artifact).arg("bin").status().expect("tar runs");
        assert!(status.success(), "tar failed");
        let digest = Sha256::digest(std::fs::read(&artifact).expect("the artifact"));
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(folder.join(format!("hello-{version}.tar.gz.sha256")), hex).expect("the checksum");
        self.write_metadata();
    }

    fn write_metadata(&self) {
        let base = self.path("config/repo/org/example/demo/hello");
        let mut versions: Vec<String> = std::fs::read_dir(&base)
            .expect("the artifact folder")
            .map(|e| e.expect("an entry"))
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort();
        let list: String = versions.iter().map(|v| format!("      <version>{v}</version>\n")).collect();
        let newest = versions.last().cloned().unwrap_or_default();
        let mut file = std::fs::File::create(base.join("maven-metadata.xml")).expect("maven-metadata.xml");
        write!(
            file,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>org.example.demo</groupId>\n  <artifactId>hello</artifactId>\n  \
             <versioning>\n    <latest>{newest}</latest>\n    <release>{newest}</release>\n    <versions>\n{list}    </versions>\n  </versioning>\n</metadata>\n"
        )
        .expect("maven-metadata.xml written");
    }

    /// Runs the real kai with `--config <config>`, HOME in the workspace, USER
    /// pinned, and only PATH and the variables set with [`Workspace::var`].
    pub fn kai(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_kai"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("USER", USER)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(self.path("config"))
            .args(args)
            .output()
            .expect("kai runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// `[notify]` with email to `smtp` (`tls`), authenticating with the test variables,
/// and a webhook from the test variable.
pub fn notify_both(smtp: &str, tls: &str) -> String {
    format!("[notify]\n{}\n{}\n", email_line(smtp, tls), webhook_line())
}

/// `email = { ... }` to ops@ and dev@example.org.
pub fn email_line(smtp: &str, tls: &str) -> String {
    format!(
        "email = {{ smtp = \"{smtp}\", tls = \"{tls}\", from = \"kai@example.org\", to = [\"ops@example.org\", \"dev@example.org\"], \
         username_env = \"{SMTP_USER_VAR}\", password_env = \"{SMTP_PASSWORD_VAR}\" }}"
    )
}

pub fn webhook_line() -> String {
    format!("webhook = {{ url_env = \"{WEBHOOK_URL_VAR}\" }}")
}

/// This machine's name, as kai reads it.
pub fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into())
}
