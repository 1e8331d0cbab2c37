//! kai as installed software: `kai --version` names the commit it was built from.

use std::process::Command;

use assert_cmd::Command as Kai;

const KAI: &str = env!("CARGO_BIN_EXE_kai");

/// What git prints in kai's source tree.
fn git(args: &[&str]) -> String {
    let output = Command::new("git").arg("-C").arg(env!("CARGO_MANIFEST_DIR")).args(args).output().expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

#[test]
fn the_version_names_the_commit_of_head_and_its_date() {
    let output = Kai::new(KAI).arg("--version").assert().success().get_output().stdout.clone();
    let line = String::from_utf8(output).expect("utf-8");
    let version = env!("CARGO_PKG_VERSION");
    let rest = line.trim_end().strip_prefix(&format!("kai {version} (")).and_then(|r| r.strip_suffix(')'));
    let Some((commit, date)) = rest.and_then(|r| r.split_once(' ')) else { panic!("not `kai {version} (<commit> <date>)`: {line:?}") };
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{line:?}");
    assert!(git(&["rev-parse", "HEAD"]).starts_with(hash), "{line:?} is not HEAD ({})", git(&["rev-parse", "HEAD"]));
    assert_eq!(date, git(&["log", "-1", "--format=%cs"]), "{line:?}: the commit's date");
}
