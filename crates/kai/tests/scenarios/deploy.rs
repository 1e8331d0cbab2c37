//! The deploy scenarios (docs/deploy.md), run by `deploy_local` on local hosts and by
//! `deploy_ssh` over a real sshd: the same specification for both transports.

use crate::support::{Artifact, World, USER};

const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;

#[track_caller]
fn assert_answers(world: &World, version: &str) {
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

// ---- deploying ------------------------------------------------------------------------

#[test]
fn a_first_deploy_starts_the_actives_and_leaves_the_standby_disabled_and_stopped() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(1).publish("1.0.0").build();

    world.deploy(["hello-1.0.0"]).assert_exit(0).assert_says(&["- -> 1.0.0", "deployed"]);

    assert_answers(&world, "1.0.0");
    for host in world.actives() {
        assert!(!host.is_disabled(), "{host:?} is disabled");
    }
    let standby = world.host("web3");
    assert_eq!(standby.current().as_deref(), Some("1.0.0"));
    assert!(standby.is_disabled(), "the standby has no disabled file");
    assert_eq!(standby.version(), None, "the standby answers");
    for host in world.hosts() {
        let history = host.results();
        assert_eq!(history.len(), 1, "history of {host:?}: {history:?}");
        for expected in [r#""action":"deploy""#, r#""to":"1.0.0""#, r#""result":"ok""#, &format!(r#""user":"{USER}""#)] {
            assert!(history[0].contains(expected), "{expected} not in {host:?}'s history: {}", history[0]);
        }
    }
    assert_unlocked(&world);
}

#[test]
fn an_upgrade_switches_every_server_to_the_new_version() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");

    world.deploy(["hello-1.1.0"]).assert_exit(0).assert_says(&["1.0.0 -> 1.1.0", "deployed"]);

    assert_answers(&world, "1.1.0");
    let standby = world.host("web3");
    assert_eq!((standby.current().as_deref(), standby.is_disabled(), standby.version()), (Some("1.1.0"), true, None));
    for host in world.hosts() {
        assert_eq!(host.releases(), ["1.0.0", "1.1.0"], "{host:?}");
        assert_eq!(host.results().len(), 2, "{host:?}");
    }
    assert_unlocked(&world);
}

#[test]
fn deploying_the_same_release_twice_changes_nothing_the_second_time() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    let before = world.snapshot();

    world.deploy(["hello-1.0.0"]).assert_exit(0).assert_says(&["up to date"]);

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    for host in world.hosts() {
        assert_eq!(host.history().len(), 2, "history grew on {host:?}");
    }
    assert_answers(&world, "1.0.0");
}

#[test]
fn deploying_the_previous_release_again_switches_back_to_it() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");

    world.deploy(["hello-1.0.0"]).assert_exit(0).assert_says(&["1.1.0 -> 1.0.0", "deployed"]);

    assert_answers(&world, "1.0.0");
    for host in world.hosts() {
        assert_eq!(host.releases(), ["1.0.0", "1.1.0"], "{host:?}");
    }
}

#[test]

fn a_redeploy_does_not_skip_a_server_whose_service_is_down() {
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.host("web1").stop_service();
    assert_eq!(world.host("web1").version(), None, "web1 still answers");

    world.deploy(["hello-1.0.0"]).assert_exit(0);

    assert_answers(&world, "1.0.0");
}

#[test]
fn a_bare_app_name_deploys_the_highest_release_not_the_last_published() {
    crate::support::require_transport();
    let world = World::builder()
        .active(1)
        .standby(0)
        .publish("1.9.0")
        .publish("1.10.0")
        .publish("2.0.0-SNAPSHOT")
        .publish("1.9.1") // a hotfix of the old line, uploaded last
        .build();

    world.deploy(["hello"]).assert_exit(0).assert_says(&["- -> 1.10.0"]);

    assert_answers(&world, "1.10.0");
    let versions = world.kai(["versions", "hello"]);
    versions.assert_exit(0);
    let listed: Vec<&str> = versions.stdout.lines().collect();
    assert_eq!(listed, ["1.9.0", "1.9.1", "1.10.0  (newest release)", "2.0.0-SNAPSHOT"]);
}

