//! The SSH transport against a real sshd: `kai exec`, host keys, unreachable hosts.
#![allow(clippy::unwrap_used)]

mod fleet;

use std::path::Path;
use std::process::Output;

use fleet::{require_sshd, Fleet};

/// A configuration repository whose environment `lab` is the fleet.
fn config_for(fleet: &Fleet, dir: &Path) {
    std::fs::create_dir_all(dir.join("environments")).unwrap();
    std::fs::create_dir_all(dir.join("apps")).unwrap();
    std::fs::write(dir.join("kai.toml"), "[repository]\nurl = \"repo\"\ngroup = \"org.example\"\n").unwrap();
    std::fs::create_dir_all(dir.join("repo")).unwrap();
    let hosts: String = fleet
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| format!("h{} = {{ address = \"{a}\", port = {}, login = \"{}\" }}\n", i + 1, fleet.port, fleet.user))
        .collect();
    let env = format!(
        "transport = \"ssh\"\nssh_config = \"{}\"\nknown_hosts = \"{}\"\n\n[hosts]\n{hosts}",
        fleet.ssh_config.display(),
        fleet.known_hosts.display()
    );
    std::fs::write(dir.join("environments/lab.toml"), env).unwrap();
}

fn kai(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kai")).arg("--config").arg(dir).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn exec_runs_on_every_host_and_prefixes_its_output() {
    require_sshd();
    let fleet = Fleet::start(3);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    let out = kai(dir.path(), &["exec", "lab", "--", "echo", "hello from", "$(hostname)"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for host in ["h1", "h2", "h3"] {
        assert!(all.contains(&format!("{host}: hello from")), "{all}");
    }
}

#[test]
fn exec_json_and_a_failing_host() {
    require_sshd();
    let fleet = Fleet::start(2);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    let out = kai(dir.path(), &["exec", "lab", "--json", "--", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["host"], "h1");
    assert_eq!(results[0]["exit_code"], 3);
    assert_eq!(results[0]["stdout"], "out\n");
    assert_eq!(results[0]["stderr"], "err\n");
}

#[test]
fn exec_gives_the_command_nothing_to_read_and_reports_exactly_what_it_printed() {
    require_sshd();
    let fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    // `cat` ends at once (its input is /dev/null, not kai's connection); the text is
    // shell text run by the login shell itself: variables, `exit` and output without a
    // final newline come back untouched.
    let script = "cat; x='a  b'; printf '%s|' \"$x\"; printf 'no newline' >&2; exit 5";
    let out = kai(dir.path(), &["exec", "lab", "--json", "--", script]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["exit_code"], 5, "{results}");
    assert_eq!(results[0]["stdout"], "a  b|");
    assert_eq!(results[0]["stderr"], "no newline");
}

#[test]
fn a_changed_host_key_is_refused_and_named() {
    require_sshd();
    let mut fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    fleet.change_host_key();
    let out = kai(dir.path(), &["exec", "lab", "--", "touch", "/tmp/kai-should-not-exist"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("h1") && all.contains("Host key verification failed"), "{all}");
}

#[test]
fn an_unknown_host_key_is_refused() {
    require_sshd();
    let fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    std::fs::write(&fleet.known_hosts, "").unwrap();
    let out = kai(dir.path(), &["exec", "lab", "--", "true"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("Host key verification failed"), "{all}");
}

#[test]
fn an_unreachable_host_fails_fast_with_its_name() {
    require_sshd();
    let mut fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    fleet.stop();
    let started = std::time::Instant::now();
    let out = kai(dir.path(), &["exec", "lab", "--", "true"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("h1") && all.contains("Connection refused"), "{all}");
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
}

/// kai logs in as the host's `login` and becomes the app's user with `sudo -n -u`.
#[test]
fn with_a_login_the_app_steps_run_through_sudo_as_the_app_user() {
    require_sshd();
    let is_root = fleet::whoami() == "root";
    let has_sudo = std::path::Path::new("/usr/bin/sudo").exists();
    assert!(
        is_root && has_sudo,
        "this test logs in as root and uses sudo: run the tests as root with sudo installed (scripts/test.sh does)"
    );
    let fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    let home = format!("/tmp/kai-sudo-test-{}", std::process::id());
    let app = format!(
        "artifact = \"hello\"\ngroup = \"org.example\"\nuser = \"nobody\"\nhome = \"{home}\"\nstart = \"true\"\nstop = \"true\"\n\n[env.lab]\nservers = [\"h1\"]\n"
    );
    std::fs::write(dir.path().join("apps/hello.toml"), app).unwrap();
    let out = kai(dir.path(), &["exec", "lab", "hello", "--", "id -un; pwd"]);
    let _ = std::fs::remove_dir_all(&home);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("h1: nobody") && all.contains(&format!("h1: {home}")), "{all}");
}

/// `kai status` reads the apps of other users through `sudo -n -u` inside the one
/// script it sends the host, and says which home the account cannot enter.
#[test]
fn status_reads_every_app_of_a_host_in_one_script_through_sudo_as_each_user() {
    require_sshd();
    assert!(
        fleet::whoami() == "root" && Path::new("/usr/bin/sudo").exists(),
        "this test logs in as root and uses sudo: run the tests as root with sudo installed (scripts/test.sh does)"
    );
    let fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    let base = tempfile::Builder::new().prefix("kai-sudo-status-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let home = |app: &str| base.path().join(app);
    for (app, user, version) in [("theirs", "nobody", "1.0.0"), ("mine", fleet.user.as_str(), "2.0.0")] {
        std::fs::create_dir_all(home(app).join("releases").join(version)).unwrap();
        std::os::unix::fs::symlink(format!("releases/{version}"), home(app).join("current")).unwrap();
        let chown = std::process::Command::new("chown").args(["-R", user]).arg(home(app)).status().unwrap();
        assert!(chown.success());
    }
    // A home the app's user cannot enter: root's, mode 700.
    std::fs::create_dir_all(home("shut")).unwrap();
    std::fs::set_permissions(home("shut"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for (app, user) in [("theirs", "nobody"), ("mine", fleet.user.as_str()), ("shut", "nobody"), ("none", "nobody")] {
        let text = format!(
            "artifact = \"{app}\"\ngroup = \"org.example\"\nuser = \"{user}\"\nhome = \"{}\"\nstart = \"true\"\nstop = \"true\"\n\n[env.lab]\nservers = [\"h1\"]\n",
            home(app).display()
        );
        std::fs::write(dir.path().join(format!("apps/{app}.toml")), text).unwrap();
    }
    let trace = dir.path().join("trace");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kai"))
        .arg("--config")
        .arg(dir.path())
        .args(["status", "lab", "--json"])
        .env("KAI_TRACE", &trace)
        .output()
        .unwrap();
    let all = text(&out);
    let sent = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(sent.matches("=== h1 sends: ").count(), 1, "one script for the four apps: {sent}");
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let host = |app: &str| document["hosts"].as_array().unwrap().iter().find(|h| h["app"] == app).unwrap().clone();
    assert_eq!(host("theirs")["current"], "1.0.0", "{all}");
    assert_eq!(host("mine")["current"], "2.0.0", "{all}");
    assert!(host("shut")["error"].as_str().unwrap_or_default().contains("cannot be entered"), "{all}");
    assert_eq!(host("none")["current"], serde_json::Value::Null, "{all}");
    assert_eq!(host("none")["error"], serde_json::Value::Null, "{all}");
    assert!(!home("none").exists(), "a read creates no home");
}

#[test]
fn a_home_too_long_for_a_socket_path_still_connects() {
    require_sshd();
    let fleet = Fleet::start(1);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    // A cache under a long home (an AD account's): <cache>/kai/ssh/<pid>/.ssh-connection…/master
    // would be longer than the 107 bytes a socket's path may have.
    let cache = dir.path().join("home").join("firstname.lastname@corp.example.org").join(".cache");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kai"))
        .arg("--config")
        .arg(dir.path())
        .args(["exec", "lab", "--", "echo", "reached"])
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(out.status.success() && text(&out).contains("h1: reached"), "{}", text(&out));
}

#[test]
fn check_hosts_reports_each_host_and_names_the_unreachable_one() {
    require_sshd();
    let fleet = Fleet::start(2);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    let out = kai(dir.path(), &["check", "--hosts"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("h1") && all.contains("h2") && all.contains(&format!("user {}", fleet.user)) && all.contains("GiB"), "{all}");
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("2 hosts ok (")), "a total: {all}");

    let env = std::fs::read_to_string(dir.path().join("environments/lab.toml")).unwrap();
    std::fs::write(dir.path().join("environments/lab.toml"), env.replace(&fleet.addresses[1], "127.0.0.254")).unwrap();
    let out = kai(dir.path(), &["check", "--hosts"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 host of 2 FAILED"), "the total: {}", text(&out));
    let out = kai(dir.path(), &["check", "--hosts", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    let checks = &doc["host_checks"];
    assert_eq!(checks[0]["ok"], true);
    assert_eq!(checks[1]["host"], "h2");
    assert_eq!(checks[1]["ok"], false);
    assert!(checks[1]["problem"].as_str().unwrap().contains("Connection refused"), "{checks}");
}

#[test]
fn exec_names_each_host_and_feeds_a_file_to_every_one() {
    require_sshd();
    let fleet = Fleet::start(2);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    let input = dir.path().join("payload with 'quotes'.bin");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&input, &bytes).unwrap();
    let remote = tempfile::tempdir().unwrap();
    let target = format!("{}/{{host}}.bin", remote.path().display());
    let out = kai(
        dir.path(),
        &["exec", "lab", "--input", input.to_str().unwrap(), "--", "cat", ">", &target, "&&", "echo", "{host}", "got", "it"],
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for host in ["h1", "h2"] {
        assert!(all.contains(&format!("{host}: {host} got it")), "{all}");
        assert_eq!(std::fs::read(remote.path().join(format!("{host}.bin"))).unwrap(), bytes, "{host} got the file whole");
    }
    let missing = kai(dir.path(), &["exec", "lab", "--input", "/nonexistent/file", "--", "cat"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("--input /nonexistent/file: no such file"), "{}", text(&missing));
}

/// `kai` with a cache folder of its own (where its SSH connections are kept).
fn kai_cached(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kai")).arg("--config").arg(dir).args(args).env("XDG_CACHE_HOME", cache).output().unwrap()
}

#[test]
fn a_connection_outlives_its_run_for_ssh_persist_and_is_reused_by_the_next() {
    require_sshd();
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut fleet = Fleet::start(1);
    config_for(&fleet, dir.path());
    let first = kai_cached(dir.path(), cache.path(), &["exec", "lab", "--", "echo", "one"]);
    assert!(first.status.success(), "{}", text(&first));
    // No new login can happen now: the listening sshd is gone, its sessions are not.
    let listener = fleet.sshd_pid().unwrap();
    std::process::Command::new("kill").arg(listener.to_string()).status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = kai_cached(dir.path(), cache.path(), &["exec", "lab", "--", "echo", "two"]);
    assert!(second.status.success() && text(&second).contains("h1: two"), "the first run's connection was reused: {}", text(&second));
    fleet.stop();

    // ssh_persist = "0s": closed with the run, so the next run has to log in again.
    let mut fleet = Fleet::start(1);
    config_for(&fleet, dir.path());
    let env = dir.path().join("environments/lab.toml");
    let text_of_env = std::fs::read_to_string(&env).unwrap();
    std::fs::write(&env, format!("ssh_persist = \"0s\"\n{text_of_env}")).unwrap();
    let first = kai_cached(dir.path(), cache.path(), &["exec", "lab", "--", "echo", "one"]);
    assert!(first.status.success(), "{}", text(&first));
    std::process::Command::new("kill").arg(fleet.sshd_pid().unwrap().to_string()).status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = kai_cached(dir.path(), cache.path(), &["exec", "lab", "--", "echo", "two"]);
    assert_eq!(second.status.code(), Some(1), "nothing was kept: {}", text(&second));
    fleet.stop();
}
