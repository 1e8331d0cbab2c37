//! The local transport: every host is a folder on this machine; the text is run by
//! `/bin/sh -c`, as sshd would hand it to a login shell, in shells kept for the run. The embedded default,
//! for trying kai and for tests; it runs the same plan the SSH transport runs.

use std::process::Stdio;
use std::time::Duration;

use super::shell::{Job, Pending, Pool, Process, Shell};
use super::{Output, Payload, Place, Transport, TransportError};

/// Every host is a folder here; a host's scripts go to shells kept running for the
/// run (see [`super::shell`]), each in its own process group.
pub struct LocalTransport {
    shells: Pool,
    /// Each host's folder (`root`): a host whose folder cannot be one is unreachable.
    roots: std::collections::BTreeMap<String, std::path::PathBuf>,
}

impl Default for LocalTransport {
    fn default() -> LocalTransport {
        LocalTransport { shells: Pool::new(8), roots: std::collections::BTreeMap::new() }
    }
}

impl LocalTransport {
    /// The hosts of `environment`, each its `root` folder.
    pub fn for_environment(environment: &kai_core::config::Environment) -> LocalTransport {
        let roots = environment.hosts.values().filter_map(|h| Some((h.name.clone(), std::path::PathBuf::from(h.root.as_ref()?)))).collect();
        LocalTransport { roots, ..LocalTransport::default() }
    }

    /// A local host is there when its folder is one, or can be made (the nearest part of
    /// its path that exists is a folder); nothing is created to find out.
    fn reachable(&self, place: &Place) -> Result<(), TransportError> {
        let Some(root) = self.roots.get(&place.host) else { return Ok(()) };
        let Some(there) = root.ancestors().find(|p| std::fs::symlink_metadata(p).is_ok()) else { return Ok(()) };
        if there.is_dir() {
            return Ok(());
        }
        let reason = format!("its folder {} cannot be one: {} is not a folder", root.display(), there.display());
        Err(TransportError::Unreachable { host: place.host.clone(), reason })
    }

    /// `text`, a whole command, as a frame of a kept `sh -s`, reading `stdin` (a shell word).
    async fn command(&self, place: &Place, text: &str, stdin: &str, limit: Duration) -> Result<Output, TransportError> {
        let home = place.access.home_word();
        let job = Job { script: text, stdin, home: home.as_deref() };
        self.shells.run((&place.host, None, "sh -s"), job, limit, || async { Self::spawn(place, "sh -s") }).await
    }

    /// A shell running `entry`, in a process group of its own: a Ctrl-C on kai's
    /// terminal is for kai, which stops safely; it must not kill a start script
    /// halfway. A timeout stops the group.
    fn spawn(place: &Place, entry: &str) -> Result<Shell, TransportError> {
        let spawn_error = |source| TransportError::Spawn { host: place.host.clone(), command: entry.to_owned(), source };
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            // `entry` is `Access::entry`'s text (its words quoted there); `exec` makes
            // the shell reading frames the process kai holds and stops.
            .arg(format!("exec {entry}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // Dropped (evicted while idle, given up on, or kai ending) its input closes:
            // an idle shell ends, a frame's guard stops the script first. Not killed
            // outright, which would leave the script to run on without its guard.
            .spawn()
            .map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
            unreachable!("the three pipes were asked for")
        };
        Ok(Shell::new(Box::new(stdin), Box::new(stdout), Box::new(stderr), Box::new(LocalShell(child))))
    }
}

struct LocalShell(tokio::process::Child);

impl Process for LocalShell {
    fn wait(mut self: Box<Self>) -> Pending<Result<Option<i32>, String>> {
        Box::pin(async move { self.0.wait().await.map(|s| s.code()).map_err(|e| e.to_string()) })
    }

