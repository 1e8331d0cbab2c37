//! Configuration sync: before a deploy or a rollback, a configuration repository that
//! is a git checkout with an upstream is brought up to date as `git pull --ff-only`
//! would, so everybody deploys what the team has committed. Uncommitted changes are
//! found here too; what to do about them is the caller's decision.
//!
//! `git` runs as a program with arguments (never shell text), in the repository
//! (`git -C <root>`), without a terminal prompt.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The longest a `git fetch` may take (a credential prompt or a dead network must not
/// hang a deploy).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Any other git command: all local.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(20);
/// How many commits and dirty files a report lists before "and N more".
const LISTED: usize = 10;

/// What syncing found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    pub root: PathBuf,
    /// The upstream branch, as `origin/main`.
    pub upstream: String,
    /// `git status --porcelain` lines of uncommitted changes below the root, `.kai/`
    /// (the local hosts) aside.
    pub dirty: Vec<String>,
    /// What the pull brought, when it brought anything.
    pub pulled: Option<Pulled>,
    /// Local commits the upstream does not have.
    pub unpushed: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pulled {
    pub from: String,
    pub to: String,
    /// `<short hash> <author>: <subject>`, newest first.
    pub commits: Vec<String>,
    /// `git diff --stat` of the configuration folder.
    pub stat: String,
}

/// Why the configuration could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `git fetch` or `git merge --ff-only` failed (no network, diverged history, local
    /// changes in the way).
    #[error("git pull --ff-only failed in {}: {detail}", root.display())]
    Pull { root: PathBuf, detail: String },
    /// git started but a query of the repository failed.
    #[error("git {command} failed in {}: {detail}", root.display())]
    Git { root: PathBuf, command: String, detail: String },
}

/// Pulls `root` when it is a git checkout with an upstream; `None` when it is not one
/// (or git is not installed): then there is nothing to sync.
pub async fn sync(root: &Path) -> Result<Option<Synced>, SyncError> {
    let git = Git { root };
    match git.run(&["rev-parse", "--is-inside-work-tree"], LOCAL_TIMEOUT).await {
        Some(out) if out.ok && out.stdout.trim() == "true" => {}
        _ => return Ok(None),
    }
    let upstream = match git.run(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}"], LOCAL_TIMEOUT).await {
        Some(out) if out.ok && !out.stdout.trim().is_empty() => out.stdout.trim().to_owned(),
        _ => return Ok(None),
    };
    let status = git.query(&["status", "--porcelain", "--untracked-files=all", "--", ".", ":(exclude).kai"]).await?;
    let mut synced = Synced { root: root.to_path_buf(), upstream, dirty: dirty_lines(&status), ..Synced::default() };

    let fetch = git.run(&["fetch", "--quiet"], FETCH_TIMEOUT).await;
    git.pull_step(fetch, "git fetch", FETCH_TIMEOUT)?;
    let before = git.query(&["rev-parse", "HEAD"]).await?.trim().to_owned();
    let merge = git.run(&["merge", "--ff-only", "--quiet", "@{u}"], LOCAL_TIMEOUT).await;
    if let Err(mut error) = git.pull_step(merge, "git merge --ff-only", LOCAL_TIMEOUT) {
        if let (SyncError::Pull { detail, .. }, Ok(counts)) =
            (&mut error, git.query(&["rev-list", "--left-right", "--count", "HEAD...@{u}"]).await)
        {
            if let Some((local, remote)) = parse_counts(&counts).filter(|&(l, r)| l > 0 && r > 0) {
                *detail = format!(
                    "the checkout and {} have diverged ({local} local commit{}, {remote} new in {})",
                    synced.upstream,
                    plural(local),
                    synced.upstream
                );
            }
        }
        return Err(error);
    }
    let after = git.query(&["rev-parse", "HEAD"]).await?.trim().to_owned();
    if after != before {
        let range = format!("{before}..{after}");
        let log = git.query(&["log", "--format=%h %an: %s", &range]).await?;
        let stat = git.query(&["diff", "--stat", &before, &after, "--", "."]).await?;
        synced.pulled =
            Some(Pulled { from: before, to: after, commits: log.lines().map(str::to_owned).collect(), stat: stat.trim_end().to_owned() });
    }
    let ahead = git.query(&["rev-list", "--count", "@{u}..HEAD"]).await?;
    synced.unpushed = ahead.trim().parse().unwrap_or(0);
    Ok(Some(synced))
}

impl Synced {
    /// What a person should read about the sync, for standard error: the commits and
    /// files a pull brought, uncommitted and unpushed changes. Empty when there is
    /// nothing to say.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(pulled) = &self.pulled {
            let n = pulled.commits.len();
            out.push_str(&format!(
                "configuration updated from {}: {}..{} ({n} commit{})\n",
                self.upstream,
                short(&pulled.from),
                short(&pulled.to),
                plural(n)
            ));
            push_listed(&mut out, &pulled.commits, "commits");
            for line in pulled.stat.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if !self.dirty.is_empty() {
            out.push_str(&format!(
                "warning: the configuration in {} has uncommitted changes (not in {}):\n",
                self.root.display(),
                self.upstream
            ));
            push_listed(&mut out, &self.dirty, "files");
        }
        if self.unpushed > 0 {
            out.push_str(&format!(
                "warning: {} local commit{} in {} {} not pushed to {}\n",
                self.unpushed,
                plural(self.unpushed),
                self.root.display(),
                if self.unpushed == 1 { "is" } else { "are" },
                self.upstream
            ));
        }
        out
    }
}

