//! Long-lived shells: a host's scripts go to a shell that is already running there,
//! one after the other on its standard input, instead of each opening a session and
//! starting a shell (and, over SSH, a login shell and a channel) of its own.
//!
//! A script goes as one *frame*, a brace group the shell reads whole before it runs
//! any of it:
//!
//! ```text
//! { printf '%s-go\n' TOKEN; exec 3<&0; kai_guard() { … }
//! (
//! <script>
//! ) </dev/null 3<&- & kai_job=$!
//! (exec <&3 3<&- >/dev/null 2>&1; kai_guard "$kai_job" HOME) & kai_guard=$!
//! wait "$kai_job"; kai_rc=$?; kill "$kai_guard"; wait "$kai_guard"
//! printf '\n%s-done %d\n' TOKEN "$kai_rc"; printf '\n%s-done\n' TOKEN >&2; }
//! ```
//!
//! The script runs in a subshell, so its functions, variables and `cd` end with it and
//! its `exit` ends the subshell (the frame's status), never the shell; its standard
//! input is never the shell's (`/dev/null`, or a file on a local host), so nothing a
//! command reads can be taken for the next frame. kai writes a frame only when the
//! previous one has printed its end on both streams: the shell's input holds exactly
//! one frame at a time, whatever the shell reads ahead. The end lines carry a fresh
//! random token, as a script's own markers do.
//!
//! A script never outlives the kai that sent it. While it runs, a *guard* waits on the
//! shell's input, where kai writes nothing until the frame has ended: when that input
//! ends (kai was killed, the connection broke, or kai gave up on the frame past its
//! limit and closed it), the guard stops the script and everything it started that is
//! still below it in its session (TERM, then KILL after 5 s; a service that a start
//! script detached with `setsid` is the app's, and runs on), and, when the app home holds a deploy
//! lock, writes `.kai/lock/abandoned` saying when: the next run knows the step in
//! progress was cut, not finished. A frame past its limit therefore closes the
//! shell's input first and gives the guard time before the shell itself is stopped;
//! a shell that ended is never reused, and a shell taken from the pool that ended
//! before the frame's first line (`-go`) is replaced by a new one: it went stale while
//! idle, and nothing of the frame ran.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Output, TransportError};

pub(super) type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub(super) type Writer = Box<dyn AsyncWrite + Send + Unpin>;
/// What a [`Process`] method gives back.
pub(super) type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The process running a shell, as its transport knows it.
pub(super) trait Process: Send {
    /// How it ended: its exit status (`None`: a signal), or why that is unknown (the
    /// connection broke).
    fn wait(self: Box<Self>) -> Pending<Result<Option<i32>, String>>;
    /// Stops it and what it started, its input closed already: the guard of a frame
    /// under way stops the script, then the shell ends; one that does not is made to.
    fn stop(self: Box<Self>) -> Pending<()>;
}

/// How long a shell whose outputs closed may take to end; also how long a guard gives a
/// script between TERM and KILL.
pub(super) const ENDING: Duration = Duration::from_secs(5);

/// A running shell reading frames on its standard input.
pub(super) struct Shell {
    stdin: Writer,
    stdout: Reader,
    stderr: Reader,
    process: Box<dyn Process>,
}

/// How one frame went.
enum Frame {
    /// It printed its end: the script's output and status; the shell is free again.
    Done(Output, Shell),
    /// The shell ended first: what it printed, and how it ended; `started`: whether
    /// the frame had begun.
    Ended { stdout: Vec<u8>, stderr: Vec<u8>, status: Result<Option<i32>, String>, started: bool },
    /// Past the limit; the shell was stopped. What had arrived.
    Cut(Output),
    /// It printed more than [`super::MAX_OUTPUT`]; the shell was stopped.
    TooMuch,
}

impl Shell {
    pub fn new(stdin: Writer, stdout: Reader, stderr: Reader, process: Box<dyn Process>) -> Shell {
        Shell { stdin, stdout, stderr, process }
    }

