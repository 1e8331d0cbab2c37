//! Fleet visibility (issue 6): `kai status`, `history`, `ps`, `lock` and `unlock` against
//! real deploys of the demo service, run by `visibility` on local hosts and by
//! `visibility_ssh` over a real sshd: the same specification for both transports.

use serde_json::Value;

use crate::support::{Artifact, Run, World, USER};

const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

/// The cells of a table row (cells are two or more spaces apart), without the first.
fn columns(row: &str) -> Vec<&str> {
    row.split("  ").map(str::trim).filter(|c| !c.is_empty()).skip(1).collect()
}

/// The lines of stdout, trailing blanks trimmed.
fn lines(run: &Run) -> Vec<&str> {
    run.stdout.lines().map(str::trim_end).collect()
}

#[track_caller]
fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {run:?}"))
}

// ---- status ---------------------------------------------------------------------------

#[test]
fn status_shows_the_version_of_each_app_in_each_environment() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(1).publish("1.0.0").publish("1.1.0").build();
    world.move_to_env("prod", &["web2"]);
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    world.kai(["deploy", "prod", "hello-1.1.0"]).assert_exit(0);

    let run = world.kai(["status"]);

    run.assert_exit(0);
    assert_eq!(lines(&run), ["app    prod   test", "hello  1.1.0  1.0.0"], "{run:?}");
    let run = world.kai(["status", "test"]);
    run.assert_exit(0);
    assert_eq!(lines(&run), ["app    web1   web3", "hello  1.0.0  1.0.0 (standby)"], "{run:?}");
    let document = json(world.kai(["status", "--json"]).assert_exit(0));
    let hosts = document["hosts"].as_array().expect("hosts");
    let seen: Vec<(&str, &str, &str)> =
        hosts.iter().map(|h| (h["env"].as_str().unwrap(), h["host"].as_str().unwrap(), h["current"].as_str().unwrap())).collect();
    assert_eq!(seen, [("prod", "web2", "1.1.0"), ("test", "web1", "1.0.0"), ("test", "web3", "1.0.0")]);
    assert_eq!(document["problems"], Value::Array(Vec::new()));

    // The pipeline order of kai.toml, not the alphabet.
    world.edit_file("kai.toml", "[repository]", "environments = [\"test\", \"prod\"]\n[repository]");
    let run = world.kai(["status"]);
    assert_eq!(lines(&run), ["app    test   prod", "hello  1.0.0  1.1.0"], "{run:?}");
}

#[test]
fn status_of_one_app_shows_each_host_in_detail() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(1).publish("1.0.0").publish("1.1.0").build();
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    world.deploy(["hello-1.1.0"]).assert_exit(0);

    let run = world.kai(["status", "test", "hello"]);

    run.assert_exit(0);
    assert_eq!(
        lines(&run),
        [
            "host  role     current  reports  health  rotation  lock  releases",
            "web1  active   1.1.0    -        ok      in        -     1.1.0 1.0.0",
            "web2  active   1.1.0    -        ok      in        -     1.1.0 1.0.0",
            "web3  standby  1.1.0    -        -       out       -     1.1.0 1.0.0",
        ],
        "{run:?}"
    );
}

#[test]
fn a_manual_switch_on_one_host_is_drift_marked_and_explained() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");
    world.host("web2").switch_current_by_hand("1.0.0");

    let run = world.kai(["status"]);

    run.assert_exit(1);
    // Switched by hand, not restarted: 1.1.0 still runs there, from a release not current.
    assert_eq!(lines(&run)[..2], ["app    test", "hello  1.0.0/1.1.0 *+"], "{run:?}");
    run.assert_says(&[
        "* hello in test: hosts disagree: web1 1.1.0, web2 1.0.0, web3 1.1.0",
        "+ hello in test: web2 runs pid ",
        " (1.1.0) from a release that is not the current one",
    ]);
    let run = world.kai(["status", "test"]);
    run.assert_exit(1);
    assert_eq!(lines(&run)[..2], ["app    web1   web2      web3", "hello  1.1.0  1.0.0 *+  1.1.0 (standby)"], "{run:?}");
}

