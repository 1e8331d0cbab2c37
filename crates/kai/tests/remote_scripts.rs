//! kai's helper functions (`kai_core::shell::helpers::HELPERS`), run by a real `sh` exactly as a
//! host runs them: a cut upload never gets its name, the lock appears whole or not at
//! all, an app script cannot hold kai's output and is stopped at its deadline, and a
//! release whose paths resolve outside it is refused.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kai_core::checksum::{Algorithm, Checksum};
use kai_core::shell::helpers::{self, HELPERS};

/// Runs `command` in `dir` after the helpers, with `input` on standard input.
fn sh(dir: &Path, command: &kai_core::shell::command::Command, input: &[u8]) -> std::process::Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{HELPERS}\n{}", command.to_shell()))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("sh ends")
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_cut_upload_never_gets_its_name_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let artifact: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let sum = Checksum { algorithm: Algorithm::Sha256, hex: sha256(&artifact) };
    std::fs::create_dir(dir.path().join("downloads")).unwrap();

    let cut = sh(dir.path(), &helpers::receive("downloads/a.zip", &sum), &artifact[..artifact.len() * 56 / 100]);

    assert!(!cut.status.success(), "a cut upload was accepted");
    assert!(!dir.path().join("downloads/a.zip").exists(), "the cut upload got its final name");
    assert!(!dir.path().join("downloads/a.zip.part").exists(), "the cut upload was left behind");
    let whole = sh(dir.path(), &helpers::receive("downloads/a.zip", &sum), &artifact);
    assert!(whole.status.success(), "{whole:?}");
    assert_eq!(std::fs::read(dir.path().join("downloads/a.zip")).unwrap(), artifact);
}

#[test]
fn the_lock_is_taken_once_whole_and_names_its_holder_to_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let ann = r#"{"user":"ann"}"#;
    assert!(sh(dir.path(), &helpers::lock(ann), format!("{ann}\n").as_bytes()).status.success());
    let second = sh(dir.path(), &helpers::lock(r#"{"user":"bob"}"#), b"{\"user\":\"bob\"}\n");
    assert_eq!(second.status.code(), Some(helpers::LOCK_HELD));
    assert_eq!(String::from_utf8_lossy(&second.stdout), format!("{ann}\n"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(".kai")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers, ["lock"], "nothing but the lock in .kai");
}

#[test]
fn an_app_script_cannot_hold_kai_with_a_child_on_its_output_and_its_log_is_shown_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".kai")).unwrap();
    std::fs::create_dir_all(dir.path().join("rel")).unwrap();
    std::os::unix::fs::symlink("rel", dir.path().join("current")).unwrap();
    let script = |text: &str| vec!["sh".to_owned(), "-c".to_owned(), text.to_owned()];

    let started = Instant::now();
    let ok =
        sh(dir.path(), &helpers::run_logged(&script("sleep 30 & echo $! > holder.pid; echo started"), Duration::from_secs(10), None), b"");
    assert!(ok.status.success(), "{ok:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "the child on the output held kai");
    if let Ok(pid) = std::fs::read_to_string(dir.path().join("rel/holder.pid")) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }

    let failed = sh(dir.path(), &helpers::run_logged(&script("echo boom; exit 3"), Duration::from_secs(10), None), b"");
    assert_eq!(failed.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("boom"), "the log's tail is shown: {failed:?}");
    assert!(std::fs::read_to_string(dir.path().join(helpers::SCRIPT_LOG)).unwrap().contains("== kai: sh -c echo boom; exit 3"));

    let slow = sh(dir.path(), &helpers::run_logged(&script("sleep 30"), Duration::from_secs(1), None), b"");
    assert_eq!(slow.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&slow.stderr).contains("did not finish within 1 s"), "{slow:?}");
}

#[test]
fn a_release_is_contained_when_every_path_resolves_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("r");
    std::fs::create_dir_all(release.join("lib")).unwrap();
    std::os::unix::fs::symlink("../VERSION", release.join("lib/v")).unwrap();
    assert!(sh(dir.path(), &helpers::contained("r"), b"").status.success());

    std::os::unix::fs::symlink(".", release.join("l1")).unwrap();
    std::os::unix::fs::symlink("l1/..", release.join("l2")).unwrap();
    let out = sh(dir.path(), &helpers::contained("r"), b"");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside"));
}