    /// Its input is closed: the frame's guard stops the script and the shell ends.
    /// Whatever is left in its process group then (a shell that did not end) is killed.
    fn stop(mut self: Box<Self>) -> Pending<()> {
        Box::pin(async move {
            let group = self.0.id();
            let ended = tokio::time::timeout(super::shell::ENDING + Duration::from_secs(1), self.0.wait()).await.is_ok();
            if let Some(group) = group.filter(|_| !ended) {
                kill_group(group).await;
                let _ = self.0.wait().await;
            }
        })
    }
}

impl Transport for LocalTransport {
    async fn send(&self, place: &Place, text: &str, input: Payload<'_>, limit: Duration) -> Result<Output, TransportError> {
        self.reachable(place)?;
        match input {
            Payload::Script { real, .. } => {
                let script = String::from_utf8_lossy(real);
                let home = place.access.home_word();
                let job = Job { script: &script, stdin: "/dev/null", home: home.as_deref() };
                self.shells.run((&place.host, None, text), job, limit, || async { Self::spawn(place, text) }).await
            }
            // The file is here: the shell reads it itself, as the upload command's input.
            Payload::File(path) => {
                std::fs::metadata(path).map_err(|source| TransportError::Io { host: place.host.clone(), path: path.to_owned(), source })?;
                self.command(place, text, &kai_core::shell::command::quote(&path.display().to_string()), limit).await
            }
            Payload::Nothing => self.command(place, text, "/dev/null", limit).await,
        }
    }
}

/// KILL to every process of the group (the shell and whatever it started that is
/// still in it), without unsafe code: through `kill(1)`.
async fn kill_group(group: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use kai_core::shell::command::Command;
    use kai_core::shell::session::{parse_outputs, script, Access};

    use super::*;

    fn place() -> Place {
        Place::bare("h1")
    }

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_script_enters_the_home_and_keeps_arguments_literal() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home/app").display().to_string();
        let access = Access { home: Some(home.clone()), sudo: None };
        let hostile = "a b'c;$(touch pwned)";
        let commands = [Command::new(["sh", "-c", "pwd; printf '%s\\n' \"$1\"; cat", "sh", hostile]).stdin("in"), Command::new(["pwd"])];
        let refs: Vec<&Command> = commands.iter().collect();
        let text = script(&access, &refs, "TOK", &kai_core::shell::command::shown);
        let whole = LocalTransport::default()
            .send(&place(), &access.entry(), Payload::Script { real: text.as_bytes(), shown: &text }, LIMIT)
            .await
            .unwrap();
        let outputs = parse_outputs("TOK", &whole).unwrap();
        assert_eq!(outputs[0].stdout, format!("{home}\n{hostile}\nin\n"));
        assert_eq!(outputs[1].stdout, format!("{home}\n"));
        assert!(!Path::new(&home).join("pwned").exists());
    }

    #[tokio::test]
    async fn a_script_stops_after_the_first_failure() {
        let access = Access { home: None, sudo: None };
        let commands = [Command::new(["true"]), Command::new(["sh", "-c", "echo no >&2; exit 3"]), Command::new(["touch", "/never"])];
        let refs: Vec<&Command> = commands.iter().collect();
        let text = script(&access, &refs, "TOK", &kai_core::shell::command::shown);
        let whole = LocalTransport::default()
            .send(&place(), &access.entry(), Payload::Script { real: text.as_bytes(), shown: &text }, LIMIT)
            .await
            .unwrap();
        let outputs = parse_outputs("TOK", &whole).unwrap();
        assert_eq!(outputs.len(), 2);
        assert_eq!((outputs[1].code, outputs[1].stderr.as_str()), (Some(3), "no\n"));
    }

    async fn run(transport: &LocalTransport, text: &str) -> Output {
        let script = Payload::Script { real: text.as_bytes(), shown: text };
        transport.send(&place(), "sh -s", script, LIMIT).await.unwrap()
    }

    #[tokio::test]
    async fn scripts_go_to_one_running_shell_and_leave_nothing_behind_in_it() {
        let transport = LocalTransport::default();
        let first = run(&transport, "cd /tmp; x=set; kai_f() { :; }; echo $$ >&2; exit 7").await;
        assert_eq!(first.code, Some(7), "a script's exit is its status");
        let second = run(&transport, "echo \"$PWD|${x-unset}|$(command -v kai_f || echo none)\"; echo $$ >&2; cat").await;
        assert_eq!(second.code, Some(0));
        assert_eq!(first.stderr, second.stderr, "the same shell ran both");
        assert_ne!(second.stdout.split('|').next(), Some("/tmp"), "{}", second.stdout);
        assert!(second.stdout.ends_with("|unset|none\n"), "{}", second.stdout);
        let printed = run(&transport, "printf 'no newline'; printf 'on stderr' >&2").await;
        assert_eq!((printed.stdout.as_str(), printed.stderr.as_str()), ("no newline", "on stderr"));
    }