#[test]
fn a_deploy_with_a_newer_snapshot_published_last_still_picks_the_release() {
    crate::support::require_transport();
    let world = World::builder().active(1).standby(0).publish("1.0.0").publish("1.1.0-SNAPSHOT").build();

    world.deploy(["hello"]).assert_exit(0);

    assert_answers(&world, "1.0.0");
}

// ---- failures -------------------------------------------------------------------------

#[test]
fn a_release_failing_its_health_check_on_the_first_server_is_rolled_back() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Broken);

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["failed, put back", "health failed on web1"]);

    assert_answers(&world, "1.0.0");
    assert_eq!(world.host("web3").current().as_deref(), Some("1.0.0"), "the standby was switched");
    assert_unlocked(&world);
}

#[test]
fn a_release_failing_on_the_second_server_puts_both_servers_back() {
    crate::support::require_transport();
    let mut world = World::builder().active(2).standby(1).publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::BrokenOn("web2"));

    let run = world.deploy(["hello-1.1.0"]);

    run.assert_exit(1).assert_says(&["failed, put back", "health failed on web2"]);
    assert!(!run.output().contains("failed on web1"), "web1 did not fail: {run:?}");
    assert_answers(&world, "1.0.0");
    assert_eq!(world.host("web3").current().as_deref(), Some("1.0.0"), "the standby was switched");
    for host in world.actives() {
        let last = host.history().pop().expect("a history line for the failed deploy");
        assert!(last.contains(r#""to":"1.1.0""#) && !last.contains(r#""result":"ok""#), "{host:?}: {last}");
    }
    for host in world.hosts() {
        assert_eq!(host.releases(), ["1.0.0"], "{host:?}: the release put back is not left staged");
    }
    assert_unlocked(&world);
}

#[test]
fn a_first_deploy_that_fails_leaves_no_current_and_nothing_running() {
    crate::support::require_transport();
    let mut world = World::builder().build();
    world.publish("1.0.0", Artifact::Broken);

    world.deploy(["hello-1.0.0"]).assert_exit(1).assert_says(&["failed, put back", "health failed on web1"]);

    for host in world.hosts() {
        assert_eq!((host.current(), host.version()), (None, None), "{host:?}");
    }
    assert_unlocked(&world);
}

#[test]
fn a_corrupt_artifact_is_refused_before_any_host_changes() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Corrupt);
    let before = world.snapshot();

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["checksum"]);

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    for host in world.hosts() {
        assert_eq!((host.current().as_deref(), host.releases()), (Some("1.0.0"), vec!["1.0.0".to_owned()]), "{host:?}");
    }
    assert_answers(&world, "1.0.0");
}

// ---- bad input: exit 2, the value named, nothing touched --------------------------------

#[test]
fn an_unknown_app_is_refused_naming_the_nearest_one() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();

    world.deploy(["helo"]).assert_exit(2).assert_says(&["\"helo\"", "did you mean", "hello"]);

    assert_eq!(world.snapshot().changes_since(&crate::support::Snapshot::default()), Vec::<String>::new(), "a host was touched");
}

#[test]
fn swapped_arguments_say_which_is_the_app_and_show_the_right_order() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();

    let run = world.kai(["deploy", "--yes", "hello-1.0.0", "test"]);
    run.assert_exit(2).assert_says(&["\"hello-1.0.0\" is an application and \"test\" an environment", "deploy --yes test hello-1.0.0"]);
    world.kai(["status", "hello"]).assert_exit(2).assert_says(&["\"hello\" is an application, not an environment", "status test hello"]);

    assert_eq!(world.snapshot().changes_since(&crate::support::Snapshot::default()), Vec::<String>::new(), "a host was touched");
}