#[test]
fn status_asks_the_app_for_its_version_and_marks_a_current_it_does_not_run() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").publish("1.1.0").build();
    // The demo service answers its version on /version; as the health URL, kai reads it.
    let app = std::fs::read_to_string(world.root().join("apps/hello.toml")).unwrap();
    world.write_file("apps/hello.toml", &app.replace("/ready\"", "/version\""));
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    world.host("web1").switch_current_by_hand("1.0.0");

    let run = world.kai(["status", "test", "hello"]);

    run.assert_exit(1);
    assert_eq!(lines(&run)[1], "web1  active  1.0.0 *+  1.1.0    ok      in        -     1.1.0 1.0.0", "{run:?}");
    assert_eq!(lines(&run)[2], "web2  active  1.1.0     1.1.0    ok      in        -     1.1.0 1.0.0", "{run:?}");
    run.assert_says(&["web1 points current at 1.0.0 but the app reports 1.1.0"]);
}

#[test]
fn a_failing_health_check_is_marked() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.host("web2").stop_service();

    let run = world.kai(["status"]);

    run.assert_exit(1).assert_says(&["hello  1.0.0 !", "! hello in test: web2 runs 1.0.0 and fails its health check"]);
}

#[test]
fn an_unreachable_host_is_marked_and_the_others_still_shown() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.make_unreachable("web2");

    let run = world.kai(["status"]);
    run.assert_exit(1);
    assert_eq!(lines(&run)[..2], ["app    test", "hello  1.0.0 ?"], "{run:?}");
    run.assert_says(&["? web2 in test could not be read (hello): ", "hint: `kai check --hosts test`"]);

    let run = world.kai(["status", "test", "hello"]);
    run.assert_exit(1);
    let rows = lines(&run);
    assert!(rows[1].starts_with("web1  active   1.0.0") && rows[3].starts_with("web3  standby  1.0.0"), "{run:?}");
    assert_eq!(rows[2], "web2  active   ?", "{run:?}");

    let history = world.kai(["history", "test"]);
    history.assert_exit(1).assert_says(&["- -> 1.0.0", "web1,web3", "web2 (hello in test): history could not be read"]);
    let ps = world.kai(["ps", "test"]);
    ps.assert_exit(1).assert_says(&["web2 in test could not be read"]);
    let lock = world.kai(["lock", "test", "hello"]);
    lock.assert_exit(1);
    assert_eq!(lines(&lock)[..4], ["host  lock", "web1  -", "web2  ?", "web3  -"], "{lock:?}");
}

#[test]
fn status_names_an_app_not_deployed_to_the_environment() {
    crate::support::require_transport();
    let world = World::builder().active(1).standby(0).build();
    world.write_file("apps/other.toml", "artifact = \"other\"\nuser = \"other\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\n");

    world.kai(["status", "test", "helo"]).assert_exit(2).assert_says(&["\"helo\"", "hello"]);
    world.kai(["status", "test", "other"]).assert_exit(2).assert_says(&["other is not deployed to test", "deployed to test: hello"]);
    world.kai(["history", "prod"]).assert_exit(2).assert_says(&["\"prod\""]);
}

// ---- history --------------------------------------------------------------------------

