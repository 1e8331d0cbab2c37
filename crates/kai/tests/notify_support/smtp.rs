//! A real SMTP server (aiosmtpd, through `smtp_server.py`) on a free loopback port,
//! stopped when dropped. Every message it accepts is a JSON file the test reads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/notify_support/smtp_server.py");

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    mailbox: PathBuf,
}

/// The login the server accepts, when it requires one.
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

impl SmtpServer {
    /// Starts the server writing into `mailbox`; with `login`, AUTH is required.
    pub fn start(mailbox: &Path, login: Option<Login<'_>>) -> SmtpServer {
        require_smtp();
        std::fs::create_dir_all(mailbox).expect("mailbox folder");
        let log_path = mailbox.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("the SMTP server's log file");
        let mut command = Command::new("python3");
        command.arg(SCRIPT).arg(mailbox).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        if let Some(login) = login {
            command.env("KAI_TEST_SMTP_EXPECT_USER", login.user).env("KAI_TEST_SMTP_EXPECT_PASSWORD", login.password);
        }
        let mut child = command.spawn().expect("python3 runs");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("the SMTP server's first line");
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("the SMTP server did not start (first line {line:?}):\n{log}");
        };
        SmtpServer { child, port, mailbox: mailbox.to_owned() }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.mailbox)
            .expect("mailbox folder")
            .map(|e| e.expect("mailbox entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).expect("a message file")).expect("a JSON message")).collect()
    }

    /// Waits (briefly) until `count` messages are in, and returns them.
    pub fn wait_for(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tests that send mail need a real SMTP server (python3 with aiosmtpd); they fail
/// without it, saying what to install.
#[track_caller]
pub fn require_smtp() {
    let found = Command::new("python3").args(["-c", "import aiosmtpd"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        found.is_ok_and(|status| status.success()),
        "python3 with aiosmtpd is missing: pip install aiosmtpd (scripts/test.sh installs it, as root)"
    );
}

/// A loopback port with nothing listening on it: an SMTP server that is down.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