#[test]
fn a_download_that_fails_leaves_no_part_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("downloads")).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sum = Checksum { algorithm: Algorithm::Sha256, hex: "00".repeat(32) };
    let limits = helpers::DownloadLimits { connect: Duration::from_secs(2), total: Duration::from_secs(5) };
    let url = format!("http://127.0.0.1:{closed}/a.zip");

    let out = sh(dir.path(), &helpers::download(&url, "downloads/a.zip", &sum, false, limits), b"");

    assert!(!out.status.success());
    let left: Vec<_> = std::fs::read_dir(dir.path().join("downloads")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_release_put_back_is_removed_unless_current_points_to_it() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["1.0.0", "1.1.0"] {
        std::fs::create_dir_all(dir.path().join("releases").join(version)).unwrap();
        std::fs::create_dir_all(dir.path().join(".kai/checksums")).unwrap();
        std::fs::write(dir.path().join(".kai/checksums").join(version), "sum\n").unwrap();
    }
    std::os::unix::fs::symlink("releases/1.0.0", dir.path().join("current")).unwrap();

    assert!(sh(dir.path(), &helpers::unstage("1.0.0"), b"").status.success());
    assert!(dir.path().join("releases/1.0.0").is_dir(), "the current release was removed");
    assert!(sh(dir.path(), &helpers::unstage("1.1.0"), b"").status.success());
    assert!(!dir.path().join("releases/1.1.0").exists() && !dir.path().join(".kai/checksums/1.1.0").exists());
    assert!(dir.path().join(".kai/checksums/1.0.0").exists());
}

