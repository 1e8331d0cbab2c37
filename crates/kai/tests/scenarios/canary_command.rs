//! A canary judged by a `judge_command` (docs/configuration.md "Canary"), run by
//! `deploy_local` on local hosts and by `deploy_ssh` over a real sshd: the command runs
//! on this machine with the canary and baseline hosts in its environment; exit 0 lets
//! the rollout go on, anything else puts the canary back.

use crate::support::{wait_until, Artifact, World};

/// `[canary]` with `judge_command` at the end of the environment (in place of one there).
fn with_judge(world: &World, command: &str) {
    with_judge_window(world, command, "1s");
}

fn with_judge_window(world: &World, command: &str, window: &str) {
    let env = std::fs::read_to_string(world.root().join("environments/test.toml")).expect("the environment");
    let env = env.split("\n[canary]\n").next().unwrap_or_default().to_owned();
    let section = format!("\n[canary]\nhosts = 1\nwindow = {window:?}\njudge_command = {command:?}\n");
    world.write_file("environments/test.toml", &format!("{env}{section}"));
}

#[test]
fn a_judge_command_sees_the_hosts_and_its_exit_decides() {
    crate::support::require_transport();
    let world = World::builder().active(3).standby(0).publish("1.0.0").publish("1.1.0").publish_as("1.2.0", Artifact::Good).build();
    let world = world.deployed("hello-1.0.0");
    let seen = world.base().join("judged");
    with_judge(
        &world,
        &format!("sh -c 'echo \"$KAI_CANARY_HOSTS against $KAI_BASELINE_HOSTS over $KAI_CANARY_WINDOW\" > {}'", seen.display()),
    );

    world.kai(["plan", "test", "hello-1.1.0", "--commands"]).assert_exit(0).assert_says(&["judges canary web1 against web2, web3"]);
    world.deploy(["hello-1.1.0"]).assert_exit(0).assert_says(&["canary good", "said good"]);
    assert_eq!(std::fs::read_to_string(&seen).unwrap_or_default(), "web1 against web2,web3 over 1\n");
    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some("1.1.0"), "{host:?}");
    }

    with_judge(&world, "sh -c 'echo error rate 7 percent; exit 3'");
    let bad = world.deploy(["hello-1.2.0"]);
    bad.assert_exit(1).assert_says(&["canary bad", "exited 3: error rate 7 percent", "failed, put back"]);
    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some("1.1.0"), "{host:?}");
    }
    for host in ["web2", "web3"] {
        assert_eq!(world.host(host).results().len(), 2, "{host} was touched by the judged deploy");
    }
    world.kai(["history", "test"]).assert_exit(0).assert_says(&["canary bad: judge_command sh exited 3"]);
}

#[test]
fn a_rollback_and_a_first_install_are_not_judged() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").publish("1.1.0").build();
    with_judge(&world, "false");
    // Nothing runs yet: nothing to compare a canary with.
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["canary bad"]);
    world.deploy(["hello-1.1.0"]).assert_exit(1);
    world.kai(["plan", "test", "hello-1.1.0", "--commands"]).assert_exit(0).assert_says(&["judges canary"]);
    with_judge(&world, "true");
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    world.kai(["rollback", "test", "hello", "--dry-run", "--commands"]).assert_exit(0).assert_says(&["1.0.0"]);
    let plan = world.kai(["rollback", "test", "hello", "--dry-run", "--commands"]);
    assert!(!plan.output().contains("judge"), "a rollback is judged: {}", plan.output());
}

#[test]
fn a_stop_during_the_canary_window_puts_the_canary_back() {
    crate::support::require_transport();
    let world = World::builder().active(3).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    with_judge_window(&world, "true", "60s");

    let deploy = world.start_kai(["deploy", "test", "hello-1.1.0"], &[]);
    wait_until("the canary web1 answers with 1.1.0", || world.host("web1").version().as_deref() == Some("1.1.0"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    deploy.signal("INT");
    let run = deploy.wait();

    run.assert_exit(130).assert_says(&["stopped before the window ended, so the canary goes back"]);
    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some("1.0.0"), "{host:?}");
        assert!(!host.is_locked(), "{host:?}");
    }
    for host in ["web2", "web3"] {
        assert!(!world.host(host).history().iter().any(|l| l.contains(r#""to":"1.1.0""#)), "{host} was touched");
    }
}

/// Issue 22: the judge command of a saved plan runs on this machine, so it is the
/// configuration's, never the file's: one changed in the file is refused.
#[test]
fn a_saved_plan_whose_judge_command_was_changed_is_refused_and_runs_nothing() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    with_judge(&world, "true");
    let plan_file = world.base().join("plan.json");
    let path = plan_file.display().to_string();
    world.kai(["plan", "test", "hello-1.1.0", "--out", &path]).assert_exit(0);
    let mut plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).expect("the plan")).expect("a plan");
    let marker = world.base().join("judged");
    let steps = plan["apps"][0]["plan"]["roll"][0]["roll"].as_array_mut().expect("web1's steps");
    let judge = steps.iter_mut().find(|s| s["kind"] == "judge").expect("a judge step");
    judge["action"]["judge"]["by"]["command"]["argv"] = serde_json::json!(["touch", marker.display().to_string()]);
    std::fs::write(&plan_file, serde_json::to_string(&plan).expect("the plan")).expect("write the plan");

    world.kai(["deploy", "--plan", &path]).assert_exit(2).assert_says(&["refused", "roll, web1, step", "the plan says `touch "]);
    assert!(!marker.exists(), "the file's judge command ran");
    assert!(world.hosts().all(|h| h.current().as_deref() == Some("1.0.0") && !h.is_locked()));
}

/// Issue 23: what a judge command prints reaches the terminal only escaped.
#[test]
fn what_a_judge_command_prints_is_shown_escaped() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    with_judge(&world, r#"sh -c 'printf "\033]0;pwned\007\033[31mbad\n"; exit 3'"#);

    let run = world.deploy(["hello-1.1.0"]);

    run.assert_exit(1).assert_says(&["canary bad", "exited 3: \\u{1b}]0;pwned\\u{7}\\u{1b}[31mbad"]);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "raw control characters: {run:?}");
    }
}
