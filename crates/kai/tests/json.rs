//! `--json` (docs/commands.md, issue 5): one JSON document on stdout and nothing else there;
//! progress and the summary go to stderr. `--json` is global (`kai --json <command>`)
//! and the commands that had their own `--json` keep it.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use serde_json::Value;
use support::{Artifact, Run, World, ENV};

/// The whole of stdout as one JSON document: anything else there fails to parse.
#[track_caller]
fn document(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {run:?}"))
}

#[track_caller]
fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap_or_else(|| panic!("not an array: {value}")).iter().filter_map(Value::as_str).collect()
}

#[test]
fn plan_prints_the_plan_as_data_with_every_command() {
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    let text = world.plan(["hello-1.1.0"]);

    let run = world.kai(["--json", "plan", ENV, "hello-1.1.0"]);

    let doc = document(run.assert_exit(0));
    assert_eq!(doc["env"], ENV);
    let plan = &doc["apps"][0];
    assert_eq!(
        (&plan["app"], &plan["version"], &plan["action"], &plan["noop"]),
        (&"hello".into(), &"1.1.0".into(), &"deploy".into(), &false.into())
    );
    let targets: Vec<(&str, &str, &str)> = plan["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| Some((t["host"].as_str()?, t["role"].as_str()?, t["from"].as_str()?)))
        .collect();
    assert_eq!(targets, [("web1", "active", "1.0.0"), ("web2", "active", "1.0.0"), ("web3", "standby", "1.0.0")]);
    let phases: Vec<&str> = plan["phases"].as_array().expect("phases").iter().filter_map(|p| p["phase"].as_str()).collect();
    assert_eq!(&phases[..4], ["lock", "stage", "roll", "standby"]);
    let roll = &plan["phases"][2];
    let rolled: Vec<&str> = roll["hosts"].as_array().expect("roll hosts").iter().filter_map(|h| h["host"].as_str()).collect();
    assert_eq!(rolled, ["web1", "web2"]);
    for phase in plan["phases"].as_array().expect("phases") {
        for host in phase["hosts"].as_array().expect("hosts") {
            for step in host["steps"].as_array().expect("steps") {
                let first_line = step["command"].as_str().and_then(|c| c.lines().next()).expect("a command");
                assert!(!step["step"].as_str().unwrap_or_default().is_empty(), "{step}");
                // Temporary folders, the lock owner and the history records are named after
                // the run: the text is another run.
                if !first_line.contains(".tmp-") && !first_line.starts_with("kai_started") && !first_line.starts_with("kai_lock") {
                    assert!(text.stdout.contains(first_line), "{first_line:?} is not in the plan text:\n{}", text.stdout);
                }
            }
        }
    }
    assert_eq!(plan["locked"], Value::Array(vec![]));

    let dry_run = world.kai(["deploy", ENV, "--dry-run", "--json", "hello-1.1.0"]);
    assert_eq!(document(dry_run.assert_exit(0))["apps"][0]["phases"].as_array().map(Vec::len), Some(phases.len()));
}

#[test]
fn deploy_prints_the_reports_and_keeps_progress_and_summary_on_stderr() {
    let world = World::builder().publish("1.0.0").build();

    let run = world.kai(["deploy", ENV, "--json", "hello-1.0.0"]);

    let doc = document(run.assert_exit(0));
    assert_eq!((&doc["command"], &doc["env"], &doc["ok"], &doc["exit_code"]), (&"deploy".into(), &ENV.into(), &true.into(), &0.into()));
    let app = &doc["apps"][0];
    assert_eq!(
        (&app["app"], &app["from"], &app["to"], &app["result"]),
        (&"hello".into(), &Value::Null, &"1.0.0".into(), &"deployed".into())
    );
    assert_eq!(strings(&app["hosts"]), ["web1", "web2", "web3"]);
    assert!(app["duration_ms"].as_u64().is_some(), "{app}");
    assert_eq!((&app["failure"], &app["message"]), (&Value::Null, &Value::Null));
    run.assert_says(&[" test hello web1 switched", "- -> 1.0.0"]);
    assert!(run.stderr.contains("- -> 1.0.0"), "the summary goes to stderr: {run:?}");
}

#[test]
fn a_failed_deploy_carries_the_failing_host_step_reason_and_output() {
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Broken);

    let run = world.kai(["--json", "deploy", ENV, "hello-1.1.0"]);

    let doc = document(run.assert_exit(1));
    assert_eq!((&doc["ok"], &doc["exit_code"]), (&false.into(), &1.into()));
    let app = &doc["apps"][0];
    assert_eq!((&app["from"], &app["result"]), (&"1.0.0".into(), &"rolled-back".into()));
    let failure = &app["failure"];
    assert_eq!((&failure["host"], &failure["step"]), (&"web1".into(), &"health".into()));
    assert!(failure["reason"].as_str().is_some_and(|r| r.contains("no 2xx")), "{failure}");
    assert!(failure["output"].is_string(), "{failure}");
}

