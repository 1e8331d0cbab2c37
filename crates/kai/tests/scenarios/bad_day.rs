//! A bad day, end to end (run by `deploy_local` and again over a real sshd by
//! `deploy_ssh`): start scripts that hang or leave a child on kai's pipe, a deploy
//! stopped by SIGTERM or killed outright, a property change alone, a release that
//! dies a second after start, status that tells the truth, and the plan held against
//! what the transport sends.

use std::collections::BTreeMap;

use kai_core::plan::saved::SavedPlan;
use kai_core::shell::session::{commands_in, Session};
use kai_core::step::Action;

use crate::support::{wait_until, Artifact, World};

const HEALTH_FILE: &str = "kind = \"health-file\"\ndrain_wait = \"100ms\"\nsettle = \"100ms\"";
const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

#[track_caller]
fn assert_serving(world: &World, versions: &[(&str, &str)]) {
    for (host, version) in versions {
        assert_eq!(world.host(host).version().as_deref(), Some(*version), "GET /version on {host}");
    }
    for host in world.hosts() {
        assert!(!host.is_locked(), "a lock is left on {host:?}");
        assert!(!host.is_disabled(), "{host:?} is left out of rotation");
    }
}

#[test]
fn a_start_script_whose_child_holds_its_output_does_not_hold_the_deploy() {
    let mut world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::HoldsOutput);

    let run = world.deploy(["hello-1.1.0"]);

    run.assert_exit(0).assert_says(&["deployed"]);
    assert!(run.took.as_secs() < 30, "the child on the pipe held kai: {run:?}");
    assert_serving(&world, &[("web1", "1.1.0"), ("web2", "1.1.0")]);
}

#[test]
fn a_start_script_that_never_returns_is_stopped_at_its_deadline_and_the_server_put_back() {
    let mut world =
        World::builder().active(2).standby(0).app_key("start_timeout", "\"2s\"").publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::HangsOnStart);

    let run = world.deploy(["hello-1.1.0"]);

    run.assert_exit(1).assert_says(&["start failed on web1", "did not finish within 2 s", "failed, put back"]);
    assert_serving(&world, &[("web1", "1.0.0"), ("web2", "1.0.0")]);
}

/// Issue 22: a put-back uses the settings the release ran with. A typo in `start`, then
/// a health check on a wrong port: each fails on the first server, which goes back to
/// 1.0.0 started and checked as 1.0.0 was installed (today's broken settings would fail
/// the put-back too and keep every lock), healthy, in rotation, unlocked.
#[test]
fn a_broken_start_or_health_check_fails_on_the_first_server_and_puts_it_back_as_it_ran() {
    let mut world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);

    world.edit_file("apps/hello.toml", "start = \"bin/start.sh\"", "start = \"bin/strat.sh\"");
    let run = world.deploy(["hello-1.1.0"]);
    run.assert_exit(1).assert_says(&["start failed on web1", "failed, put back", "web1 put back"]);
    assert!(!run.stdout.contains("web2 put back") && !run.stdout.contains("ROLLBACK FAILED"), "{run:?}");
    assert_serving(&world, &[("web1", "1.0.0"), ("web2", "1.0.0")]);
    world.kai(["status", "test"]).assert_exit(0);

    world.edit_file("apps/hello.toml", "start = \"bin/strat.sh\"", "start = \"bin/start.sh\"");
    let port = world.port().to_string();
    world.edit_file("apps/hello.toml", &format!(":{port}/ready"), ":1/ready");
    let run = world.deploy(["hello-1.1.0"]);
    run.assert_exit(1).assert_says(&["health failed on web1", "failed, put back"]);
    assert_serving(&world, &[("web1", "1.0.0"), ("web2", "1.0.0")]);
    let next = &run.stdout[run.stdout.rfind("\nnext:\n").unwrap_or_else(|| panic!("no next commands: {run:?}"))..];
    assert!(next.contains("kai status test hello") && next.contains("kai history test hello"), "{run:?}");
}