#[test]
fn a_version_with_shell_characters_is_refused_and_runs_nothing() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    let before = world.snapshot();

    for arg in ["hello-1.0;touch x", "hello@1.0;touch x", "hello-1.0$(touch x)", "hello-1.0`touch x`"] {
        let version = &arg["hello-".len()..];
        world.deploy([arg]).assert_exit(2).assert_says(&[version]);
        let plan = world.plan([arg]);
        plan.assert_exit(2).assert_says(&[version]);
    }

    assert_eq!(world.files_named("x"), Vec::<std::path::PathBuf>::new());
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

#[test]
fn an_unknown_version_is_refused_naming_the_newest_release() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");
    let before = world.snapshot();

    world.deploy(["hello-9.9.9"]).assert_exit(2).assert_says(&["9.9.9", "newest release: 1.1.0"]);

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

#[test]
fn an_artifact_the_repository_does_not_have_is_refused_naming_the_key() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.edit_file("apps/hello.toml", "artifact = \"hello\"", "artifact = \"helo\"");
    let before = world.snapshot();

    for args in [vec!["deploy", "test", "hello"], vec!["plan", "test", "hello-1.0.0"], vec!["versions", "hello"]] {
        world.kai(&args).assert_exit(2).assert_says(&[":helo is not in the repository", "`artifact = \"helo\"` in apps/hello.toml"]);
    }
    world.kai(["check", "--repository"]).assert_exit(1).assert_says(&["helo", "FAILED"]);
    world.edit_file("apps/hello.toml", "packaging = \"tar.gz\"", "packaging = \"zip\"");
    world.edit_file("apps/hello.toml", "artifact = \"helo\"", "artifact = \"hello\"");
    world
        .kai(["plan", "test", "hello-1.0.0"])
        .assert_exit(2)
        .assert_says(&["artifact file is not in the repository", "`packaging = \"zip\"`"]);

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

#[test]
fn an_unknown_environment_is_refused() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();

    world.kai(["deploy", "prod", "hello"]).assert_exit(2).assert_says(&["\"prod\"", "environments/prod.toml"]);

    assert_eq!(world.snapshot().changes_since(&crate::support::Snapshot::default()), Vec::<String>::new(), "a host was touched");
}

#[test]
fn broken_toml_in_an_app_file_names_the_file_and_line() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();
    let line = world.append_line("apps/hello.toml", "this is not toml");

    world.deploy(["hello"]).assert_exit(2).assert_says(&[&format!("apps/hello.toml:{line}")]);

    assert_eq!(world.snapshot().changes_since(&crate::support::Snapshot::default()), Vec::<String>::new(), "a host was touched");
}

#[test]
fn check_lists_every_problem_of_a_broken_repository() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();
    world.kai(["check"]).assert_exit(0).assert_says(&["ok (1 environment, 3 hosts, 1 application)"]);
    let app_line = world.append_line("apps/hello.toml", "this is not toml");
    let env_line = world.append_line("environments/test.toml", "drain_wait = \"soon\""); // in [balancer]

    world
        .kai(["check"])
        .assert_exit(2)
        .assert_says(&[&format!("apps/hello.toml:{app_line}"), &format!("environments/test.toml:{env_line}")]);
}

/// Issue 22: a repository folder that does not exist is a problem of `repository.url`,
/// found by `kai check`, and named by a deploy (not blamed on the artifact or group).
#[test]
fn a_missing_repository_folder_is_named() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();
    world.edit_file("kai.toml", "url = \"repo\"", "url = \"no-such-repo\"");

    world.kai(["check"]).assert_exit(2).assert_says(&["kai.toml:2: repository.url: the repository folder", "no-such-repo does not exist"]);
    let run = world.deploy(["hello-1.0.0"]);
    run.assert_exit(2).assert_says(&["repository.url: the repository folder"]);
    assert!(!run.stderr.contains("artifact") && !run.stderr.contains("group"), "{run:?}");
}

// ---- locks ----------------------------------------------------------------------------

