//! Protected environments (issue 5): before anything changes kai shows what will happen
//! (each app: current -> new version, its hosts and standby hosts) and asks for the
//! environment's name, on a real terminal (a pty). `--yes` skips the question; without
//! a terminal and without `--yes` kai refuses. Unprotected environments ask nothing.

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use support::{World, ENV};

/// Two actives and a standby running 1.0.0, 1.1.0 published, the environment protected.
fn protected_world() -> World {
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    world.protect();
    world
}

#[track_caller]
fn assert_current(world: &World, version: &str) {
    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some(version), "current on {host:?}");
    }
}

#[test]
fn typing_the_environment_name_confirms_the_deploy_after_kai_showed_what_changes() {
    let world = protected_world();

    let run = world.kai_in_terminal(&["deploy", ENV, "hello-1.1.0"], &format!("{ENV}\n"), &[]);

    run.assert_exit(0).assert_says(&[
        "test is protected. About to deploy:",
        "hello  1.0.0 -> 1.1.0",
        "hosts:   web1, web2",
        "standby: web3",
        "Type the environment name (test) to go on:",
        "deployed",
    ]);
    let shown = &run.stdout;
    let asked = shown.find("Type the environment name").expect("the question");
    assert!(asked < shown.find("\x1b[K").expect("the live lines, after the answer"), "{run:?}");
    assert_current(&world, "1.1.0");
}

#[test]
fn a_wrong_name_is_refused_and_nothing_changes() {
    let world = protected_world();
    let before = world.snapshot();

    let run = world.kai_in_terminal(&["deploy", ENV, "hello-1.1.0"], "prod\n", &[]);

    // On a terminal what changes is in color.
    run.assert_exit(2)
        .assert_says(&["hello  1.0.0 -> \x1b[32m1.1.0\x1b[0m", "confirmation \"prod\" does not match test; nothing was changed"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    assert_current(&world, "1.0.0");
}

#[test]
fn without_a_terminal_and_without_yes_kai_refuses_with_a_clear_message() {
    let world = protected_world();
    let before = world.snapshot();

    let run = world.deploy(["hello-1.1.0"]);

    run.assert_exit(2).assert_says(&["test is protected and there is no terminal to confirm on; nothing was changed", "hint: pass --yes"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    let rollback = world.kai(["rollback", ENV, "hello"]);
    rollback.assert_exit(2).assert_says(&["no terminal to confirm on", "pass --yes to roll back"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

#[test]
fn yes_skips_the_question() {
    let world = protected_world();

    let run = world.kai(["deploy", ENV, "--yes", "hello-1.1.0"]);

    run.assert_exit(0).assert_says(&["1.0.0 -> 1.1.0", "deployed"]);
    assert!(!run.output().contains("protected"), "{run:?}");
    assert_current(&world, "1.1.0");
}

#[test]
fn a_rollback_shows_where_each_app_goes_back_to_and_asks_too() {
    let world = protected_world();
    world.kai(["deploy", ENV, "--yes", "hello-1.1.0"]).assert_exit(0);

    let run = world.kai_in_terminal(&["rollback", ENV, "hello"], &format!("{ENV}\n"), &[]);

    run.assert_exit(0).assert_says(&["test is protected. About to roll back:", "hello  1.1.0 -> 1.0.0", "standby: web3"]);
    assert_current(&world, "1.0.0");
}

#[test]
fn an_unprotected_environment_asks_nothing_even_on_a_terminal() {
    let world = World::builder().publish("1.0.0").build();

    let run = world.kai_in_terminal(&["deploy", ENV, "hello-1.0.0"], "", &[]);

    run.assert_exit(0).assert_says(&["deployed"]);
    assert!(!run.stdout.contains("Type the environment name"), "{run:?}");
    assert_current(&world, "1.0.0");
}

#[test]
fn promoting_to_a_protected_environment_shows_the_diff_before_it_asks() {
    let world = World::builder().active(4).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    world.move_to_env("prod", &["web3", "web4"]);
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    let prod = std::fs::read_to_string(world.root().join("environments/prod.toml")).expect("prod.toml");
    world.write_file("environments/prod.toml", &format!("protected = true\n{prod}"));

    let run = world.kai_in_terminal(&["promote", ENV, "prod"], "prod\n", &[]);

    run.assert_exit(0).assert_says(&[
        "prod is protected. About to promote from test:",
        "hello  1.0.0 -> 1.1.0",
        "hosts:   web3, web4",
        "app    test",
        "DIFFERS",
        "Type the environment name (prod) to go on:",
        "deployed",
    ]);
    for host in ["web3", "web4"] {
        assert_eq!(world.host(host).current().as_deref(), Some("1.1.0"), "{host}");
    }
}