#[test]
fn sigterm_mid_deploy_finishes_the_server_being_switched_and_releases_every_lock() {
    let mut world = World::builder()
        .active(3)
        .standby(0)
        .balancer(HEALTH_FILE)
        .property("startup.delay.ms", "1500")
        .publish("1.0.0")
        .build()
        .deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_until("web1 starts 1.1.0", || world.host("web1").home().join("releases/1.1.0/run/pid").exists());
    deploy.signal("TERM");
    let run = deploy.wait();

    run.assert_exit(143).assert_says(&["SIGTERM", "interrupted"]);
    // The summary ends with what finishes the deploy and what puts it back.
    let next = &run.stdout[run.stdout.rfind("\nnext:\n").unwrap_or_else(|| panic!("no next commands: {run:?}"))..];
    assert!(next.contains("kai deploy test hello@1.1.0") && next.contains("kai deploy test hello@1.0.0"), "{run:?}");
    assert!(next.contains("kai status test hello"), "{run:?}");
    assert_serving(&world, &[("web1", "1.1.0"), ("web2", "1.0.0"), ("web3", "1.0.0")]);
    let last = world.host("web1").results().pop().expect("web1's result");
    assert!(last.contains(r#""to":"1.1.0""#) && last.contains(r#""result":"interrupted""#), "{last}");
    for host in ["web2", "web3"] {
        assert!(!world.host(host).history().iter().any(|l| l.contains(r#""to":"1.1.0""#)), "{host} was never touched");
    }
    // Issue 22: a run that did not finish is not "ok" anywhere history is shown.
    let history = world.kai(["history", "test"]);
    history.assert_exit(0).assert_says(&["interrupted", "web1"]);
    let row = history.stdout.lines().find(|l| l.contains("1.0.0 -> 1.1.0")).expect("the deploy's row");
    assert!(row.contains("interrupted") && !row.contains(" ok "), "{row}");
}

#[test]
fn a_second_sigterm_stops_at_once_and_says_how_to_finish_with_the_names_of_the_run() {
    let mut world =
        World::builder().active(2).standby(0).property("startup.delay.ms", "1500").publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_until("web1 starts 1.1.0", || world.host("web1").home().join("releases/1.1.0/run/pid").exists());
    deploy.signal("TERM");
    std::thread::sleep(std::time::Duration::from_millis(200));
    deploy.signal("TERM");
    let run = deploy.wait();

    run.assert_exit(143).assert_says(&["stopped at once", "`kai status test` shows what runs where", "`kai unlock test APP`"]);
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0);
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    assert_serving(&world, &[("web1", "1.1.0"), ("web2", "1.1.0")]);
}

#[test]
fn a_property_change_alone_is_rolled_out_server_by_server_with_a_restart() {
    let world = World::builder().active(2).standby(1).publish("1.0.0").build().deployed("hello-1.0.0");
    let pid_before = world.host("web1").service_pid();
    world.edit_file("apps/hello.toml", "hello from {host}", "hi from {host}");

    let plan = world.plan(["hello-1.0.0"]);
    plan.assert_exit(0).assert_says(&["web1  active   1.0.0, restarted", "greeting: hello from web1 -> hi from web1"]);
    world.deploy(["hello-1.0.0"]).assert_exit(0).assert_says(&["deployed"]);

    for host in world.actives() {
        let greeting = crate::support::http_get(host.address(), world.port(), "/greeting").map(|(_, b)| b);
        assert_eq!(greeting.as_deref().map(str::trim), Some(format!("hi from {}", host.name()).as_str()), "{host:?}");
    }
    assert_ne!(world.host("web1").service_pid(), pid_before, "web1 was restarted");
    assert!(world.host("web3").properties("1.0.0").contains("greeting=hi from web3"), "the standby has the new properties");
    world.deploy(["hello-1.0.0"]).assert_exit(0).assert_says(&["up to date"]);
}

#[test]
fn a_release_that_dies_a_second_after_start_is_rolled_back() {
    let mut world = World::builder().active(2).standby(0).stable("3s").publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::DiesAfter(1000));

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["did not stay healthy", "failed, put back"]);

    assert_serving(&world, &[("web1", "1.0.0"), ("web2", "1.0.0")]);
}

#[test]
fn a_killed_deploy_shows_as_interrupted_and_the_next_deploy_brings_its_hosts_back() {
    let mut world = World::builder()
        .active(3)
        .standby(0)
        .balancer(HEALTH_FILE)
        .property("startup.delay.ms", "1500")
        .publish("1.0.0")
        .build()
        .deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_until("web1 starts 1.1.0", || world.host("web1").home().join("releases/1.1.0/run/pid").exists());
    deploy.signal("KILL");
    deploy.wait();

    world.kai(["history", "test"]).assert_exit(0).assert_says(&["interrupted, unknown"]);
    world.kai(["status", "test"]).assert_exit(1).assert_says(&["interrupted", "stale", "kai unlock test hello"]);
    world.deploy(["hello-1.1.0"]).assert_exit(3).assert_says(&["stale", "kai unlock test hello"]);
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0);

    world.deploy(["hello-1.1.0"]).assert_exit(0).assert_says(&["web1", "out of the balancer's rotation", "deployed"]);

    assert_serving(&world, &[("web1", "1.1.0"), ("web2", "1.1.0"), ("web3", "1.1.0")]);
    world.kai(["status", "test"]).assert_exit(0);
}

/// Issue 28: the start script of a kai killed outright went on without it, found the
/// service it had started gone (the recovery had stopped it), and removed the pid file
/// the recovery's own start had just written: the release then ran with no pid file,
/// and the next deploy could neither stop it nor start another on its port.
#[test]
fn a_killed_kai_leaves_no_script_of_its_own_running_and_the_recovery_is_not_undone() {
    let mut world = World::builder().active(2).standby(0).balancer(HEALTH_FILE).publish("1.0.0").build().deployed("hello-1.0.0");
    // The start script waits 15 s: the host's guard must find it still running after kai is
    // killed, even on a loaded machine (3 s was too short for a CI under full load, and 8 s
    // once over SSH with a release build running beside the suite).
    world.publish("1.1.0", Artifact::SlowStart(15_000));

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_until("web1 starts 1.1.0", || world.host("web1").home().join("releases/1.1.0/run/pid").exists());
    deploy.signal("KILL");
    deploy.wait();

    let web1 = world.host("web1");
    wait_until("the lock says the step under way was stopped", || web1.home().join(".kai/lock/abandoned").exists());
    // The guard stops the script (TERM, then KILL after 5 s) as it writes the note.
    wait_until("the killed run's start script is stopped", || !web1.processes().iter().any(|p| p.contains("start.sh")));
    world
        .kai(["lock", "test", "hello"])
        .assert_exit(0)
        .assert_says(&["web1: its kai went away during a step", "the host stopped that step"]);
    world.kai(["status", "test"]).assert_exit(1).assert_says(&["its kai went away during a step on web1"]);
    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0);
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    // Longer than the killed run's start script would have waited before removing the pid.
    std::thread::sleep(std::time::Duration::from_millis(15_500));
    assert!(world.host("web1").service_pid().is_some(), "the release the recovery started has lost its pid file");

    world.deploy(["hello-1.0.0"]).assert_exit(0);
    assert_serving(&world, &[("web1", "1.0.0"), ("web2", "1.0.0")]);
}

