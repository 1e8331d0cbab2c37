//! The local transport: every host is a folder on this machine; the text is run by
//! `/bin/sh -c`, exactly as sshd would hand it to a login shell. The embedded default,
//! for trying kai and for tests; it runs the same plan the SSH transport runs.

use std::process::Stdio;
use std::time::Duration;

use super::{Input, Output, Place, Transport, TransportError};

#[derive(Clone, Debug, Default)]
pub struct LocalTransport;

impl Transport for LocalTransport {
    async fn send(&self, place: &Place, text: &str, input: Input<'_>, limit: Duration) -> Result<Output, TransportError> {
        let spawn_error = |source| TransportError::Spawn { host: place.host.clone(), command: text.to_owned(), source };
        let stdin = match input {
            Input::Script { .. } => Stdio::piped(),
            Input::File(path) => Stdio::from(std::fs::File::open(path).map_err(|source| TransportError::Io {
                host: place.host.clone(),
                path: path.to_owned(),
                source,
            })?),
        };
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(text)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C on kai's terminal is for kai, which stops
            // safely; it must not kill a start script halfway. A timeout stops the group.
            .process_group(0)
            .spawn()
            .map_err(spawn_error)?;
        let group = child.id();
        let bytes = match input {
            Input::Script { real, .. } => real,
            Input::File(_) => &[],
        };
        let stdin = child.stdin.take().filter(|_| matches!(input, Input::Script { .. }));
        let started = tokio::time::Instant::now();
        match super::exchange(stdin, bytes, child.stdout.take(), child.stderr.take(), limit).await {
            Ok(done) => {
                let left = limit.saturating_sub(started.elapsed());
                match tokio::time::timeout(left, child.wait()).await {
                    Ok(status) => Ok(done.output(status.map_err(spawn_error)?.code())),
                    Err(_) => {
                        if let Some(group) = group {
                            kill_group(group).await;
                        }
                        Err(TransportError::Timeout { host: place.host.clone(), limit, partial: done.output(None) })
                    }
                }
            }
            Err(partial) => {
                if let Some(group) = group {
                    kill_group(group).await;
                }
                Err(TransportError::Timeout { host: place.host.clone(), limit, partial: partial.output(None) })
            }
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

    use kai_core::command::Command;
    use kai_core::session::{parse_outputs, script, Access};

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
        let text = script(&access, &refs, "TOK", &kai_core::command::shown);
        let whole =
            LocalTransport.send(&place(), &access.entry(), Input::Script { real: text.as_bytes(), shown: &text }, LIMIT).await.unwrap();
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
        let text = script(&access, &refs, "TOK", &kai_core::command::shown);
        let whole =
            LocalTransport.send(&place(), &access.entry(), Input::Script { real: text.as_bytes(), shown: &text }, LIMIT).await.unwrap();
        let outputs = parse_outputs("TOK", &whole).unwrap();
        assert_eq!(outputs.len(), 2);
        assert_eq!((outputs[1].code, outputs[1].stderr.as_str()), (Some(3), "no\n"));
    }

    #[tokio::test]
    async fn past_its_limit_the_whole_process_group_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let text = format!("(sleep 2; touch {}) & sleep 5", marker.display());
        let started = std::time::Instant::now();
        let error =
            LocalTransport.send(&place(), &text, Input::Script { real: b"", shown: "" }, Duration::from_millis(300)).await.unwrap_err();
        assert!(matches!(error, TransportError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "a child of the timed-out command ran on");
    }
}