#[test]
fn history_merges_the_hosts_newest_first_a_deploy_a_failed_deploy_and_an_unlock() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Broken);
    world.deploy(["hello-1.1.0"]).assert_exit(1);
    world.host("web2").hold_lock(ANN_LOCK);
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0);

    let run = world.kai(["history", "test"]);

    run.assert_exit(0);
    let rows = lines(&run);
    assert_eq!(columns(rows[0]), ["user", "app", "version", "action", "result", "took", "hosts"], "{run:?}");
    let user = format!("{USER}@");
    assert!(rows[1..4].iter().all(|r| r.contains(&user)), "{run:?}");
    assert_eq!(columns(rows[1])[1..5], ["hello", "1.0.0", "unlock", "ok"], "{run:?}");
    assert_eq!(columns(rows[1]).last(), Some(&"web2 [1]"));
    assert_eq!(columns(rows[2])[1..5], ["hello", "1.0.0 -> 1.1.0", "deploy", "failed, put back"], "{run:?}");
    assert!(rows[2].ends_with("web1 [2]"), "only web1 was switched (and put back): {run:?}");
    assert_eq!(columns(rows[3])[1..5], ["hello", "- -> 1.0.0", "deploy", "ok"], "{run:?}");
    assert!(rows[3].ends_with("web1,web2,web3"), "{run:?}");
    run.assert_says(&[
        "[1] broke the lock of ann@ws1 (pid 1) since 2026-01-01T00:00:00Z: kai deploy test hello",
        "[2] web1: health failed",
    ]);

    let document = json(world.kai(["history", "test", "hello", "--json"]).assert_exit(0));
    let events = document["events"].as_array().expect("events");
    let summary: Vec<(&str, &str)> = events.iter().map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap())).collect();
    assert_eq!(summary, [("unlock", "ok"), ("deploy", "rolled-back"), ("deploy", "ok")]);
    assert_eq!(events[1]["results"]["web1"], "rolled-back");
    assert!(events[1]["results"].get("web3").is_none(), "web3 was never switched: {}", events[1]);

    let newest = world.kai(["history", "test", "--limit", "1"]);
    assert_eq!(lines(&newest).len(), 4, "one row, a blank line and its note: {newest:?}");
    world.kai(["history", "test", "--since", "2999-01-01"]).assert_exit(0).assert_says(&["no deploys recorded in test since 2999-01-01"]);
    world.kai(["history", "test", "--since", "soon"]).assert_exit(2).assert_says(&["expected a date"]);
}

#[test]
fn history_of_hosts_never_deployed_to_is_empty() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();

    world.kai(["history", "test", "hello"]).assert_exit(0).assert_says(&["no deploys of hello recorded in test"]);
}

// ---- ps -------------------------------------------------------------------------------

#[test]
fn ps_finds_the_running_services_with_memory_and_swap_and_maps_them_to_the_app() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");

    let run = world.kai(["ps", "test", "--json"]);

    let document = json(run.assert_exit(0));
    let processes = document["processes"].as_array().expect("processes");
    for host in world.actives() {
        let pid = host.service_pid().expect("the service's pid file");
        let found: Vec<&Value> = processes.iter().filter(|p| p["pid"] == pid).collect();
        let here = found.iter().find(|p| p["host"] == host.name()).unwrap_or_else(|| panic!("pid {pid} not on {host:?}: {run:?}"));
        assert_eq!((&here["app"], &here["matched_by"], &here["command"]), (&"hello".into(), &"cwd".into(), &"kai-demo-servic".into()));
        assert_eq!((&here["release"], &here["orphan"]), (&"1.0.0".into(), &false.into()), "{here}");
        assert!(here["rss_kb"].as_u64().is_some_and(|kb| kb > 0), "no RSS: {here}");
        assert!(here["swap_kb"].as_u64().is_some(), "no swap field: {here}");
        if !crate::OVER_SSH {
            assert_eq!(found.len(), 1, "pid {pid} on several hosts: {run:?}");
        }
    }
    let hello = document["apps"].as_array().unwrap().iter().find(|t| t["name"] == "hello").expect("a total for hello");
    assert!(hello["processes"].as_u64().is_some_and(|n| n >= 2), "{hello}");

    let text = world.kai(["ps", "test", "hello", "--sort", "rss", "--top", "1"]);
    text.assert_exit(0).assert_says(&["(the top 1 of ", "\napp    processes  "]);
    let header: Vec<&str> = lines(&text)[0].split_whitespace().collect();
    assert_eq!(header, ["host", "pid", "user", "app", "release", "command", "rss", "swap", "cpu%", "uptime"], "{text:?}");
    assert_eq!(lines(&text)[1].split_whitespace().nth(3), Some("hello"), "{text:?}");
    assert_eq!(lines(&text)[1].split_whitespace().nth(4), Some("1.0.0"), "the release it runs from: {text:?}");
}