    /// Runs `job` in a subshell, for at most `limit`.
    async fn run(mut self, job: &Job<'_>, limit: Duration) -> Frame {
        let token = super::token();
        let frame = frame(job, &token);
        let (go, out_end, err_end) = (format!("{token}-go\n"), format!("\n{token}-done "), format!("\n{token}-done\n"));
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let exchanged = tokio::time::timeout(limit, async {
            // A shell that ended cannot take the frame; its end shows on its outputs.
            let _ = self.stdin.write_all(frame.as_bytes()).await;
            let _ = self.stdin.flush().await;
            tokio::join!(
                read_until(&mut self.stdout, &mut stdout, &out_end, true),
                read_until(&mut self.stderr, &mut stderr, &err_end, false)
            )
        })
        .await;
        match exchanged {
            Ok((Read::TooMuch, _) | (_, Read::TooMuch)) => {
                drop(self.stdin);
                self.process.stop().await;
                Frame::TooMuch
            }
            Ok((Read::End(code), Read::End(_))) => {
                let at = find(&stdout, out_end.as_bytes()).unwrap_or(stdout.len());
                stdout.truncate(at);
                skip_past(&mut stdout, &go);
                let at = find(&stderr, err_end.as_bytes()).unwrap_or(stderr.len());
                stderr.truncate(at);
                let output = Output {
                    code,
                    stdout: String::from_utf8_lossy(&stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&stderr).into_owned(),
                };
                Frame::Done(output, self)
            }
            Ok(_) => {
                drop(self.stdin);
                // Its outputs are closed: it has ended, or is about to; a process that
                // closed them and lives on is stopped rather than waited for.
                let status = match tokio::time::timeout(ENDING, self.process.wait()).await {
                    Ok(status) => status,
                    Err(_) => Err("the shell closed its outputs but did not end; stopped".to_owned()),
                };
                let started = skip_past(&mut stdout, &go);
                Frame::Ended { stdout, stderr, status, started }
            }
            Err(_) => {
                // The guard sees the input end and stops the script.
                drop(self.stdin);
                self.process.stop().await;
                skip_past(&mut stdout, &go);
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                Frame::Cut(Output { code: None, stdout: text(&stdout), stderr: text(&stderr) })
            }
        }
    }
}

/// The guard of a frame (see the module's documentation): waits on standard input (the
/// shell's, where kai writes nothing while a frame runs); once it ends or says
/// anything, stops the script `$1` (while it is still the shell's: `$$` in a subshell is
/// the shell) and what runs below it in its session (a step's process groups: an app's
/// script under `timeout`, and what that started; not a service a start script
/// detached into a session of its own), and notes it in the lock of the app home `$2`
/// (when there is one). It holds neither of the shell's outputs (its redirections are an
/// `exec` in a subshell: a redirected function call would keep copies of them), so a
/// shell that ends under a script still shows as ended. A function of the shell's own,
/// defined in every frame.
const GUARD: &str = r#"kai_guard() {
  IFS= read -r kai_x
  kai_pids=$(ps -e -o pid= -o ppid= -o sid= 2>/dev/null | awk -v r="$1" -v sh="$$" '{ p[$1] = $2; s[$1] = $3 } END { if (p[r] != sh) exit; for (k in p) { q = k; n = 0; while (q != r && (q in p) && n++ < 1000) q = p[q]; if (q == r && s[k] == s[r]) print k } }')
  [ -n "$kai_pids" ] || return 0
  kill -TERM $kai_pids 2>/dev/null
  if [ -n "$2" ] && [ -d "$2/.kai/lock" ]; then date -u +%Y-%m-%dT%H:%M:%SZ > "$2/.kai/lock/abandoned"; fi
  kai_n=0; while [ "$kai_n" -lt 50 ] && kill -0 $kai_pids 2>/dev/null; do sleep 0.1; kai_n=$((kai_n + 1)); done
  kill -KILL $kai_pids 2>/dev/null
}"#;

/// The text kai writes for one script (see the module's documentation); `home`: the
/// app home the script enters, as a shell word.
fn frame(job: &Job<'_>, token: &str) -> String {
    let Job { script, stdin, home } = job;
    let home = home.unwrap_or("''");
    format!(
        "{{ printf '%s-go\\n' {token}; exec 3<&0; {GUARD}\n(\n{script}\n) <{stdin} 3<&- & kai_job=$!\n\
         (exec <&3 3<&- >/dev/null 2>&1; kai_guard \"$kai_job\" {home}) & kai_guard=$!\n\
         wait \"$kai_job\"; kai_rc=$?; kill \"$kai_guard\" 2>/dev/null; wait \"$kai_guard\" 2>/dev/null\n\
         printf '\\n%s-done %d\\n' {token} \"$kai_rc\"; printf '\\n%s-done\\n' {token} >&2; }}\n"
    )
}

/// What a frame runs: `script`, reading `stdin` (a shell word: `/dev/null`, a quoted
/// path), in the app home `home` (a shell word, [`Access::home_word`]) when it enters one.
///
/// [`Access::home_word`]: kai_core::shell::session::Access::home_word
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub script: &'a str,
    pub stdin: &'a str,
    pub home: Option<&'a str>,
}

