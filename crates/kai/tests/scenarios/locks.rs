//! A team's day with locks (issue 26): `--lock-wait` on deploy, rollback and promote, and
//! `kai lock --hold --message` (a freeze by hand), run by `deploy_local` on local hosts.
//! The deploy lock is taken as in every deploy (the scenarios in `deploy.rs` run over SSH
//! too); these look at what waits for it and what holds it.

use std::time::Duration;

use crate::support::{wait_until, Artifact, World};

/// Someone else's deploy lock, of a kai on another machine (nobody can tell from here
/// whether it still runs: it is waited for).
const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

#[track_caller]
fn assert_serving(world: &World, version: &str) {
    for host in world.actives() {
        assert_eq!(host.current().as_deref(), Some(version), "current on {host:?}");
        assert_eq!(host.version().as_deref(), Some(version), "GET /version on {host:?}");
    }
}

#[track_caller]
fn assert_unlocked(world: &World) {
    for host in world.hosts() {
        assert!(!host.is_locked(), "a lock is left on {host:?}");
    }
}

/// A world running 1.0.0 on web1, web2 and the standby web3, with 1.1.0 published.
fn upgradable() -> World {
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    world
}

#[test]
fn a_deploy_with_lock_wait_waits_for_a_hold_and_goes_on_once_it_is_released() {
    crate::support::require_transport();
    let world = upgradable();
    world
        .kai(["lock", "test", "hello", "--hold", "--message", "freeze: incident 7, ask ann"])
        .assert_exit(0)
        .assert_says(&["hello in test is held by hand on web1, web2, web3", "held by hand on web1, web2, web3: freeze: incident 7"]);

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0", "--lock-wait", "20s"], &[]);
    wait_until("the deploy says who holds the lock", || deploy.stderr().contains("the deploy lock is held by"));
    // Two tries at least, 2 s apart: the deploy keeps waiting, and changes nothing meanwhile.
    std::thread::sleep(Duration::from_millis(2500));
    let said = deploy.stderr();
    assert!(said.contains("(held by hand) since") && said.contains("freeze: incident 7, ask ann"), "{said}");
    assert!(said.contains("waiting up to 20s for it"), "{said}");
    assert_eq!(said.matches("the deploy lock is held by").count(), 1, "the holder is shown once: {said}");
    assert_serving(&world, "1.0.0");
    for host in world.hosts() {
        let owner = std::fs::read_to_string(host.home().join(".kai/lock/owner")).unwrap_or_default();
        assert!(owner.contains(r#""hold":"freeze: incident 7, ask ann""#), "the hold is in place on {host:?}: {owner}");
    }

    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0).assert_says(&["unlocked hello in test"]);
    let run = deploy.wait();

    run.assert_exit(0).assert_says(&["1.0.0 -> 1.1.0", "deployed", "note: waited", "for the deploy lock held by tester@"]);
    assert!(!run.stderr.contains("lock failed"), "each try is not a failure of its own: {run:?}");
    assert!(run.took > Duration::from_secs(2), "{run:?}");
    assert_serving(&world, "1.1.0");
    assert_unlocked(&world);
}

#[test]
fn a_wait_past_its_limit_exits_3_as_without_it_and_leaves_no_lock_of_its_own() {
    crate::support::require_transport();
    let world = upgradable();
    // Held on web2 only: every try locks web1 first, meets web2's, and lets web1 go again.
    world.host("web2").hold_lock(ANN_LOCK);
    let before = world.snapshot();

    let run = world.deploy(["hello-1.1.0", "--lock-wait", "3s"]);

    run.assert_exit(3).assert_says(&[
        "locked by ann@ws1 (pid 1)",
        "the deploy lock is held by ann@ws1 (pid 1) since 2026-01-01T00:00:00Z: kai deploy test hello; waiting up to 3s",
        "kai waited 3s for it (--lock-wait) and gave up",
    ]);
    assert!(run.took >= Duration::from_secs(3), "{run:?}");
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    assert!(world.host("web2").is_locked(), "ann's lock is gone");
    for host in ["web1", "web3"] {
        assert!(!world.host(host).is_locked(), "a try left its lock on {host}");
    }
    assert_serving(&world, "1.0.0");
}

#[test]
fn a_stale_lock_is_not_waited_for() {
    crate::support::require_transport();
    let world = upgradable();
    // A lock of a process of this machine that is no kai (this test): stale.
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("this machine's name").trim().to_owned();
    let stale = format!(
        r#"{{"user":"ann","machine":"{machine}","pid":{},"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}}"#,
        std::process::id()
    );
    world.host("web1").hold_lock(&stale);

    let run = world.deploy(["hello-1.1.0", "--lock-wait", "20s"]);

    run.assert_exit(3).assert_says(&["the lock is stale", "kai unlock test hello", "kai does not wait for a stale lock"]);
    assert!(run.took < Duration::from_secs(10), "it waited: {run:?}");
    assert!(!run.stderr.contains("waiting up to"), "{run:?}");
    assert_serving(&world, "1.0.0");

    // Once it is broken, a deploy with --lock-wait meets no lock: it just runs.
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0);
    let run = world.deploy(["hello-1.1.0", "--lock-wait", "20s"]);
    run.assert_exit(0).assert_says(&["deployed"]);
    assert!(!run.output().contains("wait"), "nothing was waited for: {run:?}");
    assert_serving(&world, "1.1.0");
}