#[test]
fn a_lock_held_by_someone_else_stops_the_deploy_and_changes_nothing() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    world.host("web2").hold_lock(ANN_LOCK);
    let before = world.snapshot();

    world.deploy(["hello-1.1.0"]).assert_exit(3).assert_says(&["ann"]);

    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    assert!(world.host("web2").is_locked(), "ann's lock is gone");
    for host in ["web1", "web3"] {
        assert!(!world.host(host).is_locked(), "kai left its lock on {host}");
    }
    assert_answers(&world, "1.0.0");
}

// ---- plan -----------------------------------------------------------------------------

#[test]
fn plan_prints_the_commands_of_every_host_and_changes_nothing() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);
    let before = world.snapshot();

    let run = world.plan(["hello-1.1.0"]);

    run.assert_exit(0).assert_says(&["mv -T .current.tmp current", "1.0.0 -> 1.1.0"]);
    for host in ["web1", "web2", "web3"] {
        run.assert_says(&[&format!("{host}$ mv -T releases/.tmp-1.1.0-"), &format!("{host}$ ln -sfn releases/1.1.0 .current.tmp")]);
    }
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    assert_answers(&world, "1.0.0");
}

#[test]
fn a_downgrade_is_pointed_out_in_the_plan() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.1.0");

    world.kai(["plan", "test", "hello-1.0.0"]).assert_exit(0).assert_says(&["1.1.0 -> 1.0.0 (a downgrade)"]);
    let up = world.kai(["plan", "test", "hello-1.1.0"]);
    assert!(!format!("{up:?}").contains("downgrade"), "{up:?}");
}

#[test]
fn plan_without_commands_is_a_summary_per_app() {
    crate::support::require_transport();
    let mut world = World::builder().publish("1.0.0").build().deployed("hello-1.0.0");
    world.publish("1.1.0", Artifact::Good);

    let run = world.kai(["plan", "test", "hello-1.1.0"]);

    run.assert_exit(0).assert_says(&[
        "hello 1.1.0 in test",
        "web1  active   1.0.0 -> 1.1.0",
        "stage    web1, web2, web3: prepare, fetch, unpack, properties, install",
        "roll     web1: stop, switch, start, health",
        "then     web2: stop, switch, start, health",
        "add --commands",
    ]);
    assert!(!run.stdout.contains("$ "), "no command in the summary:\n{}", run.stdout);
    assert!(run.stdout.lines().count() < 20, "{}", run.stdout);
}

#[test]
fn plan_on_new_hosts_creates_at_most_their_empty_app_homes() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").build();

    world.plan(["hello"]).assert_exit(0).assert_says(&["web1$", "web2$", "web3$"]);

    assert_eq!(world.snapshot().non_folders(), Vec::<&std::path::Path>::new());
}

// ---- what stays on a host -------------------------------------------------------------

#[test]
fn keep_releases_leaves_only_the_current_and_the_previous_release() {
    crate::support::require_transport();
    let world = World::builder().keep_releases(2).publish("1.0.0").publish("1.1.0").publish("1.2.0").publish("1.3.0").build();

    for version in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        world.deploy([format!("hello-{version}")]).assert_exit(0);
    }

    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some("1.3.0"), "{host:?}");
        assert_eq!(host.releases(), ["1.2.0", "1.3.0"], "{host:?}");
        assert_eq!(host.recorded_checksums(), ["1.2.0", "1.3.0"], "{host:?}");
    }
    assert_answers(&world, "1.3.0");
}

#[test]
fn a_hostile_property_value_is_written_literally_and_runs_nothing() {
    crate::support::require_transport();
    let pwned = std::env::temp_dir().join(format!("kai-e2e-pwned-{}", std::process::id()));
    let p = pwned.display();
    let hostile = format!("$(touch {p}) `touch {p}`; touch {p} 'single' \"double\" $HOME");
    let world = World::builder().active(1).standby(0).property("x", &hostile).publish("1.0.0").build();

    world.deploy(["hello-1.0.0"]).assert_exit(0);

    let properties = world.host("web1").properties("1.0.0");
    assert!(properties.lines().any(|l| l == format!("x={hostile}")), "x is not literal in:\n{properties}");
    assert!(!pwned.exists(), "{p} was created");
    assert_answers(&world, "1.0.0");
}

