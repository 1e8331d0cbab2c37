//! The local transport: every host is a folder on this machine and commands run
//! through `/bin/sh` in the app home. The embedded default, for trying kai and for
//! tests; it runs the same plan the SSH transport runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kai_core::command::Command;
use tokio::io::AsyncWriteExt;

use super::{Output, Place, Transport, TransportError};

#[derive(Clone, Debug)]
pub struct LocalTransport {
    /// Longest a single command may run.
    pub timeout: Duration,
}

impl Default for LocalTransport {
    fn default() -> Self {
        LocalTransport { timeout: Duration::from_secs(600) }
    }
}

impl LocalTransport {
    /// The app home, created on first use as a real server's user home already exists.
    async fn home(&self, place: &Place) -> Result<PathBuf, TransportError> {
        let home = PathBuf::from(&place.home);
        tokio::fs::create_dir_all(&home).await.map_err(|source| io_error(place, &home, source))?;
        Ok(home)
    }

    async fn path(&self, place: &Place, relative: &str) -> Result<PathBuf, TransportError> {
        Ok(self.home(place).await?.join(relative))
    }
}

fn io_error(place: &Place, path: &Path, source: std::io::Error) -> TransportError {
    TransportError::Io { host: place.host.clone(), path: path.to_owned(), source }
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".kai-{}.part", std::process::id()));
    path.with_file_name(name)
}

impl Transport for LocalTransport {
    async fn run(&self, place: &Place, command: &Command) -> Result<Output, TransportError> {
        let home = self.home(place).await?;
        let text = command.to_shell();
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&text)
            .current_dir(&home)
            .stdin(if command.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C on kai's terminal is for kai, which stops
            // safely; it must not kill a start script halfway.
            .process_group(0)
            .spawn()
            .map_err(|source| TransportError::Spawn { host: place.host.clone(), command: text.clone(), source })?;
        if let (Some(input), Some(mut stdin)) = (&command.stdin, child.stdin.take()) {
            // A command may exit without reading its input; that is its business.
            let _ = stdin.write_all(input.as_bytes()).await;
        }
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| TransportError::Timeout { host: place.host.clone(), command: text.clone(), seconds: self.timeout.as_secs() })?
            .map_err(|source| TransportError::Spawn { host: place.host.clone(), command: text, source })?;
        Ok(Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    async fn upload(&self, place: &Place, local: &Path, remote: &str) -> Result<(), TransportError> {
        let dest = self.path(place, remote).await?;
        let part = temporary(&dest);
        tokio::fs::copy(local, &part).await.map_err(|source| io_error(place, local, source))?;
        tokio::fs::rename(&part, &dest).await.map_err(|source| io_error(place, &dest, source))
    }

    async fn write(&self, place: &Place, path: &str, contents: &[u8]) -> Result<(), TransportError> {
        let dest = self.path(place, path).await?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|source| io_error(place, parent, source))?;
        }
        let part = temporary(&dest);
        tokio::fs::write(&part, contents).await.map_err(|source| io_error(place, &part, source))?;
        tokio::fs::rename(&part, &dest).await.map_err(|source| io_error(place, &dest, source))
    }

    async fn append(&self, place: &Place, path: &str, line: &str) -> Result<(), TransportError> {
        let dest = self.path(place, path).await?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|source| io_error(place, parent, source))?;
        }
        let mut file =
            tokio::fs::OpenOptions::new().create(true).append(true).open(&dest).await.map_err(|source| io_error(place, &dest, source))?;
        file.write_all(format!("{line}\n").as_bytes()).await.map_err(|source| io_error(place, &dest, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(dir: &Path) -> Place {
        Place { host: "h1".into(), home: dir.join("home/app").display().to_string(), user: "app".into() }
    }

    #[tokio::test]
    async fn runs_in_the_app_home_with_quoted_arguments_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let place = place(dir.path());
        let hostile = "a b'c;$(touch pwned)";
        let out = LocalTransport::default()
            .run(&place, &Command::new(["sh", "-c", "pwd; printf '%s\\n' \"$1\"; cat", "sh", hostile]).stdin("in"))
            .await
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, format!("{}\n{hostile}\nin", place.home));
        assert!(!Path::new(&place.home).join("pwned").exists());
    }

    #[tokio::test]
    async fn reports_exit_codes_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalTransport::default().run(&place(dir.path()), &Command::new(["sh", "-c", "echo no >&2; exit 3"])).await.unwrap();
        assert_eq!((out.code, out.stderr.as_str()), (Some(3), "no\n"));
    }

    #[tokio::test]
    async fn writes_appends_and_uploads_inside_the_home() {
        let dir = tempfile::tempdir().unwrap();
        let place = place(dir.path());
        let t = LocalTransport::default();
        t.write(&place, "a/b/file", b"x=1\n").await.unwrap();
        t.append(&place, ".kai/history.jsonl", "{}").await.unwrap();
        t.append(&place, ".kai/history.jsonl", "{}").await.unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, "payload").unwrap();
        t.write(&place, "downloads/.keep", b"").await.unwrap();
        t.upload(&place, &src, "downloads/x.zip").await.unwrap();
        let home = Path::new(&place.home);
        assert_eq!(std::fs::read_to_string(home.join("a/b/file")).unwrap(), "x=1\n");
        assert_eq!(std::fs::read_to_string(home.join(".kai/history.jsonl")).unwrap(), "{}\n{}\n");
        assert_eq!(std::fs::read_to_string(home.join("downloads/x.zip")).unwrap(), "payload");
    }

    #[tokio::test]
    async fn the_probe_reads_a_real_host() {
        let dir = tempfile::tempdir().unwrap();
        let place = place(dir.path());
        let home = Path::new(&place.home);
        for d in ["releases/1.0.0", "releases/1.1.0", "releases/.tmp-1.2.0-r1", ".kai/checksums", ".kai/lock"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        std::fs::write(home.join(".kai/checksums/1.1.0"), "sha256:ab\n").unwrap();
        std::fs::write(home.join("disabled"), "").unwrap();
        std::os::unix::fs::symlink("releases/1.1.0", home.join("current")).unwrap();
        let out = LocalTransport::default().run(&place, &kai_core::facts::probe_command()).await.unwrap();
        let facts = kai_core::facts::parse_probe(&out.stdout);
        assert_eq!(facts.current.as_deref(), Some("1.1.0"));
        let mut releases = facts.releases.clone();
        releases.sort();
        assert_eq!(releases, ["1.0.0", "1.1.0"]);
        assert_eq!(facts.stale, [".tmp-1.2.0-r1"]);
        assert_eq!(facts.checksums["1.1.0"], "sha256:ab");
        assert!(facts.disabled);
        assert!(facts.lock.is_some());
        assert!(facts.free_bytes.is_some_and(|b| b > 0));
    }
}
