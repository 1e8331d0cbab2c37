//! The SSH transport against a real sshd: `kai exec`, host keys, unreachable hosts.
#![allow(clippy::unwrap_used)]

mod fleet;

use std::path::Path;
use std::process::Output;

use fleet::{sshd_available, Fleet};

/// A configuration repository whose environment `lab` is the fleet.
fn config_for(fleet: &Fleet, dir: &Path) {
    std::fs::create_dir_all(dir.join("environments")).unwrap();
    std::fs::create_dir_all(dir.join("apps")).unwrap();
    std::fs::write(dir.join("kai.toml"), "[repository]\nurl = \"repo\"\ngroup = \"org.example\"\n").unwrap();
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
    if !sshd_available() {
        return;
    }
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
    if !sshd_available() {
        return;
    }
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
fn a_changed_host_key_is_refused_and_named() {
    if !sshd_available() {
        return;
    }
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
    if !sshd_available() {
        return;
    }
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
    if !sshd_available() {
        return;
    }
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

#[test]
#[ignore = "prints messages for a person to read"]
fn show_messages() {
    let mut fleet = Fleet::start(2);
    let dir = tempfile::tempdir().unwrap();
    config_for(&fleet, dir.path());
    println!("{}", text(&kai(dir.path(), &["exec", "lab", "--", "echo hi; false"])));
    fleet.change_host_key();
    println!("{}", text(&kai(dir.path(), &["exec", "lab", "--", "true"])));
    fleet.stop();
    println!("{}", text(&kai(dir.path(), &["exec", "lab", "--", "true"])));
}
