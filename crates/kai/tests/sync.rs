//! Configuration sync (issue 5): when the configuration repository is a git checkout
//! with an upstream, `deploy` and `rollback` first fast-forward it (as `git pull
//! --ff-only`), say what the pull brought, and deploy the new configuration.
//! Uncommitted changes are a warning, and refused on a protected environment unless
//! `--allow-dirty`; a failed pull deploys nothing; `--no-sync` skips all of it.
//!
//! Each test shares the world's configuration through a bare repository in the world's
//! folder: the configuration is committed and pushed there with its upstream set (a
//! clone in all but name), and Ann, a colleague, works in a second clone of it. git runs
//! with the world's HOME and its identity on the command line.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{World, ENV};

/// `git -C dir ARGS...` with the world's HOME, an identity and no system configuration.
#[track_caller]
fn git(world: &World, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Ann Tester", "-c", "user.email=ann@example.org", "-c", "init.defaultBranch=main"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
        .env("HOME", world.home_dir())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {} in {}: {}", args.join(" "), dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Commits the world's configuration (its Maven repository `repo/` ignored), pushes it
/// to a new bare repository and sets that as its upstream; returns the bare repository.
fn share(world: &World) -> PathBuf {
    let upstream = world.base().join("upstream.git");
    git(world, world.base(), &["init", "--quiet", "--bare", &upstream.display().to_string()]);
    fs::write(world.root().join(".gitignore"), "/repo/\n").expect("write .gitignore");
    let root = world.root();
    git(world, root, &["init", "--quiet"]);
    git(world, root, &["add", "kai.toml", "environments", "apps", ".gitignore"]);
    git(world, root, &["commit", "--quiet", "-m", "the configuration"]);
    git(world, root, &["remote", "add", "origin", &upstream.display().to_string()]);
    git(world, root, &["push", "--quiet", "-u", "origin", "main"]);
    upstream
}

/// Ann's clone of the upstream.
fn anns_clone(world: &World, upstream: &Path) -> PathBuf {
    let clone = world.base().join("ann");
    git(world, world.base(), &["clone", "--quiet", &upstream.display().to_string(), &clone.display().to_string()]);
    clone
}

/// Appends `text` to `file` in `clone` and commits it there.
fn commit(world: &World, clone: &Path, file: &str, text: &str, message: &str) {
    let path = clone.join(file);
    let old = fs::read_to_string(&path).unwrap_or_default();
    fs::write(&path, format!("{old}{text}")).expect("edit the file");
    git(world, clone, &["commit", "--quiet", "-am", message]);
}

/// Ann adds an environment-specific property to the app and pushes it.
fn ann_pushes_a_property(world: &World, upstream: &Path) {
    let ann = anns_clone(world, upstream);
    commit(world, &ann, "apps/hello.toml", "\n[env.test.properties]\n\"pulled\" = \"from upstream\"\n", "hello: a property");
    git(world, &ann, &["push", "--quiet"]);
}

#[test]
fn a_commit_pushed_upstream_is_pulled_and_the_new_configuration_deployed() {
    require_git();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build();
    let upstream = share(&world);
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    ann_pushes_a_property(&world, &upstream);

    let run = world.deploy(["hello-1.1.0"]);

    run.assert_exit(0).assert_says(&[
        "configuration updated from origin/main:",
        "(1 commit)",
        "Ann Tester: hello: a property",
        "apps/hello.toml | 3 +++",
    ]);
    assert!(!run.output().contains("uncommitted"), "the local hosts in .kai/ are not changes: {run:?}");
    for host in world.hosts() {
        assert!(host.properties("1.1.0").contains("pulled=from upstream"), "{host:?}: {}", host.properties("1.1.0"));
        assert!(!host.properties("1.0.0").contains("pulled"), "{host:?}");
    }
    assert!(fs::read_to_string(world.root().join("apps/hello.toml")).expect("the app file").contains("pulled"));

    let again = world.deploy(["hello-1.1.0"]);
    again.assert_exit(0);
    assert!(!again.output().contains("configuration updated"), "nothing new to pull: {again:?}");
}

#[test]
fn a_rollback_syncs_too() {
    require_git();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");
    let upstream = share(&world);
    ann_pushes_a_property(&world, &upstream);

    world.kai(["rollback", ENV, "hello"]).assert_exit(0).assert_says(&["configuration updated from origin/main:"]);
}

#[test]
fn a_dirty_configuration_is_refused_on_a_protected_environment_unless_allowed() {
    require_git();
    let world = World::builder().publish("1.0.0").build();
    world.protect();
    share(&world);
    world.append_line("apps/hello.toml", "# tried something");
    let before = world.snapshot();

    let refused = world.kai(["deploy", ENV, "--yes", "hello-1.0.0"]);

    refused.assert_exit(2).assert_says(&[
        "warning: the configuration in",
        " M apps/hello.toml",
        "test is protected and the configuration in",
        "has uncommitted changes; nothing was deployed",
        "hint: commit and push them first, or pass --allow-dirty",
    ]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());

    let allowed = world.kai(["deploy", ENV, "--yes", "--allow-dirty", "hello-1.0.0"]);
    allowed.assert_exit(0).assert_says(&["uncommitted changes", "deployed"]);
    assert_eq!(world.host("web1").current().as_deref(), Some("1.0.0"));
}

#[test]
fn on_an_unprotected_environment_uncommitted_changes_are_only_a_warning() {
    require_git();
    let world = World::builder().publish("1.0.0").build();
    share(&world);
    fs::write(world.root().join("notes.txt"), "not yet\n").expect("an untracked file");

    let run = world.deploy(["hello-1.0.0"]);

    run.assert_exit(0).assert_says(&["warning: the configuration in", "?? notes.txt", "deployed"]);
}

#[test]
fn a_diverged_checkout_fails_with_a_hint_and_deploys_nothing() {
    require_git();
    let world = World::builder().publish("1.0.0").build();
    let upstream = share(&world);
    ann_pushes_a_property(&world, &upstream);
    commit(&world, world.root(), "kai.toml", "# a local change\n", "local: a comment");
    let before = world.snapshot();

    let run = world.deploy(["hello-1.0.0"]);

    run.assert_exit(2).assert_says(&[
        "error: git pull --ff-only failed in",
        "have diverged (1 local commit, 1 new in origin/main)",
        "nothing was deployed",
        "hint: resolve it in",
        "or pass --no-sync to deploy what you have",
    ]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    assert!(world.host("web1").current().is_none());

    world.deploy(["--no-sync", "hello-1.0.0"]).assert_exit(0);
    assert_eq!(world.host("web1").current().as_deref(), Some("1.0.0"));
}

#[test]
fn an_unreachable_upstream_fails_with_a_hint() {
    require_git();
    let world = World::builder().publish("1.0.0").build();
    let upstream = share(&world);
    fs::rename(&upstream, world.base().join("gone.git")).expect("move the upstream away");

    let run = world.deploy(["hello-1.0.0"]);

    run.assert_exit(2).assert_says(&["git pull --ff-only failed", "git fetch:", "hint: resolve it in", "--no-sync"]);
    assert!(world.host("web1").current().is_none());
}

#[test]
fn no_sync_leaves_the_checkout_as_it_is() {
    require_git();
    let world = World::builder().publish("1.0.0").build();
    let upstream = share(&world);
    ann_pushes_a_property(&world, &upstream);

    let run = world.deploy(["--no-sync", "hello-1.0.0"]);

    run.assert_exit(0);
    assert!(!run.output().contains("configuration updated"), "{run:?}");
    assert!(!world.host("web1").properties("1.0.0").contains("pulled"));
    assert!(!fs::read_to_string(world.root().join("apps/hello.toml")).expect("the app file").contains("pulled"));
}

#[test]
fn without_git_or_without_an_upstream_there_is_nothing_to_sync_and_nothing_said() {
    require_git();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build();

    let plain = world.deploy(["hello-1.0.0"]);
    plain.assert_exit(0);
    assert!(!plain.stderr.contains("git") && !plain.stderr.contains("configuration"), "{plain:?}");

    git(&world, world.root(), &["init", "--quiet"]);
    git(&world, world.root(), &["add", "kai.toml"]);
    git(&world, world.root(), &["commit", "--quiet", "-m", "only kai.toml"]);
    let local = world.deploy(["hello-1.1.0"]);
    local.assert_exit(0);
    assert!(!local.stderr.contains("git") && !local.stderr.contains("uncommitted"), "no upstream, nothing said: {local:?}");
}

/// These tests need git; they fail without it, saying what to install.
#[track_caller]
fn require_git() {
    let found = Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "git is missing: apt-get install git (scripts/test.sh installs it, as root)");
}