#[test]
fn the_probe_reads_current_and_the_releases_and_enters_no_other_folder() {
    use kai_core::facts::{parse_probe, probe_command};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    for folder in ["releases/1.0.0", "releases/2.0.0", "releases/.tmp-3.0.0-r1", "logs/releases/9.9.9", ".kai/checksums"] {
        std::fs::create_dir_all(home.join(folder)).unwrap();
    }
    std::fs::write(home.join("releases/2.0.0/app.properties"), "a=1\nb=2").unwrap();
    std::fs::write(home.join(".kai/checksums/2.0.0"), "sha256:abc\nsettings sha256:def\n").unwrap();
    std::os::unix::fs::symlink("releases/2.0.0", home.join("current")).unwrap();

    let out = sh(home, &probe_command(Some("app.properties")), b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let facts = parse_probe(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(facts.current.as_deref(), Some("2.0.0"));
    let mut releases = facts.releases.clone();
    releases.sort();
    assert_eq!(releases, ["1.0.0", "2.0.0"], "logs/releases is not a release folder");
    assert_eq!(facts.stale, [".tmp-3.0.0-r1"]);
    assert_eq!(facts.checksums.get("2.0.0").map(String::as_str), Some("sha256:abc"));
    assert_eq!(facts.properties.as_deref(), Some("a=1\nb=2\n"));
    assert!(facts.free_bytes.is_some() && !facts.disabled);

    // A first install: no current, no releases; nothing printed of them, no error.
    let empty = tempfile::tempdir().unwrap();
    let out = sh(empty.path(), &probe_command(None), b"");
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let facts = parse_probe(&String::from_utf8_lossy(&out.stdout));
    assert_eq!((facts.current, facts.releases.len()), (None, 0));
}

/// A process working in `dir`, stopped when dropped.
struct Squatter(std::process::Child);

impl Squatter {
    fn start(dir: &Path, program: &[&str]) -> Squatter {
        let child = Command::new(program[0])
            .args(&program[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the process starts");
        Squatter(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `releases/<each version>` with its checksum record, `current` pointing to the last.
fn releases(dir: &Path, versions: &[&str]) {
    std::fs::create_dir_all(dir.join(".kai/checksums")).unwrap();
    for version in versions {
        std::fs::create_dir_all(dir.join("releases").join(version).join("bin")).unwrap();
        std::fs::write(dir.join(".kai/checksums").join(version), "sum\n").unwrap();
    }
    let last = versions.last().expect("a release");
    std::os::unix::fs::symlink(format!("releases/{last}"), dir.join("current")).unwrap();
}

#[test]
fn a_release_a_process_runs_from_is_kept_by_prune_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    releases(dir.path(), &["1.0.0", "1.1.0", "1.2.0"]);
    let squatter = Squatter::start(&dir.path().join("releases/1.0.0"), &["sleep", "30"]);

    let procs = sh(dir.path(), &kai_core::shell::command::Command::new(["kai_procs"]), b"");
    assert_eq!(String::from_utf8_lossy(&procs.stdout), format!("{}\t1.0.0\n", squatter.pid()));

    let pruned = sh(dir.path(), &helpers::prune(&["1.0.0", "1.1.0"]), b"");
    assert!(pruned.status.success(), "{pruned:?}");
    assert_eq!(String::from_utf8_lossy(&pruned.stdout), format!("kept releases/1.0.0: pid {} runs from it\n", squatter.pid()));
    assert!(dir.path().join("releases/1.0.0").is_dir() && dir.path().join(".kai/checksums/1.0.0").exists());
    assert!(!dir.path().join("releases/1.1.0").exists() && !dir.path().join(".kai/checksums/1.1.0").exists());

    let replaced = sh(dir.path(), &helpers::replace("1.0.0"), b"");
    assert_eq!(replaced.status.code(), Some(1), "{replaced:?}");
    assert!(String::from_utf8_lossy(&replaced.stderr).contains("it is not replaced while it runs"), "{replaced:?}");
    assert!(dir.path().join("releases/1.0.0").is_dir() && dir.path().join(".kai/checksums/1.0.0").exists());

    let unstaged = sh(dir.path(), &helpers::unstage("1.0.0"), b"");
    assert!(String::from_utf8_lossy(&unstaged.stdout).starts_with("kept releases/1.0.0"), "{unstaged:?}");
    drop(squatter);
    assert!(sh(dir.path(), &helpers::replace("1.0.0"), b"").status.success());
    assert!(!dir.path().join("releases/1.0.0").exists() && !dir.path().join(".kai/checksums/1.0.0").exists());
}

#[test]
fn a_failed_start_names_the_process_of_another_release_that_holds_its_port() {
    let dir = tempfile::tempdir().unwrap();
    releases(dir.path(), &["1.0.0", "1.1.0"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(30)");
    let squatter = Squatter::start(&dir.path().join("releases/1.0.0"), &["python3", "-c", &listen]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the squatter never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = ["sh".to_owned(), "-c".to_owned(), format!("echo 'cannot listen on 127.0.0.1:{port}: Address already in use'; exit 1")];

    let failed = sh(dir.path(), &helpers::run_logged(&start, Duration::from_secs(10), None), b"");

    assert_eq!(failed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&failed.stderr).into_owned();
    let line = format!("kai: pid {} runs from release 1.0.0, not the current one, listening on 127.0.0.1:{port}", squatter.pid());
    assert!(said.contains(&line), "{said}");
    assert_eq!(
        kai_core::facts::port_taken(&said),
        Some(format!("the port {port} is taken by pid {} (release 1.0.0): stop it, then deploy again", squatter.pid()))
    );
}

#[test]
fn a_script_for_one_release_runs_only_while_current_points_to_it() {
    let dir = tempfile::tempdir().unwrap();
    releases(dir.path(), &["1.0.0", "1.1.0"]);
    let touch = |name: &str| vec!["touch".to_owned(), name.to_owned()];
    assert!(sh(dir.path(), &helpers::run_logged(&touch("ran"), Duration::from_secs(10), Some("1.0.0")), b"").status.success());
    assert!(!dir.path().join("releases/1.1.0/ran").exists() && !dir.path().join("releases/1.0.0/ran").exists());
    assert!(sh(dir.path(), &helpers::run_logged(&touch("ran"), Duration::from_secs(10), Some("1.1.0")), b"").status.success());
    assert!(dir.path().join("releases/1.1.0/ran").exists());
}

#[test]
fn a_failed_script_shows_only_what_it_printed_itself_and_the_log_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    releases(dir.path(), &["1.0.0"]);
    let earlier: String = (0..50_000).map(|i| format!("an earlier run said line {i}\n")).collect();
    std::fs::write(dir.path().join(helpers::SCRIPT_LOG), format!("{earlier}== kai: bin/stop.sh\nstopped: pid 1\n")).unwrap();
    let script = ["sh".to_owned(), "-c".to_owned(), "echo this run; exit 1".to_owned()];

    let failed = sh(dir.path(), &helpers::run_logged(&script, Duration::from_secs(10), None), b"");

    assert_eq!(failed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(said.starts_with("== kai: sh -c echo this run; exit 1\nthis run\n"), "{said}");
    assert!(!said.contains("earlier run") && !said.contains("stopped: pid 1"), "{said}");
    let log = std::fs::metadata(dir.path().join(helpers::SCRIPT_LOG)).unwrap().len();
    assert!(log < 300 * 1024, "the log was not trimmed: {log} bytes");
}
