//! The commit kai is built from, for `kai --version`: `KAI_VERSION` is the package
//! version followed by the short hash and date of HEAD, with `-dirty` when tracked files
//! had uncommitted changes (`0.1.0 (abc1234-dirty 2026-12-05)`), or the bare version
//! when the sources are not in a git repository (a build from a tarball).
//!
//! The script runs again when HEAD moves (a checkout, a commit: HEAD, its branch, the
//! packed refs) and when kai's sources change, so a rebuild after an edit says `-dirty`
//! without a `git status` on every build. An edit elsewhere (the README) is seen at the
//! next of those.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    for source in ["src", "build.rs", "../kai-core/src", "../../docs"] {
        println!("cargo:rerun-if-changed={}", manifest.join(source).display());
    }
    let commit = commit(&manifest);
    match &commit {
        Some(commit) => println!("cargo:rustc-env=KAI_VERSION={version} ({commit})"),
        None => println!("cargo:rustc-env=KAI_VERSION={version}"),
    }
}

/// `abc1234 2026-12-05` or `abc1234-dirty 2026-12-05`; `None` without git, or when the
/// sources are not tracked by the repository git finds (a tarball unpacked in one).
fn commit(manifest: &Path) -> Option<String> {
    git(manifest, &["ls-files", "--error-unmatch", "Cargo.toml"])?;
    watch_head(manifest);
    let head = git(manifest, &["log", "-1", "--format=%h %cs"])?;
    let (hash, date) = head.trim().split_once(' ')?;
    let changes = git(manifest, &["status", "--porcelain", "--untracked-files=no"])?;
    let dirty = if changes.trim().is_empty() { "" } else { "-dirty" };
    Some(format!("{hash}{dirty} {date}"))
}

/// Rerun when HEAD or the branch it names moves (a worktree's HEAD is in its own git
/// folder, the branches in the common one). Only files that exist: cargo reruns a script
/// on every build for a missing one.
fn watch_head(manifest: &Path) {
    let path = |what: &str| git(manifest, &["rev-parse", "--path-format=absolute", "--git-path", what]);
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch.trim().to_owned());
    }
    for what in watched {
        if let Some(file) = path(&what).map(|p| PathBuf::from(p.trim())).filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}

/// What git prints, when it ran and succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
