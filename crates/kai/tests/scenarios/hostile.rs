//! Hostile artifacts, hostile repositories and races (run on local hosts and again over
//! a real sshd): nothing escapes a release, nothing hangs, nothing is lost.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::support::{Artifact, World};

/// A chain of links each of which looks harmless as text (`l2 -> l1/..`), and `config`
/// through it to a folder outside every release: kai would write the properties there.
#[test]
fn a_chain_of_links_that_leaves_the_release_is_refused_and_nothing_is_written_outside() {
    let mut world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let outside = world.base().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let through_root = outside.display().to_string().trim_start_matches('/').to_owned();
    world.publish_with("1.1.0", Artifact::Good, |release: &Path| {
        symlink(".", release.join("l1")).unwrap();
        for i in 2..=20 {
            symlink(format!("l{}/..", i - 1), release.join(format!("l{i}"))).unwrap();
        }
        symlink(format!("l20/{through_root}"), release.join("config")).unwrap();
    });

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["unpack failed", "outside", "nothing was switched"]);

    assert!(!outside.join("app.properties").exists(), "kai wrote through the links, outside the release");
    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
    assert_eq!(world.host("web1").releases(), ["1.0.0"], "no temporary folder is left");
}

/// A link whose name holds a tab (a listing split on tabs reads it wrong).
#[test]
fn a_link_with_a_tab_in_its_name_is_judged_by_where_it_leads() {
    let mut world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish_with("1.1.0", Artifact::Good, |release: &Path| symlink("/etc", release.join("a\tb")).unwrap());

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["unpack failed", "resolves to /etc, outside"]);

    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
}

/// Links that stay inside (to a sibling, up and down again) are fine.
#[test]
fn links_that_stay_inside_the_release_are_kept() {
    let mut world = World::builder().active(1).standby(0).build();
    world.publish_with("1.0.0", Artifact::Good, |release: &Path| {
        std::fs::create_dir_all(release.join("lib")).unwrap();
        symlink("../VERSION", release.join("lib/VERSION")).unwrap();
        symlink("lib", release.join("libs")).unwrap();
    });

    world.deploy(["hello-1.0.0"]).assert_exit(0);

    let link = world.host("web1").home().join("releases/1.0.0/libs/VERSION");
    assert_eq!(std::fs::read_to_string(link).unwrap().trim(), "1.0.0");
}

/// A repository that lists `..` (or anything that cannot be a folder's name) has it
/// left out, with a warning: it never reaches a plan.
#[test]
fn versions_the_repository_lists_that_are_no_valid_names_are_left_out() {
    let mut world = World::builder().active(1).standby(0).publish("1.0.0").build();
    for bogus in ["..", "../../etc", "1.1 x"] {
        world.list_in_metadata(bogus);
    }

    let versions = world.kai(["versions", "hello"]);
    versions.assert_exit(0).assert_says(&["warning", "\"..\"", "is not a valid name", "left out"]);
    assert_eq!(versions.stdout.lines().collect::<Vec<_>>(), ["1.0.0  (newest release)"]);
    let plan = world.plan(["hello"]);
    plan.assert_exit(0);
    assert!(!plan.stdout.contains("releases/..") && !plan.stdout.contains("etc"), "{plan:?}");
    world.deploy(["hello-.."]).assert_exit(2);
    world.deploy(["hello"]).assert_exit(0).assert_says(&["- -> 1.0.0"]);
}