    #[tokio::test]
    async fn a_shell_that_ended_while_idle_is_replaced_and_one_that_ends_in_a_script_says_how() {
        let transport = LocalTransport::default();
        let pid = run(&transport, "echo $$").await.stdout.trim().to_owned();
        let killed = tokio::process::Command::new("kill").args(["-KILL", &pid]).status().await.unwrap();
        assert!(killed.success());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let next = run(&transport, "echo $$").await;
        assert_eq!(next.code, Some(0), "{next:?}");
        assert_ne!(next.stdout.trim(), pid, "a new shell");
        let ended = run(&transport, "echo bye; kill -TERM $$").await;
        assert_eq!((ended.code, ended.stdout.as_str()), (None, "bye\n"), "killed by a signal, as a shell of its own would be");
        assert_eq!(run(&transport, "echo again").await.stdout, "again\n");
    }

    #[tokio::test]
    async fn an_upload_reads_the_file_and_nothing_of_it_reaches_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("it's a file");
        std::fs::write(&file, "touch pwned\nexit 3\n").unwrap();
        let transport = LocalTransport::default();
        let copy = format!("cd {} && cat > copy", kai_core::shell::command::quote(&dir.path().display().to_string()));
        let done = transport.send(&place(), &copy, Payload::File(&file), LIMIT).await.unwrap();
        assert_eq!(done.code, Some(0), "{done:?}");
        assert_eq!(std::fs::read_to_string(dir.path().join("copy")).unwrap(), "touch pwned\nexit 3\n");
        assert_eq!(run(&transport, "echo still here").await.stdout, "still here\n");
        assert!(!dir.path().join("pwned").exists() && !Path::new("pwned").exists());
        let missing = transport.send(&place(), &copy, Payload::File(&dir.path().join("none")), LIMIT).await.unwrap_err();
        assert!(matches!(missing, TransportError::Io { .. }), "{missing}");
    }

    #[tokio::test]
    async fn a_command_reading_nothing_gets_dev_null_and_leaves_the_shell_as_it_was() {
        let transport = LocalTransport::default();
        let done = transport.send(&place(), "cat; cd /; x=set; echo $$; exit 4", Payload::Nothing, LIMIT).await.unwrap();
        assert_eq!(done.code, Some(4), "{done:?}");
        let shell = done.stdout.trim().to_owned();
        let after = transport.send(&place(), "echo \"$$|${x-unset}\"; pwd", Payload::Nothing, LIMIT).await.unwrap();
        assert_eq!(after.stdout.lines().next(), Some(format!("{shell}|unset").as_str()), "the same kept shell, nothing left in it");
        assert_ne!(after.stdout.lines().nth(1), Some("/"));
    }

    /// The pids whose command line is exactly `words`.
    fn running(words: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).replace('\0', " ").trim() == words {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        found
    }

    #[tokio::test]
    async fn a_script_whose_kai_goes_away_is_stopped_and_the_lock_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".kai/lock")).unwrap();
        let access = Access { home: Some(home.display().to_string()), sudo: None };
        let place = Place { host: "h1".into(), login: None, access: access.clone() };
        let text = format!("kai_enter() {{ cd \"$1\"; }}\n{}\nsleep 31.337; touch late", access.enter().unwrap());
        let transport = std::sync::Arc::new(LocalTransport::default());
        let sending = {
            let transport = std::sync::Arc::clone(&transport);
            tokio::spawn(async move {
                let script = Payload::Script { real: text.as_bytes(), shown: &text };
                transport.send(&place, "sh -s", script, Duration::from_secs(60)).await
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while running("sleep 31.337").is_empty() {
            assert!(std::time::Instant::now() < deadline, "the script never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // What kai's death does to the shell: gone, its input closed.
        sending.abort();
        let _ = sending.await;
        drop(transport);
        while !home.join(".kai/lock/abandoned").exists() {
            assert!(std::time::Instant::now() < deadline, "the lock does not say the script was stopped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while !running("sleep 31.337").is_empty() {
            assert!(std::time::Instant::now() < deadline, "the script goes on without kai");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!home.join("late").exists());
    }

    #[tokio::test]
    async fn past_its_limit_the_whole_process_group_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let text = format!("(sleep 2; touch {}) & sleep 5", marker.display());
        let started = std::time::Instant::now();
        let script = Payload::Script { real: text.as_bytes(), shown: &text };
        let error = LocalTransport::default().send(&place(), "sh -s", script, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(error, TransportError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "a child of the timed-out command ran on");
    }
}
