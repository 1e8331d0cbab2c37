//! `kai diff` and `kai promote` (README, kai-promote(1)), run by `deploy_local` on local
//! hosts and by `deploy_ssh` over a real sshd: two environments of one world, `test`
//! (web1, web2) and `prod` (web3, web4).

use crate::support::{Artifact, World};

/// The checksum recorded on `host` for `version` (`sha256:…`).
fn recorded(world: &World, host: &str, version: &str) -> String {
    let file = world.host(host).home().join(".kai/checksums").join(version);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn promote_deploys_the_artifact_the_source_runs_and_refuses_what_it_cannot_vouch_for() {
    crate::support::require_transport();
    let mut world = World::builder().active(4).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    world.move_to_env("prod", &["web3", "web4"]);
    world.kai(["diff", "test", "prod"]).assert_exit(0).assert_says(&["same"]);

    world.deploy(["hello-1.1.0"]).assert_exit(0);
    world.kai(["diff", "test", "prod"]).assert_exit(1).assert_says(&["1.1.0", "1.0.0", "DIFFERS"]);

    // The source hosts disagree: refused, naming them, nothing touched in prod.
    world.host("web2").switch_current_by_hand("1.0.0");
    let before = world.snapshot();
    let refused = world.kai(["promote", "test", "prod"]);
    refused.assert_exit(2).assert_says(&["nothing was promoted from test", "web1 runs 1.1.0, web2 runs 1.0.0"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    world.deploy(["hello-1.1.0"]).assert_exit(0);

    let plan = world.kai(["plan", "prod", "--from", "test"]);
    plan.assert_exit(0).assert_says(&["hello 1.1.0 in prod", "promoted from test", "1.0.0 -> 1.1.0"]);
    let promoted = world.kai(["promote", "test", "prod"]);
    promoted.assert_exit(0).assert_says(&["1.0.0 -> 1.1.0", "deployed", "promoted from test"]);
    let source = recorded(&world, "web1", "1.1.0");
    for host in ["web3", "web4"] {
        assert_eq!(world.host(host).current().as_deref(), Some("1.1.0"), "{host}");
        assert_eq!(world.host(host).version().as_deref(), Some("1.1.0"), "{host}");
        assert_eq!(recorded(&world, host, "1.1.0"), source, "{host} got another artifact");
    }
    world.kai(["history", "prod"]).assert_exit(0).assert_says(&["promote from test"]);
    world.kai(["diff", "test", "prod", "hello"]).assert_exit(0).assert_says(&["same"]);
    let json = world.kai(["--json", "promote", "test", "prod"]);
    json.assert_exit(0).assert_says(&[r#""command": "promote""#, r#""promoted_from": "test""#, r#""result": "up-to-date""#]);

    // The repository's 1.1.0 is not what test runs any more (published again): refused.
    world.publish("1.1.0", Artifact::Broken);
    world.kai(["promote", "test", "prod"]).assert_exit(2).assert_says(&["it was published again since"]);
    world.kai(["promote", "test", "test"]).assert_exit(2).assert_says(&["both where the release runs and where it goes"]);
}

#[test]
fn promote_refuses_a_snapshot_and_an_unhealthy_source() {
    crate::support::require_transport();
    let world = World::builder().active(4).standby(0).publish("1.0.0").publish("1.1.0-SNAPSHOT").build().deployed("hello-1.0.0");
    world.move_to_env("prod", &["web3", "web4"]);

    world.host("web2").stop_service();
    world.kai(["promote", "test", "prod", "hello"]).assert_exit(2).assert_says(&["web2: fails its health check"]);

    world.deploy(["hello-1.1.0-SNAPSHOT"]).assert_exit(0);
    let refused = world.kai(["promote", "test", "prod"]);
    refused.assert_exit(2).assert_says(&["1.1.0-SNAPSHOT is a SNAPSHOT", "only a repository release is promoted: publish"]);
    assert!(!refused.stderr.contains("once its hosts agree"), "its hosts agree: {refused:?}");
    for host in ["web3", "web4"] {
        assert_eq!(world.host(host).current().as_deref(), Some("1.0.0"), "{host}");
    }
}