/// What hosts wrote (a history line, a lock owner) reaches the terminal escaped: no
/// escape sequence from a host moves the cursor or clears the screen.
#[test]
fn control_bytes_written_on_a_host_are_shown_escaped() {
    let world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let history = world.host("web1").home().join(".kai/history.jsonl");
    let mut text = std::fs::read_to_string(&history).unwrap();
    let last = text.lines().last().unwrap();
    let run = last.split(r#""run":""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    let forged = last.replace(r#""user":"tester""#, r#""user":"ann\u001b[2J\r""#).replace(&run, "forged");
    text.push_str(&forged);
    text.push('\n');
    std::fs::write(&history, text).unwrap();
    world
        .host("web1")
        .hold_lock(r#"{"user":"eve\u001b]0;owned\u0007","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"x"}"#);

    for run in [world.kai(["history", "test"]), world.kai(["lock", "test", "hello"]), world.kai(["status", "test", "hello"])] {
        assert!(!run.output().contains('\u{1b}') && !run.output().contains('\u{7}'), "a control byte reached the terminal: {run:?}");
        assert!(run.output().contains("\\u{1b}"), "shown escaped: {run:?}");
    }
}

/// A newline in the repository password would start a curl option on the hosts
/// (`output = /tmp/x`): refused before anything runs.
#[test]
fn a_newline_in_the_repository_password_is_refused_before_anything_runs() {
    let world = World::builder().active(1).standby(0).repository_credentials().publish("1.0.0").build();
    let planted = world.base().join("planted");
    let password = format!("pw\noutput = {}", planted.display());

    let run =
        world.start_kai(["deploy", "test", "hello-1.0.0"], &[("KAI_TEST_REPO_USER", "u"), ("KAI_TEST_REPO_PASSWORD", &password)]).wait();

    run.assert_exit(2).assert_says(&["KAI_TEST_REPO_PASSWORD", "control character"]);
    assert!(!run.output().contains("output ="), "the password is never shown: {run:?}");
    assert!(!planted.exists());
    assert_eq!(world.snapshot().changes_since(&crate::support::Snapshot::default()), Vec::<String>::new(), "a host was touched");
}

/// A stage refused on the host (here: a link out of the release) is in the hosts'
/// history, with what refused it.
#[test]
fn a_failed_stage_is_recorded_in_the_history_of_its_hosts() {
    let mut world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish_with("1.1.0", Artifact::Good, |release: &Path| symlink("/", release.join("root")).unwrap());

    world.deploy(["hello-1.1.0"]).assert_exit(1);

    world.kai(["history", "test"]).assert_exit(0).assert_says(&[
        "1.0.0 -> 1.1.0",
        "FAILED (web1)",
        "unpack failed",
        "resolves to /, outside",
    ]);
    for host in world.hosts() {
        assert!(host.results().last().is_some_and(|l| l.contains(r#""to":"1.1.0""#)), "{host:?}");
    }
}

/// Five deploys of one app started at once, twenty times: exactly one proceeds, the
/// others exit 3 naming it, whatever the timing (the first host is locked alone first).
#[test]
fn of_five_deploys_started_together_exactly_one_proceeds_and_the_others_name_it() {
    let world = World::builder().active(2).standby(1).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    for round in 0..20 {
        let version = if round % 2 == 0 { "hello-1.1.0" } else { "hello-1.0.0" };
        let runs: Vec<_> = (0..5).map(|_| world.start_kai(["deploy", "test", version], &[])).collect();
        let runs: Vec<_> = runs.into_iter().map(crate::support::Background::wait).collect();
        let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
        assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "round {round}: exactly one proceeds: {codes:?}\n{runs:?}");
        assert_eq!(codes.iter().filter(|c| **c == 3).count(), 4, "round {round}: the others are locked out: {codes:?}\n{runs:?}");
        for run in runs.iter().filter(|r| r.code == 3) {
            run.assert_says(&["locked by tester@"]);
        }
        assert!(world.hosts().all(|h| !h.is_locked()), "round {round}: a lock is left");
    }
    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
}

/// Hosts that download the artifact themselves are checked for free disk against its
/// size (the repository gives it): a host without room refuses before any download,
/// leaves nothing behind, and says so in its history.
#[test]
fn a_host_without_room_for_a_pulled_artifact_refuses_before_downloading() {
    let mut world = World::builder().active(1).standby(0).http_repository().build();
    world.publish_with("1.0.0", Artifact::Good, |release: &Path| {
        // Noise that gzip cannot shrink (xorshift64).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..3_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(release.join("data.bin"), noise).unwrap();
    });
    let web1 = world.host("web1");
    let _small = web1.limit_disk(4 * 1024 * 1024);

    let run = world.deploy(["hello-1.0.0"]);

    run.assert_exit(1).assert_says(&["web1: ", "MiB free in the app home", "needed to stage hello"]);
    let downloads = web1.home().join("downloads");
    let left: Vec<_> = std::fs::read_dir(&downloads).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left in downloads: {left:?}");
    assert!(web1.results().last().is_some_and(|l| l.contains("MiB free")), "{:?}", web1.history());
    assert!(!web1.is_locked());
}