// ---- rolling back ----------------------------------------------------------------------

#[test]
fn a_rollback_puts_every_server_back_on_the_previous_release() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");

    world.kai(["rollback", "test", "hello"]).assert_exit(0).assert_says(&["1.1.0 -> 1.0.0", "rolled back"]);

    assert_answers(&world, "1.0.0");
    assert_unlocked(&world);
    for host in world.hosts() {
        assert!(host.history().last().is_some_and(|line| line.contains(r#""action":"rollback""#)), "{host:?}");
    }
}

#[test]
fn a_rollback_to_a_release_no_longer_on_the_servers_is_refused_and_changes_nothing() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");
    let before = world.snapshot();

    world
        .kai(["rollback", "test", "hello", "--to", "0.9.0"])
        .assert_exit(2)
        .assert_says(&["hello 0.9.0 is on none of its servers in test (releases on every server: 1.1.0, 1.0.0)", "nothing was touched"]);

    assert_answers(&world, "1.1.0");
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new(), "not even a lock was taken");
    // One removed from one server only: that server is named.
    std::fs::remove_dir_all(world.host("web2").home().join("releases/1.0.0")).expect("remove a release");
    world.kai(["rollback", "test", "hello", "--to", "1.0.0"]).assert_exit(2).assert_says(&["web2: hello 1.0.0 is not there anymore"]);
}

#[test]
fn a_rollback_dry_run_says_what_it_would_do_and_changes_nothing() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0").deployed("hello-1.1.0");
    let before = world.snapshot();

    let run = world.kai(["rollback", "test", "hello", "--dry-run"]);
    run.assert_exit(0).assert_says(&["hello back to 1.0.0 in test", "1.1.0 -> 1.0.0", "roll", "stop, switch, start, health", "--dry-run"]);
    world.kai(["rollback", "test", "hello", "--dry-run", "--commands"]).assert_exit(0).assert_says(&["$ ", "bin/start.sh"]);

    assert_answers(&world, "1.1.0");
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

#[test]
fn a_rollback_with_to_goes_to_that_release() {
    crate::support::require_transport();
    let world = World::builder()
        .publish("1.0.0")
        .publish("1.1.0")
        .publish("1.2.0")
        .build()
        .deployed("hello-1.0.0")
        .deployed("hello-1.1.0")
        .deployed("hello-1.2.0");

    world.kai(["rollback", "test", "hello", "--to", "1.0.0"]).assert_exit(0);

    assert_answers(&world, "1.0.0");
}

// ---- fetching --------------------------------------------------------------------------

#[test]
fn from_an_http_repository_every_host_downloads_and_verifies_the_artifact_itself() {
    crate::support::require_transport();
    let world = World::builder().http_repository().publish("1.0.0").build();

    world.deploy(["hello-1.0.0"]).assert_exit(0).assert_says(&["hosts download http://127.0.0.1:"]);

    assert_answers(&world, "1.0.0");
}

#[test]
fn from_an_http_repository_a_corrupt_artifact_is_refused_on_the_host() {
    crate::support::require_transport();
    let world = World::builder().http_repository().publish("1.0.0").publish_as("1.1.0", Artifact::Corrupt).build().deployed("hello-1.0.0");

    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["fetch failed", "FAILED", "nothing was switched"]);

    assert_answers(&world, "1.0.0");
}

// ---- machine output ----------------------------------------------------------------------