/// Issue 29: a test that fails leaves nothing running. Its world stops every process
/// its hosts started, even one whose pid file is gone and one on a small disk of its
/// own (declared after the world, so dropped first: once unmounted, the process no
/// longer shows which world it belongs to).
#[test]
fn a_world_dropped_by_a_failing_test_leaves_no_process_behind() {
    let mut pids = Vec::new();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let world = World::builder().active(2).standby(0).publish("1.0.0").build();
        let small = world.host("web2").limit_disk(64 * 1024 * 1024);
        let world = world.deployed("hello-1.0.0");
        let _small = small;
        pids.extend(world.hosts().filter_map(|h| h.service_pid()));
        std::fs::remove_file(world.host("web1").home().join("current/run/pid")).expect("web1's pid file");
        panic!("a test failing on purpose, its services running");
    }));
    assert!(failed.is_err());
    assert_eq!(pids.len(), 2, "both services ran");
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
        assert!(matches!(state, None | Some("Z" | "X")), "pid {pid} of the failed test's world still runs: {stat}");
    }
}

#[test]
fn status_marks_a_server_out_of_rotation_and_a_held_lock_and_exits_1() {
    let world = World::builder().active(2).standby(1).balancer(HEALTH_FILE).publish("1.0.0").build().deployed("hello-1.0.0");
    world.kai(["status", "test"]).assert_exit(0);

    world.host("web1").touch("disabled");
    world.kai(["status", "test"]).assert_exit(1).assert_says(&["web1", "out of rotation"]);
    world.host("web1").remove("disabled");

    world.host("web2").hold_lock(ANN_LOCK);
    world.kai(["status", "test"]).assert_exit(1).assert_says(&["locked by ann@ws1"]);
    world.kai(["status"]).assert_exit(1);
    world.deploy(["hello-1.0.0"]).assert_exit(3).assert_says(&[
        "locked by ann@ws1",
        "kai cannot see from here whether pid",
        "runs on ws1",
        "`kai lock test hello` shows the lock; `kai unlock test hello` breaks it",
    ]);
}