// ---- lock and unlock ------------------------------------------------------------------

#[test]
fn lock_shows_the_holder_and_unlock_breaks_it_after_confirmation() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.host("web2").hold_lock(ANN_LOCK);

    let run = world.kai(["lock", "test", "hello"]);
    run.assert_exit(0);
    let rows = lines(&run);
    assert_eq!(rows[0].split_whitespace().collect::<Vec<_>>(), ["host", "lock", "pid", "since", "age", "command"], "{run:?}");
    assert!(rows[2].starts_with("web2  ann@ws1  1    2026-01-01 00:00:00  ") && rows[2].ends_with("kai deploy test hello"), "{run:?}");
    assert_eq!((rows[1], rows[3]), ("web1  -", "web3  -"), "{run:?}");
    let document = json(world.kai(["lock", "test", "hello", "--json"]).assert_exit(0));
    assert_eq!(document[1]["lock"]["user"], "ann");
    assert!(document[1]["age_secs"].as_u64().is_some_and(|s| s > 0));

    world.kai(["unlock", "test", "hello"]).assert_exit(2).assert_says(&["no terminal to confirm on", "--yes"]);
    assert!(world.host("web2").is_locked(), "unlocked without confirmation");

    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0).assert_says(&["web2: unlocked hello in test (was held by ann@ws1"]);

    for host in world.hosts() {
        assert!(!host.is_locked(), "{host:?} is still locked");
    }
    let last = world.host("web2").history().pop().expect("web2's history");
    assert!(last.contains(r#""action":"unlock""#) && last.contains("ann@ws1"), "{last}");
    assert_eq!(world.host("web1").results().len(), 1, "web1 had no lock and nothing to record");
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0).assert_says(&["no deploy lock on any host of hello in test"]);
    world.kai(["lock", "test", "hello"]).assert_exit(0);
    world.deploy(["hello-1.0.0", "--force"]).assert_exit(0);
}

// ---- the whole estate in one read (issue 27) -------------------------------------------

/// Four more apps on the active hosts beside the deployed `hello`: `sick` runs a release
/// whose command health check fails on web1, `held` is locked by ann on web1, `walled`
/// has a home on web1 that cannot be entered (a file where the folder should be), and
/// `absent` has no home anywhere.
fn estate() -> World {
    let world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.add_app("sick", "command = \"bin/status.sh\"");
    world.add_app("held", "command = \"true\"");
    world.add_app("walled", "command = \"true\"");
    world.add_app("absent", "command = \"true\"");
    for host in ["web1", "web2"] {
        let release = world.app_home(host, "sick").join("releases/2.0.0");
        std::fs::create_dir_all(release.join("bin")).expect("the estate's files");
        let verdict = if host == "web1" { "exit 1" } else { "exit 0" };
        std::fs::write(release.join("bin/status.sh"), format!("#!/bin/sh\n{verdict}\n")).expect("the estate's files");
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(release.join("bin/status.sh"), mode).expect("the estate's files");
        std::os::unix::fs::symlink("releases/2.0.0", world.app_home(host, "sick").join("current")).expect("the estate's files");
    }
    let lock = world.app_home("web1", "held").join(".kai/lock");
    std::fs::create_dir_all(&lock).expect("the estate's files");
    std::fs::write(lock.join("owner"), format!("{ANN_LOCK}\n")).expect("the estate's files");
    std::fs::create_dir_all(world.app_home("web1", "walled").parent().expect("the estate's files")).expect("the estate's files");
    std::fs::write(world.app_home("web1", "walled"), "not a folder\n").expect("the estate's files");
    world
}

/// How many scripts each host was sent, from a `KAI_TRACE` file.
fn scripts_per_host(trace: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut count = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some((host, _)) = line.strip_prefix("=== ").and_then(|l| l.split_once(" sends: ")) {
            *count.entry(host.to_owned()).or_insert(0) += 1;
        }
    }
    count
}