#[test]
fn with_json_stdout_is_one_document_and_progress_stays_on_stderr() {
    crate::support::require_transport();
    let world = World::builder().publish("1.0.0").publish("1.1.0").build().deployed("hello-1.0.0");

    let run = world.kai(["--json", "deploy", crate::support::ENV, "hello-1.1.0"]);

    run.assert_exit(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not one document ({e}): {run:?}"));
    let app = &doc["apps"][0];
    assert_eq!((&app["from"], &app["to"], &app["result"]), (&"1.0.0".into(), &"1.1.0".into(), &"deployed".into()));
    assert!(run.stderr.contains(" test hello web1 switched") && run.stderr.contains("1.0.0 -> 1.1.0"), "{run:?}");
    assert_answers(&world, "1.1.0");
}

/// Issue 25, first step: a `{secret:NAME}` from the environment's `[secrets] command`
/// reaches the host's properties file and nothing kai prints or traces; a command that
/// fails refuses the deploy before anything is touched.
#[test]
fn a_secret_from_a_command_reaches_the_host_and_nothing_else() {
    let world = World::builder()
        .active(1)
        .standby(0)
        .property("db.url", "jdbc:pg://svc:{secret:db.password}@db/x")
        .property("api.header", "Bearer {secret:api.token}")
        .publish("1.0.0")
        .build();
    world.append_line("environments/test.toml", "\n[secrets]\ncommand = \"sh -c 'printf %s-hunter2 \\\"$1\\\"' kai {name}\"");
    let trace = world.base().join("trace");
    let run = world.start_kai(["deploy", "test", "hello-1.0.0"], &[("KAI_TRACE", trace.to_str().expect("a path"))]).wait();
    run.assert_exit(0);
    let host = world.host("web1");
    assert!(host.properties("1.0.0").contains("db.url=jdbc:pg://svc:db.password-hunter2@db/x\n"), "{}", host.properties("1.0.0"));
    assert!(host.properties("1.0.0").contains("api.header=Bearer api.token-hunter2\n"), "{}", host.properties("1.0.0"));
    let traced = std::fs::read_to_string(&trace).expect("the trace");
    let saved = world.base().join("plan.json");
    world.kai(["plan", "test", "hello-1.0.0", "--force", "--commands", "--out", saved.to_str().expect("a path")]).assert_exit(0);
    let saved = std::fs::read_to_string(&saved).expect("the saved plan");
    let status = world.kai(["status", "test", "--json"]).stdout;
    for text in
        [run.stdout.as_str(), run.stderr.as_str(), traced.as_str(), &world.kai(["history", "test", "--json"]).stdout, &saved, &status]
    {
        assert!(!text.contains("hunter2"), "the secret is shown: {text}");
    }

    world.append_line("environments/test.toml", "timeout = \"2s\"");
    let before = world.snapshot();
    let broken = world.root().join("environments/test.toml");
    let text = std::fs::read_to_string(&broken).expect("the environment");
    std::fs::write(&broken, text.replace("printf %s-hunter2", "echo no such secret >&2; exit 1;")).expect("the environment");
    let run = world.deploy(["hello-1.0.0", "--force"]);
    run.assert_exit(2).assert_says(&["the secret api.token", "no such secret"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
}

/// Issue 25: `secrets/<env>.age` written by Debian's `age` tool is read by kai with the
/// identity in `~/.config/kai/identity.txt`; without an identity a deploy refuses with
/// exit 2 and touches nothing.
#[test]
fn a_secret_from_an_age_file_written_by_the_age_tool_reaches_the_host() {
    let world =
        World::builder().active(1).standby(0).property("db.url", "jdbc:pg://svc:{secret:db.password}@db/x").publish("1.0.0").build();
    let identity = world.home_dir().join(".config/kai/identity.txt");
    std::fs::create_dir_all(identity.parent().expect("a folder")).expect("the config folder");
    let keygen = std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().expect("age-keygen (apt-get install age)");
    assert!(keygen.status.success(), "{keygen:?}");
    let public = std::process::Command::new("age-keygen").arg("-y").arg(&identity).output().expect("age-keygen -y");
    let recipient = String::from_utf8_lossy(&public.stdout).trim().to_owned();
    let plain = world.base().join("plain.toml");
    std::fs::create_dir_all(world.root().join("secrets")).expect("secrets/");
    let encrypt = |text: &str| {
        std::fs::write(&plain, text).expect("the plain text");
        let age = std::process::Command::new("age")
            .args(["-r", &recipient, "-o"])
            .arg(world.root().join("secrets/test.age"))
            .arg(&plain)
            .output()
            .expect("age (apt-get install age)");
        assert!(age.status.success(), "{age:?}");
        std::fs::remove_file(&plain).expect("the plain text removed");
    };

    // A file without the name the app uses: refused, nothing touched.
    encrypt("\"other.name\" = \"x\"\n");
    let before = world.snapshot();
    world
        .deploy(["hello-1.0.0"])
        .assert_exit(2)
        .assert_says(&["the secret db.password (hello in test) is not in", "kai secrets set test db.password"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());

    encrypt("\"db.password\" = \"hunter2\"\n");
    let run = world.deploy(["hello-1.0.0"]);
    run.assert_exit(0);
    assert!(world.host("web1").properties("1.0.0").contains("svc:hunter2@db"), "{}", world.host("web1").properties("1.0.0"));
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"), "{run:?}");

    std::fs::remove_file(&identity).expect("the identity removed");
    let before = world.snapshot();
    let run = world.deploy(["hello-1.0.0", "--force"]);
    run.assert_exit(2).assert_says(&["identity.txt cannot be read", "age-keygen"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());
    world.kai(["check"]).assert_exit(1).assert_says(&["no identity at", "kai secrets list test"]);
}

/// Issue 25: `kai secrets set` (from a pipe and from a terminal, never echoed), `list`
/// and `rekey`; what kai writes is read by Debian's `age` tool with each recipient.
#[test]
fn secrets_set_list_and_rekey_write_files_the_age_tool_reads() {
    let world =
        World::builder().active(1).standby(0).property("db.url", "jdbc:pg://svc:{secret:db.password}@db/x").publish("1.0.0").build();
    let keygen = |path: &std::path::Path| {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("the folder");
        assert!(std::process::Command::new("age-keygen").arg("-o").arg(path).output().expect("age-keygen").status.success());
        let public = std::process::Command::new("age-keygen").arg("-y").arg(path).output().expect("age-keygen -y");
        String::from_utf8_lossy(&public.stdout).trim().to_owned()
    };
    let mine = world.home_dir().join(".config/kai/identity.txt");
    let theirs = world.base().join("theirs.txt");
    let (my_key, their_key) = (keygen(&mine), keygen(&theirs));
    world.write_file("secrets/recipients", &format!("# the team\n{my_key}\n"));
    let decrypt = |identity: &std::path::Path| {
        let out = std::process::Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(world.root().join("secrets/test.age"))
            .output()
            .expect("age -d");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };

    world.kai(["secrets", "list", "test"]).assert_exit(1).assert_says(&["db.password", "hello", "MISSING"]);
    world
        .kai(["check"])
        .assert_exit(1)
        .assert_says(&["db.password (hello) is not in secrets/test.age", "kai secrets set test db.password"]);
    let set = world.kai_with_input(&["secrets", "set", "test", "db.password"], "hunter2\n");
    set.assert_exit(0);
    assert!(!set.output().contains("hunter2"), "{set:?}");
    assert_eq!(
        decrypt(&mine),
        (
            true,
            "# kai secrets: \"name\" = \"value\", one a line; used as {secret:name} in properties\n\"db.password\" = \"hunter2\"\n"
                .to_owned()
        )
    );
    assert!(!decrypt(&theirs).0, "not a recipient yet");
    let list = world.kai(["secrets", "list", "test"]);
    list.assert_exit(0).assert_says(&["db.password", "yes"]);
    assert!(!list.output().contains("hunter2"), "{list:?}");

    let typed =
        world.kai_in_terminal_after(&["secrets", "set", "test", "api.token"], "t0ken-typed\n", &[], std::time::Duration::from_secs(1));
    assert_eq!(typed.code, 0, "{typed:?}");
    assert!(!typed.stdout.contains("t0ken-typed"), "a typed value is not echoed: {typed:?}");
    assert!(decrypt(&mine).1.contains("\"api.token\" = \"t0ken-typed\""));

    world.write_file("secrets/recipients", &format!("# the team\n{my_key}\n{their_key}\n"));
    world.kai(["secrets", "rekey"]).assert_exit(0).assert_says(&["test"]);
    assert!(decrypt(&theirs).1.contains("\"db.password\" = \"hunter2\""), "a new recipient reads it after rekey");

    world.kai(["check"]).assert_exit(0).assert_says(&["secrets of test: db.password from secrets/test.age: ok"]);
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    assert!(world.host("web1").properties("1.0.0").contains("svc:hunter2@db"));
    // Rotation: a new value is a change, rolled out like any property change.
    world.kai_with_input(&["secrets", "set", "test", "db.password"], "correct horse").assert_exit(0);
    let plan = world.kai(["plan", "test", "hello-1.0.0"]);
    plan.assert_exit(0).assert_says(&["db.url: changed (secret, not shown)"]);
    assert!(!plan.output().contains("correct horse") && !plan.output().contains("hunter2"), "{plan:?}");
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    assert!(world.host("web1").properties("1.0.0").contains("svc:correct horse@db"), "{}", world.host("web1").properties("1.0.0"));
    world.kai(["secrets", "set", "test", "bad name"]).assert_exit(2).assert_says(&["not a secret's name"]);
}

/// Issue 25: the properties file, which may hold a secret, is readable by the app's
/// user only.
#[test]
fn the_properties_file_is_readable_by_the_apps_user_only() {
    let world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let file = world.host("web1").home().join("releases/1.0.0/config/app.properties");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).expect("the properties file").permissions());
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
}

/// Issue 25: `kai secrets edit` opens a decrypted copy in a private folder, removed
/// after; a result that is no secrets file is refused and the file left as it was.
#[test]
fn secrets_edit_writes_a_good_edit_and_refuses_a_bad_one_leaving_no_copy() {
    let world = World::builder().active(1).standby(0).publish("1.0.0").build();
    let identity = world.home_dir().join(".config/kai/identity.txt");
    std::fs::create_dir_all(identity.parent().expect("a folder")).expect("the folder");
    assert!(std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().expect("age-keygen").status.success());
    let public = std::process::Command::new("age-keygen").arg("-y").arg(&identity).output().expect("age-keygen -y");
    world.write_file("secrets/recipients", &String::from_utf8_lossy(&public.stdout));
    world.kai_with_input(&["secrets", "set", "test", "db.password"], "hunter2").assert_exit(0);
    let runtime = world.base().join("run");
    std::fs::create_dir_all(&runtime).expect("a runtime folder");
    let run_dir = runtime.to_str().expect("a path");
    let file = world.root().join("secrets/test.age");
    let decrypt = || {
        let out = std::process::Command::new("age").arg("-d").arg("-i").arg(&identity).arg(&file).output().expect("age -d");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let edit =
        world.start_kai(["secrets", "edit", "test"], &[("VISUAL", "sed -i s/hunter2/hunter3/"), ("XDG_RUNTIME_DIR", run_dir)]).wait();
    edit.assert_exit(0).assert_says(&["written again"]);
    assert!(decrypt().contains("\"db.password\" = \"hunter3\""), "{}", decrypt());
    let before = std::fs::read(&file).expect("the file");
    let bad = world.start_kai(["secrets", "edit", "test"], &[("VISUAL", "sed -i s/=/:/"), ("XDG_RUNTIME_DIR", run_dir)]).wait();
    bad.assert_exit(2).assert_says(&["refused, nothing was changed"]);
    assert!(!bad.output().contains("hunter3"), "{bad:?}");
    assert_eq!(std::fs::read(&file).expect("the file"), before);
    assert_eq!(std::fs::read_dir(&runtime).expect("the runtime folder").count(), 0, "no decrypted copy is left");
}