/// The commands each host was sent, from a `KAI_TRACE` file (`=== HOST sends: TEXT`,
/// then `=== stdin`, the script, `=== end`): the commands of each script with its
/// framing and helpers taken away, an upload's line after the helpers.
fn sent_by_host(trace: &str) -> BTreeMap<String, Vec<String>> {
    let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rest = trace;
    while let Some(at) = rest.find("=== ") {
        rest = &rest[at + 4..];
        let Some((host, entry)) = rest.split_once(" sends: ") else { break };
        let (text, after) = match entry.find("\n=== stdin\n") {
            Some(i) if !entry[..i].contains("\n=== ") => (&entry[..i], &entry[i + "\n=== stdin\n".len()..]),
            _ => (entry.split("\n=== ").next().unwrap_or(entry), ""),
        };
        let commands = sent.entry(host.to_owned()).or_default();
        if text.ends_with("sh -s") {
            let script = &after[..after.find("=== end\n").expect("a script ends")];
            let token = script.lines().find_map(|l| l.strip_prefix("printf '%s %d\\n' ")).and_then(|l| l.split_whitespace().next());
            commands.extend(commands_in(script, token.expect("a framed script")));
            rest = &after[script.len() + "=== end\n".len()..];
        } else {
            commands.push(text.rsplit('\n').next().unwrap_or_default().to_owned());
            rest = &entry[text.len()..];
            if let Some(line_end) = rest.strip_prefix("\n=== stdin").and_then(|r| r.find('\n')) {
                rest = &rest["\n=== stdin".len() + line_end..];
            }
        }
    }
    sent
}

