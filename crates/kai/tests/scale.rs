//! kai on many hosts at once, as a shell with the usual limits starts it.
#![allow(clippy::unwrap_used)]

use std::fmt::Write;

/// A run holds a few file descriptors a host: 300 local hosts under a soft limit of
/// 256 open files all run the command (kai raises its soft limit to the hard one).
#[test]
fn a_command_on_300_hosts_runs_everywhere_under_a_low_open_files_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("environments")).unwrap();
    std::fs::write(root.join("kai.toml"), "[repository]\nurl = \"repo\"\ngroup = \"org.example\"\n").unwrap();
    let mut env = String::from("transport = \"local\"\n\n[hosts]\n");
    for i in 1..=300 {
        writeln!(env, "h{i} = \"127.0.0.1\"").unwrap();
    }
    env.push_str("\n[balancer]\nkind = \"none\"\n");
    std::fs::write(root.join("environments/big.toml"), env).unwrap();

    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -S -n 256 && exec \"$@\"", "sh", env!("CARGO_BIN_EXE_kai"), "--config"])
        .arg(root)
        .args(["exec", "big", "--json", "--", "echo {host}"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 300);
    for r in results {
        assert_eq!(r["stdout"].as_str(), r["host"].as_str().map(|h| format!("{h}\n")).as_deref(), "{r}");
    }
}