#[test]
fn a_host_carrying_many_apps_is_read_in_one_script_and_each_app_is_reported_for_itself() {
    crate::support::require_transport();
    let world = estate();
    let trace = world.base().join("trace");
    let run = world.start_kai(["status", "test", "--json"], &[("KAI_TRACE", trace.to_str().expect("the estate's files"))]).wait();

    let document = json(&run);
    assert_eq!(scripts_per_host(&trace), [("web1".to_owned(), 1), ("web2".to_owned(), 1)].into(), "{run:?}");
    let host = |app: &str, host: &str| -> Value {
        let hosts = document["hosts"].as_array().expect("hosts");
        hosts.iter().find(|h| h["app"] == app && h["host"] == host).unwrap_or_else(|| panic!("{app} on {host}: {document}")).clone()
    };
    assert_eq!(host("hello", "web1")["current"], "1.0.0");
    assert_eq!(host("hello", "web2")["healthy"], true);
    assert_eq!(host("sick", "web1")["current"], "2.0.0");
    assert_eq!(host("sick", "web1")["healthy"], false, "{document}");
    assert_eq!(host("sick", "web2")["healthy"], true, "{document}");
    assert_eq!(host("held", "web1")["lock"]["user"], "ann", "{document}");
    assert_eq!(host("held", "web2")["lock"], Value::Null);
    let walled = host("walled", "web1")["error"].as_str().unwrap_or_default().to_owned();
    assert!(walled.contains("cannot be entered"), "{document}");
    assert_eq!(host("walled", "web2")["error"], Value::Null, "{document}");
    for h in ["web1", "web2"] {
        assert_eq!(host("absent", h)["current"], Value::Null, "{document}");
        assert_eq!(host("absent", h)["error"], Value::Null, "not installed is no error: {document}");
    }
    let table = world.kai(["status", "test"]);
    table.assert_says(&["cannot be entered"]);
}

#[test]
fn a_read_only_command_leaves_the_hosts_byte_for_byte_as_they_were() {
    crate::support::require_transport();
    let world = estate();
    let before = world.snapshot();

    for args in [
        &["status"][..],
        &["status", "test"],
        &["status", "test", "absent"],
        &["status", "--json"],
        &["history", "test"],
        &["history", "test", "absent"],
        &["ps", "test"],
        &["lock", "test", "absent"],
        &["plan", "test", "hello-1.0.0", "--commands"],
    ] {
        world.kai(args.iter().copied());
    }

    let changes: Vec<String> = world.snapshot().changes_since(&before).into_iter().filter(|c| !c.ends_with("log/service.log")).collect();
    assert_eq!(changes, Vec::<String>::new());
    assert!(!world.app_home("web2", "absent").exists() && !world.app_home("web1", "absent").exists());
}

#[test]
fn a_plan_of_many_apps_reads_each_host_once() {
    crate::support::require_transport();
    let world = estate();
    let trace = world.base().join("trace");
    let before = world.snapshot();

    let args = ["plan", "test", "hello-1.0.0", "held-1.0.0", "absent-1.0.0", "walled-1.0.0"];
    let run = world.start_kai(args, &[("KAI_TRACE", trace.to_str().expect("a path"))]).wait();

    run.assert_says(&["walled", "cannot be entered"]);
    assert_eq!(scripts_per_host(&trace), [("web1".to_owned(), 1), ("web2".to_owned(), 1)].into(), "{run:?}");
    let run = world.start_kai(&args[..4], &[("KAI_TRACE", trace.to_str().expect("a path"))]).wait();
    run.assert_exit(0).assert_says(&["held", "locked by ann"]);
    assert_eq!(scripts_per_host(&trace), [("web1".to_owned(), 2), ("web2".to_owned(), 2)].into(), "{run:?}");
    assert_eq!(world.snapshot().changes_since(&before).into_iter().filter(|c| !c.ends_with("log/service.log")).count(), 0);
}