fn push_listed(out: &mut String, lines: &[String], what: &str) {
    for line in lines.iter().take(LISTED) {
        out.push_str(&format!("  {line}\n"));
    }
    if lines.len() > LISTED {
        out.push_str(&format!("  … and {} more {what}\n", lines.len() - LISTED));
    }
}

fn short(hash: &str) -> &str {
    hash.get(..10).unwrap_or(hash)
}

fn plural(n: impl TryInto<u64>) -> &'static str {
    if n.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

/// The non-empty lines of `git status --porcelain`.
fn dirty_lines(porcelain: &str) -> Vec<String> {
    porcelain.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim_end().to_owned()).collect()
}

/// `git rev-list --left-right --count A...B`: commits only in A, only in B.
fn parse_counts(text: &str) -> Option<(u32, u32)> {
    let mut fields = text.split_whitespace().map(str::parse::<u32>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// `git -C <root>`.
struct Git<'a> {
    root: &'a Path,
}

struct GitOutput {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Git<'_> {
    /// Runs git; `None` when it could not start (not installed) or took too long.
    async fn run(&self, args: &[&str], timeout: Duration) -> Option<GitOutput> {
        let mut command = tokio::process::Command::new("git");
        command
            .arg("-C")
            .arg(self.root)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output()).await.ok()?.ok()?;
        Some(GitOutput {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// A query that must succeed once the repository is known to be one.
    async fn query(&self, args: &[&str]) -> Result<String, SyncError> {
        match self.run(args, LOCAL_TIMEOUT).await {
            Some(out) if out.ok => Ok(out.stdout),
            Some(out) => Err(SyncError::Git { root: self.root.to_path_buf(), command: args.join(" "), detail: last_lines(&out.stderr) }),
            None => Err(SyncError::Git {
                root: self.root.to_path_buf(),
                command: args.join(" "),
                detail: format!("did not finish within {}", humantime::format_duration(LOCAL_TIMEOUT)),
            }),
        }
    }

    /// The outcome of one step of the pull as a [`SyncError::Pull`].
    fn pull_step(&self, output: Option<GitOutput>, what: &str, timeout: Duration) -> Result<(), SyncError> {
        let detail = match output {
            Some(out) if out.ok => return Ok(()),
            Some(out) => format!("{what}: {}", last_lines(&out.stderr)),
            None => format!("{what} did not finish within {}", humantime::format_duration(timeout)),
        };
        Err(SyncError::Pull { root: self.root.to_path_buf(), detail })
    }
}

/// The last few lines git printed, as one line.
fn last_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("hint:")).collect();
    let text = lines[lines.len().saturating_sub(3)..].join(" / ");
    if text.is_empty() {
        "(git said nothing)".to_owned()
    } else {
        text
    }
}

/// The commit checked out in `root` (short), when it is a git checkout.
pub async fn head(root: &Path) -> Option<String> {
    let git = Git { root };
    git.run(&["rev-parse", "--short", "HEAD"], LOCAL_TIMEOUT).await.filter(|out| out.ok).map(|out| out.stdout.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_lines_are_the_dirty_files() {
        assert_eq!(dirty_lines(" M apps/hello.toml\n?? apps/new.toml\n\n"), [" M apps/hello.toml", "?? apps/new.toml"]);
        assert!(dirty_lines("").is_empty());
    }

    #[test]
    fn git_advice_is_left_out_of_errors() {
        assert_eq!(
            last_lines("hint: do this\nhint: or that\nfatal: Not possible to fast-forward, aborting.\n"),
            "fatal: Not possible to fast-forward, aborting."
        );
        assert_eq!(last_lines(""), "(git said nothing)");
    }

    #[test]
    fn left_right_counts_parse() {
        assert_eq!(parse_counts("2\t1\n"), Some((2, 1)));
        assert_eq!(parse_counts("x"), None);
    }

    #[test]
    fn a_pull_is_described_by_its_range_commits_and_files() {
        let synced = Synced {
            root: PathBuf::from("/cfg"),
            upstream: "origin/main".into(),
            dirty: vec![" M apps/hello.toml".into()],
            pulled: Some(Pulled {
                from: "0123456789abcdef".into(),
                to: "fedcba9876543210".into(),
                commits: vec!["fedcba9 Ann: hello: one more host".into()],
                stat: " apps/hello.toml | 2 +-\n 1 file changed".into(),
            }),
            unpushed: 2,
        };
        assert_eq!(
            synced.describe(),
            "configuration updated from origin/main: 0123456789..fedcba9876 (1 commit)\n  fedcba9 Ann: hello: one more host\n   \
             apps/hello.toml | 2 +-\n   1 file changed\n\
             warning: the configuration in /cfg has uncommitted changes (not in origin/main):\n   M apps/hello.toml\n\
             warning: 2 local commits in /cfg are not pushed to origin/main\n"
        );
        assert_eq!(Synced::default().describe(), "");
    }

    #[test]
    fn long_lists_are_cut() {
        let mut out = String::new();
        let lines: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
        push_listed(&mut out, &lines, "files");
        assert_eq!(out.lines().count(), LISTED + 1);
        assert!(out.ends_with("  … and 2 more files\n"));
    }
}