#[test]
fn a_hold_stops_deploys_with_its_message_is_in_history_and_unlock_releases_it() {
    crate::support::require_transport();
    let world = upgradable();
    for (message, says) in [
        ("two\nlines", "--message \"two\\nlines\": it holds a line break (\\n): the message is one line of text"),
        ("", "it is empty"),
        (&"x".repeat(201), "it is 201 characters long, at most 200"),
    ] {
        world
            .kai(["lock", "test", "hello", "--hold", "--message", message])
            .assert_exit(2)
            .assert_says(&[says, "hint: kai lock test hello --hold"]);
    }
    world.kai(["lock", "test", "hello", "--hold"]).assert_exit(2).assert_says(&["--message"]);
    assert_unlocked(&world);

    world.kai(["lock", "test", "hello", "--hold", "--message", "freeze: incident 7"]).assert_exit(0);
    // A second hold meets the first: nothing more is taken.
    world.kai(["lock", "test", "hello", "--hold", "--message", "mine now"]).assert_exit(3).assert_says(&[
        "web1: the deploy lock of hello in test is held by tester@",
        "(held by hand)",
        "freeze: incident 7",
        "nothing was held",
    ]);
    let shown = world.kai(["lock", "test", "hello"]);
    shown.assert_exit(0).assert_says(&["tester@", "kai lock test hello --hold", "held by hand on web1, web2, web3: freeze: incident 7"]);
    let document: serde_json::Value = serde_json::from_str(&world.kai(["lock", "test", "hello", "--json"]).stdout).expect("JSON");
    assert_eq!(document[0]["lock"]["hold"], "freeze: incident 7");
    world
        .kai(["status", "test", "hello"])
        .assert_exit(1)
        .assert_says(&["held by hand", "`kai unlock test hello` releases it when the hold is over"]);

    let before = world.snapshot();
    world.deploy(["hello-1.1.0"]).assert_exit(3).assert_says(&[
        "hello: locked by tester@",
        "(held by hand) since",
        ": freeze: incident 7",
        "holds it by hand (`kai lock --hold`): it stays until `kai unlock test hello` releases it",
    ]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());

    let history = world.kai(["history", "test"]);
    history.assert_exit(0).assert_says(&["hold    ok", "web1,web2,web3", "held by hand: freeze: incident 7"]);
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0).assert_says(&["web1: unlocked hello in test (was held by tester@"]);
    let released = world.host("web1").history().pop().unwrap_or_default();
    assert!(released.contains(r#""action":"unlock""#) && released.contains("released the hold of"), "{released}");
    world.kai(["history", "test"]).assert_exit(0).assert_says(&["released the hold of tester@"]);

    world.deploy(["hello-1.1.0"]).assert_exit(0).assert_says(&["deployed"]);
    assert_serving(&world, "1.1.0");
    assert_unlocked(&world);
}

#[test]
fn a_hold_message_from_a_host_reaches_the_terminal_escaped_and_cut() {
    crate::support::require_transport();
    let world = upgradable();
    let hostile = format!(
        r#"{{"user":"ann","machine":"ws1","pid":0,"since":"2026-01-01T00:00:00Z","command":"kai lock test hello --hold","hold":"\u001b]0;pwned\u0007{}"}}"#,
        "x".repeat(5000)
    );
    world.host("web1").hold_lock(&hostile);

    for run in [world.kai(["lock", "test", "hello"]), world.deploy(["hello-1.1.0"]), world.kai(["status", "test", "hello"])] {
        assert!(!run.output().contains('\u{1b}') && !run.output().contains('\u{7}'), "a control character reached the terminal: {run:?}");
        assert!(run.output().contains("\\u{1b}]0;pwned\\u{7}xxx"), "{run:?}");
        assert!(!run.output().contains(&"x".repeat(1000)), "the message was not cut: {run:?}");
    }
}

#[test]
fn rollback_and_promote_take_lock_wait_too() {
    crate::support::require_transport();
    let world = upgradable().deployed("hello-1.1.0");
    world.host("web2").hold_lock(ANN_LOCK);

    let run = world.kai(["rollback", "test", "hello", "--lock-wait", "1s"]);
    run.assert_exit(3).assert_says(&["waiting up to 1s", "kai waited 1s for it (--lock-wait) and gave up"]);
    let run = world.kai(["promote", "prod", "test", "--lock-wait", "1x"]);
    run.assert_exit(2).assert_says(&["\"1x\" is not a duration", "like \"30s\" or \"5m\""]);
    world.kai(["deploy", "test", "hello-1.0.0", "--lock-wait", "0s"]).assert_exit(2).assert_says(&["at least 1s"]);
    assert_serving(&world, "1.1.0");
}

#[test]
fn a_deploy_waits_for_a_running_deploy_of_this_machine_then_finds_it_done() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::SlowStart(1500));

    let first = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_until("the first deploy holds the lock", || world.host("web2").is_locked());
    let second = world.kai(["deploy", "test", "hello-1.1.0", "--lock-wait", "60s"]);
    let first = first.wait();

    first.assert_exit(0).assert_says(&["deployed"]);
    second.assert_exit(0).assert_says(&["the deploy lock is held by tester@", "deploy test hello-1.1.0", "up to date", "note: waited"]);
    assert_serving(&world, "1.1.0");
    assert_unlocked(&world);
}

#[test]
fn a_stop_while_waiting_changes_nothing_and_exits_130() {
    crate::support::require_transport();
    let world = upgradable();
    world.host("web2").hold_lock(ANN_LOCK);
    let before = world.snapshot();

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0", "--lock-wait", "60s"], &[]);
    wait_until("the deploy waits", || deploy.stderr().contains("waiting up to 1m 00s"));
    deploy.signal("INT");
    let run = deploy.wait();

    run.assert_exit(130).assert_says(&["interrupted after waiting", "for the deploy lock held by ann@ws1", "nothing changed"]);
    assert!(run.took < Duration::from_secs(30), "{run:?}");
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    for host in ["web1", "web3"] {
        assert!(!world.host(host).is_locked(), "the stopped wait left its lock on {host}");
    }
}