#[test]
fn rollback_prints_its_report() {
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");

    let run = world.kai(["--json", "rollback", ENV, "hello"]);

    let doc = document(run.assert_exit(0));
    assert_eq!(doc["command"], "rollback");
    let app = &doc["apps"][0];
    assert_eq!((&app["from"], &app["to"], &app["result"]), (&"1.1.0".into(), &"1.0.0".into(), &"reverted".into()));
}

#[test]
fn versions_lists_oldest_to_newest_with_the_newest_release_marked() {
    let world = World::builder().publish("1.9.0").publish("1.10.0").publish("2.0.0-SNAPSHOT").publish("1.9.1").build();

    let run = world.kai(["versions", "hello", "--json"]);

    let doc = document(run.assert_exit(0));
    assert_eq!((&doc["app"], &doc["newest_release"]), (&"hello".into(), &"1.10.0".into()));
    let listed: Vec<(&str, bool)> = doc["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| Some((v["version"].as_str()?, v["newest_release"].as_bool()?)))
        .collect();
    assert_eq!(listed, [("1.9.0", false), ("1.9.1", false), ("1.10.0", true), ("2.0.0-SNAPSHOT", false)]);
}

#[test]
fn the_global_flag_and_the_commands_own_flag_both_work() {
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");

    for args in [
        vec!["--json", "status", ENV],
        vec!["status", ENV, "--json"],
        vec!["--json", "history", ENV],
        vec!["--json", "check", "--hosts"],
        vec!["--json", "exec", ENV, "--", "true"],
        vec!["exec", "--json", ENV, "--", "true"],
        vec!["--json", "lock", ENV, "hello"],
    ] {
        let run = world.kai(&args);
        run.assert_exit(0);
        document(&run);
    }
}

#[test]
fn an_error_is_one_json_document_too() {
    let world = World::builder().keep_releases(5).publish("1.0.0").build();

    let run = world.kai(["--json", "deploy", ENV, "nosuchapp"]);
    run.assert_exit(2).assert_says(&["unknown application"]);
    let error = &document(&run)["error"];
    assert_eq!((&error["kind"], &error["exit_code"]), (&"usage".into(), &2.into()));
    assert!(error["message"].as_str().is_some_and(|m| m.contains("unknown application")), "{error}");

    let without = world.kai(["--json", "completions", "bash"]);
    without.assert_exit(2);
    assert!(document(&without)["error"]["message"].as_str().is_some_and(|m| m.contains("this command has no JSON output")));

    let unread = world.kai(["--json", "deploy", ENV, "--bogus"]);
    unread.assert_exit(2);
    assert!(document(&unread)["error"]["message"].as_str().is_some_and(|m| m.contains("--bogus")), "{unread:?}");

    world.edit_file("kai.toml", "keep_releases = 5", "keep_releases = \"5\"");
    let broken = world.kai(["--json", "check"]);
    broken.assert_exit(2);
    let doc = document(&broken);
    assert_eq!(doc["error"]["kind"], "configuration");
    let problem = &doc["error"]["problems"][0];
    assert_eq!((&problem["file"], &problem["key"]), (&"kai.toml".into(), &"defaults.keep_releases".into()));
    assert_eq!(problem["hint"], "write it without quotes: 5");
}

#[test]
fn check_prints_one_document_with_what_it_checked() {
    let world = World::builder().publish("1.0.0").build();

    let plain = world.kai(["--json", "check"]);
    let doc = document(plain.assert_exit(0));
    assert_eq!((&doc["ok"], &doc["applications"], &doc["host_checks"]), (&true.into(), &1.into(), &Value::Null));

    let doc = document(world.kai(["check", "--json", "--repository"]).assert_exit(0));
    assert_eq!(doc["repository"][0]["newest_release"], "1.0.0");

    world.edit_file("apps/hello.toml", "artifact = \"hello\"", "artifact = \"helo\"");
    let run = world.kai(["--json", "check", "--repository"]);
    let doc = document(run.assert_exit(1));
    assert_eq!(doc["ok"], false);
    assert!(doc["repository"][0]["problem"].as_str().is_some_and(|p| p.contains("artifact = \"helo\"")), "{doc}");
}