#[test]
fn a_saved_plan_is_exactly_what_the_transport_sends_and_its_plan_text_shows_it() {
    let mut world = World::builder().active(2).standby(1).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    let (plan_file, trace) = (world.base().join("plan.json"), world.base().join("trace"));

    let shown = world.kai(["plan", "test", "hello-1.1.0", "--commands", "--out", &plan_file.display().to_string()]);
    shown.assert_exit(0).assert_says(&["saved to"]);
    let trace_var = trace.display().to_string();
    let run = world.start_kai(["deploy", "--plan", &plan_file.display().to_string()], &[("KAI_TRACE", &trace_var)]).wait();
    run.assert_exit(0).assert_says(&["deployed"]);

    let saved: SavedPlan = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let plan = &saved.apps[0].plan;
    let sent = sent_by_host(&std::fs::read_to_string(&trace).unwrap());
    for target in &plan.targets {
        let host = target.host.as_str();
        let of =
            |phase: &[kai_core::plan::HostSteps]| phase.iter().filter(|h| h.host == host).flat_map(|h| h.steps.clone()).collect::<Vec<_>>();
        let mut steps = of(&plan.lock)[1..].to_vec(); // the lock itself carries the applying run's owner
        steps.extend(of(&plan.stage));
        steps.extend(plan.roll.iter().filter(|r| r.host == host).flat_map(|r| r.roll.clone()));
        steps.extend(of(&plan.standby));
        steps.extend(of(&plan.finish));
        steps.extend(of(&plan.unlock));
        let mut expected = Vec::new();
        for session in kai_core::shell::session::sessions(&steps) {
            match session {
                Session::Script(steps) => expected.extend(steps.iter().filter_map(|s| s.scripted()).map(ToString::to_string)),
                Session::Upload(step) => {
                    let Action::Upload { command, .. } = &step.action else { unreachable!() };
                    expected.push(target.access.single_shown(command));
                }
                Session::Kai(_) => {}
            }
        }
        let actual: Vec<String> = sent[host]
            .iter()
            .filter(|c| {
                let result_record = c.starts_with("kai_append .kai/history.jsonl") && c.contains(r#""result":"#);
                !c.starts_with("kai_lock") && !result_record
            })
            .cloned()
            .collect();
        assert_eq!(actual, expected, "what {host} was sent is its plan, byte for byte");
        for command in &expected {
            for line in command.lines() {
                assert!(shown.stdout.lines().any(|l| l.contains(line.trim_end())), "{line:?} is not in the plan text");
            }
        }
    }
}

#[test]
fn a_saved_plan_is_refused_naming_what_changed_on_which_host() {
    let mut world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    let plan_file = world.base().join("plan.json").display().to_string();
    world.kai(["plan", "test", "hello-1.1.0", "--out", &plan_file]).assert_exit(0);
    world.deploy(["hello-1.1.0", "--only", "web2"]).assert_exit(0);
    let before = world.snapshot();

    let run = world.kai(["deploy", "--plan", &plan_file]);

    run.assert_exit(2).assert_says(&["refused", "web2: current was 1.0.0, is now 1.1.0"]);
    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
    assert!(world.snapshot().changes_since(&before).iter().all(|c| c.contains(".kai/lock")), "only the lock came and went");
    assert!(world.hosts().all(|h| !h.is_locked()));
}

#[test]
fn a_saved_plan_is_refused_when_the_configuration_changed() {
    let mut world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    let plan_file = world.base().join("plan.json").display().to_string();
    world.kai(["plan", "test", "hello-1.1.0", "--out", &plan_file]).assert_exit(0);
    world.edit_file("apps/hello.toml", "hello from {host}", "hi from {host}");

    world.kai(["deploy", "--plan", &plan_file]).assert_exit(2).assert_says(&["the configuration changed since", "kai plan test hello"]);
    assert_eq!(world.host("web1").version().as_deref(), Some("1.0.0"));
}

/// A saved plan with one edit: `edit` changes its JSON.
fn tampered(original: &serde_json::Value, edit: impl Fn(&mut serde_json::Value)) -> String {
    let mut plan = original.clone();
    edit(&mut plan);
    serde_json::to_string_pretty(&plan).expect("the plan writes")
}

/// Issue 22: a saved plan is made again from the configuration, the hosts and the
/// artifact, and compared step by step; it is never run as the file says. A command, a
/// host, a version or a checksum changed in the file is refused (exit 2), naming the
/// first difference, and nothing runs; the file is the owner's alone and holds no
/// secret; the untouched plan still applies.
#[test]
fn a_tampered_saved_plan_is_refused_at_its_first_difference_and_nothing_runs() {
    use std::os::unix::fs::PermissionsExt;
    let mut world =
        World::builder().active(2).standby(0).property("db.password", "hunter2").publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    let plan_file = world.base().join("plan.json");
    let path = plan_file.display().to_string();
    world.kai(["plan", "test", "hello-1.1.0", "--out", &path]).assert_exit(0);
    let text = std::fs::read_to_string(&plan_file).expect("the plan");
    assert_eq!(std::fs::metadata(&plan_file).expect("the plan").permissions().mode() & 0o777, 0o600, "readable by its owner only");
    assert!(!text.contains("hunter2"), "a secret in the saved plan");
    let original: serde_json::Value = serde_json::from_str(&text).expect("a plan");
    let marker = world.base().join("pwned");
    let touch =
        serde_json::json!({"run": {"argv": ["sh", "-c", format!("touch {}", marker.display())], "env": [], "cwd": null, "stdin": null}});

    let cases: Vec<(String, &str)> = vec![
        (
            tampered(&original, |p| p["apps"][0]["plan"]["stage"][0]["steps"][1]["action"] = touch.clone()),
            "stage, web1, step 2: the plan says `sh -c 'touch ",
        ),
        (
            tampered(&original, |p| {
                let mut extra = p["apps"][0]["plan"]["stage"][0].clone();
                extra["host"] = "web9".into();
                p["apps"][0]["plan"]["stage"].as_array_mut().expect("stage").push(extra);
            }),
            "stage[2]",
        ),
        (
            tampered(&original, |p| p["apps"][0]["plan"]["version"] = "9.9.9".into()),
            "version: the plan says \"9.9.9\", kai makes \"1.1.0\"",
        ),
        (
            tampered(&original, |p| p["apps"][0]["release"]["checksum"]["hex"] = "0".repeat(64).into()),
            "the artifact changed since the plan was made",
        ),
    ];
    for (text, says) in cases {
        std::fs::write(&plan_file, text).expect("write the plan");
        let before = world.snapshot();
        let run = world.kai(["deploy", "--plan", &path]);
        run.assert_exit(2).assert_says(&["refused", says]);
        assert!(!marker.exists(), "a command of the file ran");
        assert!(world.snapshot().changes_since(&before).iter().all(|c| c.contains(".kai/lock")), "only the lock came and went: {run:?}");
        assert!(world.hosts().all(|h| !h.is_locked()));
    }

    std::fs::write(&plan_file, serde_json::to_string_pretty(&original).expect("the plan")).expect("write the plan");
    world.kai(["deploy", "--plan", &path]).assert_exit(0).assert_says(&["deployed"]);
    assert_serving(&world, &[("web1", "1.1.0"), ("web2", "1.1.0")]);
}