/// Drops everything up to and including `line` (what the shell printed before the
/// frame began); whether it was there.
fn skip_past(bytes: &mut Vec<u8>, line: &str) -> bool {
    match find(bytes, line.as_bytes()) {
        Some(at) => {
            bytes.drain(..at + line.len());
            true
        }
        None => false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How one stream of a frame ended.
enum Read {
    /// It printed the frame's end (with `status`, its exit status).
    End(Option<i32>),
    /// The stream ended first.
    Closed,
    /// It printed more than [`super::MAX_OUTPUT`]: a host is not read without a bound.
    TooMuch,
}

/// Reads into `into` until it holds `end` (and, with `status`, the number after it up
/// to its newline), at most [`super::MAX_OUTPUT`] bytes.
async fn read_until(pipe: &mut Reader, into: &mut Vec<u8>, end: &str, status: bool) -> Read {
    let end = end.as_bytes();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let scan = into.len().saturating_sub(end.len() + 16);
        let Ok(n) = pipe.read(&mut chunk).await else { return Read::Closed };
        if n == 0 {
            return Read::Closed;
        }
        if into.len() + n > super::MAX_OUTPUT {
            return Read::TooMuch;
        }
        into.extend_from_slice(&chunk[..n]);
        let Some(at) = find(&into[scan..], end).map(|i| scan + i) else { continue };
        if !status {
            return Read::End(None);
        }
        let rest = &into[at + end.len()..];
        if let Some(line) = rest.iter().position(|b| *b == b'\n') {
            let code = std::str::from_utf8(&rest[..line]).ok().and_then(|s| s.trim().parse::<i32>().ok());
            return Read::End(code.filter(|c| *c < 128));
        }
    }
}

/// Where a shell runs and how it was entered: the host, the login, the entry command.
type Key = (String, Option<String>, String);

/// Idle shells by host and login, each with its entry command.
type Idle = HashMap<(String, Option<String>), Vec<(String, Shell)>>;

/// The idle shells of a transport, by host, login and entry.
pub(super) struct Pool {
    idle: Mutex<Idle>,
    /// Idle shells kept per host and login (over SSH each holds a channel, and sshd
    /// allows 10 a connection by default).
    keep: usize,
}

impl Pool {
    pub fn new(keep: usize) -> Pool {
        Pool { idle: Mutex::default(), keep: keep.max(1) }
    }

    fn take(&self, key: &Key) -> Option<Shell> {
        let mut idle = self.idle.lock().ok()?;
        let shells = idle.get_mut(&(key.0.clone(), key.1.clone()))?;
        let at = shells.iter().rposition(|(entry, _)| *entry == key.2)?;
        Some(shells.remove(at).1)
    }

    fn give(&self, key: Key, shell: Shell) {
        let Ok(mut idle) = self.idle.lock() else { return };
        let shells = idle.entry((key.0, key.1)).or_default();
        if shells.len() >= self.keep {
            // The one idle longest goes (its input closed, it ends).
            shells.remove(0);
        }
        shells.push((key.2, shell));
    }

    /// Every idle shell ends (their inputs are closed).
    pub fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Runs `job` in a shell entered with `entry` on `host` as `login`, for at most
    /// `limit`: an idle shell of the pool, else one `spawn` starts. Its output as a
    /// shell running the script alone would give it.
    pub async fn run<F, Fut>(
        &self,
        (host, login, entry): (&str, Option<&str>, &str),
        job: Job<'_>,
        limit: Duration,
        spawn: F,
    ) -> Result<Output, TransportError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Shell, TransportError>>,
    {
        let key: Key = (host.to_owned(), login.map(str::to_owned), entry.to_owned());
        loop {
            let (shell, reused) = match self.take(&key) {
                Some(shell) => (shell, true),
                None => (spawn().await?, false),
            };
            match shell.run(&job, limit).await {
                Frame::Done(output, shell) => {
                    self.give(key, shell);
                    return Ok(output);
                }
                Frame::Ended { started: false, .. } if reused => continue,
                Frame::Ended { stdout, stderr, status, .. } => {
                    let code = status.map_err(|reason| TransportError::ConnectionLost { host: host.to_owned(), reason })?;
                    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                    return Ok(Output { code, stdout: text(stdout), stderr: text(stderr) });
                }
                Frame::Cut(partial) => return Err(TransportError::Timeout { host: host.to_owned(), limit, partial }),
                Frame::TooMuch => return Err(TransportError::TooMuch { host: host.to_owned() }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_one_brace_group_and_its_script_a_subshell() {
        let text = frame(&Job { script: "kai_enter ~a\necho hi", stdin: "/dev/null", home: Some("~a") }, "T");
        assert!(text.starts_with("{ printf '%s-go\\n' T; exec 3<&0; kai_guard() {"), "{text}");
        assert!(
            text.contains(
                "}\n(\nkai_enter ~a\necho hi\n) </dev/null 3<&- & kai_job=$!\n(exec <&3 3<&- >/dev/null 2>&1; kai_guard \"$kai_job\" ~a) &"
            ),
            "{text}"
        );
        assert!(text.ends_with(">&2; }\n"));
    }
}
