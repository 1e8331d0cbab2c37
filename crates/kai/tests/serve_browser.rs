//! `kai serve` in a real headless Chromium (Debian's `chromium`), on an estate of local
//! hosts: the matrix as a browser builds it (scripts run), the filter narrowing rows,
//! and a deploy started during the test showing up in progress and then done. The
//! pages' screenshots are written to `target/serve-*.png` (docs/ holds copies).
#![allow(clippy::unwrap_used)]

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Background, World};

const CHROMIUM: &str = "/usr/bin/chromium";
const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

#[track_caller]
fn require_chromium() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it, as root)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Chromium's arguments for a headless run that needs nothing from the machine.
fn chromium(profile: &std::path::Path) -> Command {
    let mut command = Command::new(CHROMIUM);
    command
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=3000", "--timeout=15000"]);
    command
}

/// The document as Chromium has it once the page's scripts ran.
fn dom(profile: &std::path::Path, url: &str) -> String {
    let output = chromium(profile).arg("--dump-dom").arg(url).output().expect("chromium runs");
    assert!(output.status.success(), "chromium --dump-dom {url}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn screenshot(profile: &std::path::Path, url: &str, name: &str) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("../serve-{name}.png"));
    let output = chromium(profile)
        .args(["--window-size=1100,520", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(output.status.success() && path.exists(), "no screenshot of {url}: {}", String::from_utf8_lossy(&output.stderr));
}

fn serve(world: &World, refresh: &str) -> (Background, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = world.start_kai(["serve", "--listen", listen.as_str(), "--refresh", refresh], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "kai serve did not listen: {}", server.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// Loads `url` in Chromium until its document satisfies `done`.
fn wait_for(profile: &std::path::Path, url: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = dom(profile, url);
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "never saw {what} at {url}:\n{page}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_matrix_in_a_browser_marks_drift_failure_and_locks_and_its_filter_narrows_rows() {
    support::require_transport();
    require_chromium();
    let world = World::builder().active(3).standby(0).publish("1.0.0").publish("1.1.0").build();
    let world = world.deployed("hello-1.0.0").deployed("hello-1.1.0");
    world.host("web2").switch_current_by_hand("1.0.0");
    world.host("web1").stop_service();
    world.host("web3").hold_lock(ANN_LOCK);
    let profile = tempfile::tempdir().unwrap();
    let (server, port) = serve(&world, "60s");
    let url = format!("http://127.0.0.1:{port}/");

    let page = wait_for(profile.path(), &url, "the first snapshot", |p| p.contains("id=\"matrix\""));
    assert!(page.contains("1.0.0/1.1.0"), "{page}");
    for mark in ["mark drift", "mark failing", "mark locked"] {
        assert!(page.contains(mark), "{mark}: {page}");
    }
    assert!(page.contains("<tr data-app=\"hello\">"), "the row is shown: {page}");
    let filtered = dom(profile.path(), &format!("{url}#filter=nothing-like-it"));
    assert!(filtered.contains("<tr data-app=\"hello\" class=\"hidden\">"), "the filter hides the row: {filtered}");
    let kept = dom(profile.path(), &format!("{url}#filter=hel"));
    assert!(kept.contains("<tr data-app=\"hello\"") && !kept.contains("class=\"hidden\""), "the filter keeps the row: {kept}");
    screenshot(profile.path(), &url, "matrix");
    screenshot(profile.path(), &format!("http://127.0.0.1:{port}/env/test"), "environment");
    screenshot(profile.path(), &format!("http://127.0.0.1:{port}/app/hello"), "application");
    server.signal("INT");
    server.wait();
}

#[test]
fn a_deploy_started_during_the_test_shows_in_progress_then_done() {
    support::require_transport();
    require_chromium();
    let world = World::builder().active(2).standby(0).property("startup.delay.ms", "2500").publish("1.0.0").publish("1.1.0").build();
    let world = world.deployed("hello-1.0.0");
    let profile = tempfile::tempdir().unwrap();
    let (server, port) = serve(&world, "1s");
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(profile.path(), &url, "1.0.0 everywhere", |p| p.contains(">1.0.0<"));

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_for(profile.path(), &url, "the deploy in progress", |p| p.contains("mark deploying"));
    deploy.wait().assert_exit(0);
    let done = wait_for(profile.path(), &url, "the deploy done", |p| p.contains(">1.1.0<") && !p.contains("mark deploying"));
    assert!(!done.contains("mark locked"), "{done}");
    let history = dom(profile.path(), &format!("http://127.0.0.1:{port}/history"));
    assert!(history.contains("1.0.0 → 1.1.0"), "{history}");
    server.signal("INT");
    server.wait();
}
