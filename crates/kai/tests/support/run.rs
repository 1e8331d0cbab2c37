//! A run of kai: its exit, what it said; a run in the background; a disk filled.

use super::*;

/// A small file system mounted as a host's app home; unmounted on drop.
pub struct DiskLimit {
    pub(super) home: PathBuf,
}

impl Drop for DiskLimit {
    /// What runs from the small disk is stopped before it goes: once unmounted, a
    /// process's working folder no longer says which world it belongs to.
    fn drop(&mut self) {
        kill_processes_under(&self.home);
        let _ = Command::new("umount").arg("-l").arg(&self.home).status();
    }
}

/// kai running in the background.
pub struct Background {
    pub(super) child: std::process::Child,
    pub(super) args: Vec<String>,
    pub(super) out_path: PathBuf,
    pub(super) err_path: PathBuf,
    pub(super) started: Instant,
}

impl Background {
    /// Sends the signal `name` (`TERM`, `INT`, `HUP`, `KILL`) to kai.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().expect("kill runs");
        assert!(status.success(), "kill -{name} {}", self.child.id());
    }

    /// What kai printed on standard error so far.
    pub fn stderr(&self) -> String {
        read(&self.err_path)
    }

    /// Waits for kai to end (failing the test past the harness's limit).
    pub fn wait(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for kai") {
                break status;
            }
            if self.started.elapsed() > KAI_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("kai {} ran longer than {KAI_TIMEOUT:?}:\n{}", self.args.join(" "), read(&self.err_path));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let args = std::mem::take(&mut self.args);
        let run = Run { args, code, stdout: read(&self.out_path), stderr: read(&self.err_path), took: self.started.elapsed() };
        let _ = fs::remove_file(&self.out_path);
        let _ = fs::remove_file(&self.err_path);
        run
    }
}

/// A test that failed before it waited for kai (a `kai serve`, a long deploy) must not
/// leave it running.
impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until `done` holds (polling every 20 ms), failing the test with `what` after 30 s.
#[track_caller]
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How one run of kai ended.
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// stdout, then stderr: where a message is does not matter to most assertions.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit status of {self:?}");
        self
    }

    /// Asserts that stdout or stderr contains every one of `needles`.
    #[track_caller]
    pub fn assert_says(&self, needles: &[&str]) -> &Run {
        let output = self.output();
        for needle in needles {
            assert!(output.contains(needle), "expected {needle:?} in the output of {self:?}");
        }
        self
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "`kai {}` (exit {}, {:.1?})", self.args.join(" "), self.code, self.took)?;
        writeln!(f, "--- stdout\n{}", self.stdout)?;
        write!(f, "--- stderr\n{}", self.stderr)
    }
}
