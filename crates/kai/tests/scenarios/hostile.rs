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

/// What a hostile host can hold, each in a place kai shows: an escape sequence that
/// would set the terminal's title and color it (and a bell).
const ESCAPES: &str = "\u{1b}]0;pwned\u{7}\u{1b}[31m";

/// No byte of what kai printed is a control character but the newline.
#[track_caller]
fn no_raw_control(run: &crate::support::Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let raw: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
        assert!(raw.is_empty(), "`{}` printed raw control characters {raw:?} on {stream}: {run:?}", run.args.join(" "));
    }
}

/// Issue 23: text from a host reaches the terminal only escaped: a release folder's
/// name (status's "hosts disagree" line, the plan's host line), a lock owner (the
/// "locked" hint), a recorded checksum (promote's "the artifacts differ"), a property
/// key (the plan's and diff's lines), what a start script printed (the failure lines),
/// what a judge command printed (the canary's note).
#[test]
fn escape_sequences_from_a_host_reach_the_terminal_only_escaped() {
    let mut world = World::builder().active(4).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    world.move_to_env("prod", &["web3", "web4"]);
    let web1 = world.host("web1").home();

    // A release folder whose name carries the sequence, current pointing to it.
    let hostile = format!("1.0.0{ESCAPES}");
    std::fs::create_dir_all(web1.join("releases").join(&hostile)).unwrap();
    std::fs::remove_file(web1.join("current")).unwrap();
    symlink(format!("releases/{hostile}"), web1.join("current")).unwrap();
    let status = world.kai(["status", "test"]);
    status.assert_exit(1).assert_says(&["hosts disagree", "not a release name"]);
    no_raw_control(&status);
    let plan = world.kai(["plan", "test", "hello-1.1.0"]);
    no_raw_control(&plan);
    std::fs::remove_file(web1.join("current")).unwrap();
    symlink("releases/1.0.0", web1.join("current")).unwrap();

    // A property key in the properties file of the running release.
    let properties = web1.join("releases/1.0.0/config/app.properties");
    let text = std::fs::read_to_string(&properties).unwrap();
    std::fs::write(&properties, format!("{text}k{ESCAPES}=v{ESCAPES}\n")).unwrap();
    let plan = world.kai(["plan", "test", "hello-1.0.0"]);
    plan.assert_exit(0).assert_says(&["restarted"]);
    no_raw_control(&plan);
    let diff = world.kai(["diff", "test", "prod"]);
    no_raw_control(&diff);
    std::fs::write(&properties, text).unwrap();

    // A recorded checksum, seen by promote.
    let record = world.host("web2").home().join(".kai/checksums/1.0.0");
    let sums = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, sums.replacen("sha256:", &format!("sha256:{ESCAPES}"), 1)).unwrap();
    let promote = world.kai(["promote", "test", "prod", "--yes"]);
    promote.assert_exit(2).assert_says(&["the artifacts differ"]);
    no_raw_control(&promote);
    std::fs::write(&record, sums).unwrap();

    // A lock owner, in the hint of a deploy that meets it.
    let owner = serde_json::json!({"user": format!("ann{ESCAPES}"), "machine": format!("ws1{ESCAPES}"), "pid": 1,
        "since": "2026-01-01T00:00:00Z", "command": format!("kai {ESCAPES}")});
    world.host("web2").hold_lock(&owner.to_string());
    let locked = world.deploy(["hello-1.1.0"]);
    locked.assert_exit(3).assert_says(&["locked by ann"]);
    no_raw_control(&locked);
    let lock = world.kai(["lock", "test", "hello"]);
    no_raw_control(&lock);
    std::fs::remove_dir_all(world.host("web2").home().join(".kai/lock")).unwrap();

    // What a start script printed, in the failure lines.
    world.publish_with("1.2.0", Artifact::Good, |release: &Path| {
        let start = release.join("bin/start.sh");
        std::fs::write(&start, format!("#!/bin/sh\nprintf '%s\\n' 'broken {ESCAPES}'\nexit 1\n")).unwrap();
    });
    let failed = world.deploy(["hello-1.2.0"]);
    failed.assert_exit(1).assert_says(&["start failed on web1", "broken \\u{1b}"]);
    no_raw_control(&failed);
}

/// Issue 23: what a host holds is read with a bound. A history of tens of megabytes is
/// read from its end (the newest records, with a warning); a lock owner of 20 MB is
/// named, not read, and no line of what kai prints grows with it.
#[test]
fn a_huge_history_and_a_huge_lock_owner_are_read_with_a_bound() {
    let world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let web1 = world.host("web1").home();
    let newest = std::fs::read_to_string(web1.join(".kai/history.jsonl")).unwrap();
    let old_line = newest
        .lines()
        .next()
        .unwrap()
        .replace("\"to\":\"1.0.0\"", "\"to\":\"0.0.1\"")
        .replace("2026", "2001")
        .replace("\"run\":\"", "\"run\":\"old-");
    let mut huge = String::with_capacity(32 * 1024 * 1024);
    while huge.len() < 30 * 1024 * 1024 {
        huge.push_str(&old_line);
        huge.push('\n');
    }
    huge.push_str(&newest);
    std::fs::write(web1.join(".kai/history.jsonl"), huge).unwrap();

    let history = world.kai(["history", "test", "--limit", "3"]);
    history
        .assert_exit(0)
        .assert_says(&["- -> 1.0.0", "web1 (hello in test): .kai/history.jsonl is larger than 256 KiB: only its newest part was read"]);
    assert!(history.stdout.len() < 4096, "{} bytes", history.stdout.len());

    let lock = web1.join(".kai/lock");
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(lock.join("owner"), "x".repeat(20 * 1024 * 1024)).unwrap();
    let status = world.kai(["status", "test", "hello"]);
    status.assert_exit(1).assert_says(&["its owner file is larger than 16 KiB: not read"]);
    let longest = status.stdout.lines().chain(status.stderr.lines()).map(str::len).max().unwrap_or(0);
    assert!(longest < 1024, "a line of {longest} bytes");
}
