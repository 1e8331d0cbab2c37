//! `kai deploy <env> --all` (issue 26): every app placed in the environment, each at its
//! newest release, as if each were named. Run by `deploy_local` on local hosts and by
//! `deploy_ssh` over a real sshd. The world: `hello` and `greet` placed in test (web1,
//! web2 active, web3 standby), `other` placed only in `prod`, the same hosts.

use crate::support::{Artifact, World, ENV};

/// Where `current` of `app` (in `/srv/<app>`) points on `host`.
fn current_of(world: &World, host: &str, app: &str) -> Option<String> {
    let target = std::fs::read_link(world.app_home(host, app).join("current")).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// 1.0.0 deployed for hello; 1.1.0 published, then a hotfix 1.0.1 and a snapshot 1.2.0
/// uploaded after it: the newest release is still 1.1.0.
fn two_apps() -> World {
    let mut world = World::builder().active(2).standby(1).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    world.publish("1.0.1", Artifact::Good);
    world.publish("1.2.0-SNAPSHOT", Artifact::Good);
    world.add_served_app("greet");
    world.add_empty_env("prod");
    let greet = std::fs::read_to_string(world.root().join("apps/greet.toml")).expect("apps/greet.toml");
    world.write_file("apps/other.toml", &greet.replace("/srv/greet", "/srv/other").replace("[env.test]", "[env.prod]"));
    world
}

#[test]
fn all_deploys_every_app_placed_in_the_environment_at_its_newest_release() {
    crate::support::require_transport();
    let world = two_apps();

    let run = world.kai(["--json", "deploy", ENV, "--all"]);

    run.assert_exit(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"));
    let apps: Vec<(&str, &str, &str, &str)> = doc["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|a| {
            (
                a["app"].as_str().unwrap_or("?"),
                a["from"].as_str().unwrap_or("-"),
                a["to"].as_str().unwrap_or("?"),
                a["result"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(apps, [("greet", "-", "1.1.0", "deployed"), ("hello", "1.0.0", "1.1.0", "deployed")], "{run:?}");
    for host in ["web1", "web2", "web3"] {
        assert_eq!(world.host(host).current().as_deref(), Some("1.1.0"), "hello on {host}");
        assert_eq!(current_of(&world, host, "greet").as_deref(), Some("1.1.0"), "greet on {host}");
    }
    for host in ["web1", "web2"] {
        assert_eq!(world.host(host).version().as_deref(), Some("1.1.0"), "hello answers on {host}");
    }
    assert!(!world.app_home("web1", "other").exists(), "other is not placed in test, and was deployed");

    let again = world.kai(["deploy", ENV, "--all"]);
    again.assert_exit(0).assert_says(&["greet  1.1.0", "hello  1.1.0", "up to date"]);
}

#[test]
fn all_beside_named_apps_is_refused_and_nothing_changes() {
    crate::support::require_transport();
    let world = two_apps();
    let before = world.snapshot();

    let run = world.kai(["deploy", ENV, "--all", "hello-1.1.0"]);
    run.assert_exit(2)
        .assert_says(&["--all means every app placed in test, and this also names hello-1.1.0; nothing was done", "kai deploy test --all"]);
    let json = world.kai(["--json", "plan", ENV, "greet", "--all"]);
    json.assert_exit(2).assert_says(&[r#""error""#, "and this also names greet"]);
    world.kai(["deploy", "--plan", "saved.json", "--all"]).assert_exit(2).assert_says(&["--all", "--plan"]);

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    assert_eq!(world.host("web1").current().as_deref(), Some("1.0.0"));
}

#[test]
fn the_plan_of_all_lists_every_app_placed_and_changes_nothing() {
    crate::support::require_transport();
    let world = two_apps();
    let before = world.snapshot();

    for args in [["plan", ENV, "--all"].as_slice(), ["deploy", ENV, "--all", "--dry-run"].as_slice()] {
        let run = world.kai(args);
        run.assert_exit(0).assert_says(&["greet 1.1.0 in test", "hello 1.1.0 in test", "web1  active   1.0.0 -> 1.1.0"]);
        assert!(!run.stdout.contains("other"), "other is not placed in test: {run:?}");
    }
    let json = world.kai(["--json", "plan", ENV, "--all"]);
    json.assert_exit(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {json:?}"));
    let apps: Vec<&str> = doc["apps"].as_array().expect("apps").iter().map(|a| a["app"].as_str().unwrap_or("?")).collect();
    assert_eq!(apps, ["greet", "hello"], "{json:?}");

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

#[test]
fn all_on_a_protected_environment_asks_first_as_for_named_apps() {
    crate::support::require_transport();
    let world = two_apps();
    world.protect();
    let before = world.snapshot();

    world.kai(["deploy", ENV, "--all"]).assert_exit(2).assert_says(&["--yes"]);
    let shown = world.kai_in_terminal(&["deploy", ENV, "--all"], "prod\n", &[("NO_COLOR", "1")]);
    shown.assert_exit(2).assert_says(&["About to deploy:", "greet  (none) -> 1.1.0", "hello  1.0.0 -> 1.1.0", "does not match test"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());

    world.kai(["deploy", ENV, "--all", "--yes"]).assert_exit(0).assert_says(&["greet", "hello", "deployed"]);
    assert_eq!(current_of(&world, "web2", "greet").as_deref(), Some("1.1.0"));
}

#[test]
fn all_in_an_environment_where_no_app_is_placed_names_its_file() {
    crate::support::require_transport();
    let world = two_apps();
    world.add_empty_env("stage");
    let before = world.snapshot();

    let run = world.kai(["deploy", "stage", "--all"]);

    run.assert_exit(2).assert_says(&[
        "no application is placed in stage (environments/stage.toml): no apps/*.toml has an [env.stage] section",
        "[env.stage]",
    ]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}
