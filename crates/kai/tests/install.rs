//! kai as installed software: `kai --version` names the commit it was built from, and
//! `kai man` shows a page as `man` does on a terminal, and prints roff into a pipe.
//! (scripts/package-check.sh installs the Debian package and checks `man kai` and TAB.)

use std::path::Path;
use std::process::{Command, Stdio};

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

#[test]
fn into_a_pipe_a_page_is_roff_whatever_the_pager() {
    let page = Kai::new(KAI).args(["man", "deploy"]).env("MANPAGER", "false").env("PAGER", "false").assert().success();
    let text = String::from_utf8_lossy(&page.get_output().stdout).into_owned();
    assert!(text.contains("\n.TH kai-deploy 1"), "{text}");
    assert!(text.contains(".SH NAME"), "{text}");
    assert_eq!(String::from_utf8_lossy(&page.get_output().stderr), "");
}

/// `kai <args>` in a pseudo-terminal (`script`), with `vars` set and PATH as given;
/// what the terminal showed, without carriage returns and escapes.
fn in_terminal(args: &str, path: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let line = format!("PATH='{path}' exec '{KAI}' {args}");
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("TERM", "xterm")
        .env("SHELL", "/bin/sh")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) starts");
    (output.status.success(), plain(&String::from_utf8_lossy(&output.stdout)))
}

/// Terminal text as read: no escape sequences, no overstrike (`x\bx` bold), no `\r`.
fn plain(shown: &str) -> String {
    let mut out = String::new();
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !c.is_ascii_alphabetic()) {}
                }
            }
            '\u{8}' => {
                out.pop();
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn on_a_terminal_a_page_is_shown_as_man_shows_it() {
    let path = std::env::var("PATH").unwrap_or_default();
    for pager in ["MANPAGER", "PAGER"] {
        let (ok, shown) = in_terminal("man deploy", &path, &[(pager, "cat")]);
        assert!(ok, "{pager}: {shown}");
        assert!(shown.contains("NAME") && shown.contains("kai-deploy - "), "{pager}: formatted by man: {shown}");
        assert!(shown.contains("--dry-run"), "{pager}: {shown}");
        assert!(!shown.contains(".TH") && !shown.contains(".SH"), "{pager}: no roff left: {shown}");
    }
    let (ok, shown) = in_terminal("man kai.toml", &path, &[("MANPAGER", "cat")]);
    assert!(ok && shown.contains("repository.url") && !shown.contains(".TP"), "{shown}");
}

#[test]
fn on_a_terminal_without_man_the_roff_comes_with_a_hint() {
    let empty = tempfile::tempdir().expect("a folder with no programs");
    assert!(!empty.path().join("man").exists());
    let (ok, shown) = in_terminal("man deploy", &empty.path().display().to_string(), &[("MANPAGER", "cat")]);
    assert!(ok, "{shown}");
    assert!(shown.contains(".TH kai-deploy 1"), "the roff: {shown}");
    assert!(shown.contains("`man` is not installed"), "the hint: {shown}");
    assert!(Path::new(KAI).is_absolute());
}
