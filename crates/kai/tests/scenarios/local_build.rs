//! Deploying a local build (`kai deploy <env> ./target/hello-1.1.0.tar.gz`, README and
//! kai-deploy(1)), run by `deploy_local` on local hosts and by `deploy_ssh` over a real
//! sshd: the file is pushed with its checksum, installed as `<version>+local.<sha256
//! prefix>` and marked as a local build in the plan, history and status; a protected
//! environment refuses it unless `allow_local = true`.

use crate::support::{sha256, Artifact, World};

#[test]
fn a_local_build_deploys_like_a_release_and_is_marked_in_plan_history_and_status() {
    crate::support::require_transport();
    let mut world = World::builder().active(2).standby(1).publish("1.0.0").build().deployed("hello-1.0.0");
    let file = world.build_locally("1.1.0", Artifact::Good, "hello-1.1.0.tar.gz");
    let path = file.display().to_string();
    let sum = sha256(&file);
    let release = format!("1.1.0+local.{}", &sum[..8]);

    let plan = world.kai(["plan", "test", &path]);
    plan.assert_exit(0).assert_says(&[&format!("1.0.0 -> {release}"), &format!("local build sha256:{sum} of {path}")]);

    let deploy = world.deploy([&path]);
    deploy.assert_exit(0).assert_says(&[&format!("1.0.0 -> {release}"), "deployed", &format!("sha256:{sum}")]);
    for host in world.actives() {
        assert_eq!(host.current().as_deref(), Some(release.as_str()), "{host:?}");
        // `{version}` in its properties is the release's name: the app says it is the build.
        assert_eq!(host.version().as_deref(), Some(release.as_str()), "the build answers on {host:?}");
    }
    let standby = world.host("web3");
    assert_eq!((standby.current(), standby.is_disabled()), (Some(release.clone()), true));
    for host in world.hosts() {
        let last = host.results().pop().expect("a result");
        assert!(last.contains(&format!(r#""local":{{"checksum":"sha256:{sum}""#)), "{host:?}: {last}");
    }

    let history = world.kai(["history", "test"]);
    history.assert_exit(0).assert_says(&[&format!("1.0.0 -> {release}"), &format!("local build sha256:{sum} of {path}")]);
    let status = world.kai(["status", "test", "hello"]);
    status.assert_exit(0).assert_says(&[&release, &format!("is a local build sha256:{sum}")]);
    let json = world.kai(["--json", "status", "test"]);
    json.assert_exit(0).assert_says(&[&format!(r#""checksum": "sha256:{sum}""#)]);

    world.deploy([&path]).assert_exit(0).assert_says(&["up to date"]);

    // The repository's 1.1.0 is another release: it is installed beside the build.
    world.publish("1.1.0", Artifact::Good);
    world.deploy(["hello-1.1.0"]).assert_exit(0).assert_says(&[&format!("{release} -> 1.1.0"), "deployed"]);
    for host in world.actives() {
        assert_eq!(host.current().as_deref(), Some("1.1.0"), "{host:?}");
    }
    // And the build can be rolled back to, still marked.
    world.kai(["rollback", "test", "hello"]).assert_exit(0).assert_says(&[&release]);
    world.kai(["history", "test"]).assert_exit(0).assert_says(&[&format!("1.1.0 -> {release}"), "rollback"]);
}

#[test]
fn a_protected_environment_refuses_a_local_build_unless_it_allows_them() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let file = world.build_locally("1.1.0", Artifact::Good, "hello-1.1.0.tar.gz");
    let path = file.display().to_string();
    world.protect();
    let before = world.snapshot();

    let refused = world.deploy([path.as_str(), "--yes"]);
    refused.assert_exit(2).assert_says(&["test is protected", "allow_local = true", "environments/test.toml"]);
    world.kai(["plan", "test", &path]).assert_exit(2).assert_says(&["allow_local = true"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new(), "a refused local build changed the hosts");

    world.edit_file("environments/test.toml", "protected = true\n", "protected = true\nallow_local = true\n");
    world.deploy([path.as_str(), "--yes"]).assert_exit(0).assert_says(&["deployed", "local build"]);
    for host in world.actives() {
        assert!(host.version().is_some_and(|v| v.starts_with("1.1.0+local.")), "{host:?}");
    }
}

#[test]
fn a_file_kai_cannot_place_is_refused_with_the_flag_that_places_it() {
    crate::support::require_transport();
    let world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let odd = world.build_locally("2.0.0", Artifact::Good, "build.tar.gz").display().to_string();
    let before = world.snapshot();

    world.deploy([&odd]).assert_exit(2).assert_says(&["build.tar.gz is not named like a build of any app of test", "--app"]);
    world.deploy([odd.as_str(), "--app", "hello"]).assert_exit(2).assert_says(&["cannot be read from its name", "--version"]);
    let missing = format!("{odd}.missing");
    world.deploy([&missing]).assert_exit(2).assert_says(&["No such file"]);
    world.deploy(["hello", "--version", "1.0.0"]).assert_exit(2).assert_says(&["--version goes with one local build"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());

    world.deploy([odd.as_str(), "--app", "hello", "--version", "2.0.0"]).assert_exit(0).assert_says(&["2.0.0+local.", "deployed"]);
    assert!(world.host("web1").version().is_some_and(|v| v.starts_with("2.0.0+local.")));
}

#[test]
fn a_saved_plan_of_a_local_build_runs_as_saved_or_is_refused_when_the_file_changed() {
    crate::support::require_transport();
    let world = World::builder().active(2).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let file = world.build_locally("1.1.0", Artifact::Good, "hello-1.1.0.tar.gz");
    let path = file.display().to_string();
    let saved = world.base().join("local.plan.json").display().to_string();
    world.kai(["plan", "test", &path, "--out", &saved]).assert_exit(0);

    // Rebuilt since (a broken build, so its content differs): another file under the same name.
    world.build_locally("1.1.0", Artifact::Broken, "hello-1.1.0.tar.gz");
    let before = world.snapshot();
    world.kai(["deploy", "--plan", &saved]).assert_exit(2).assert_says(&["the local build changed since the plan was made"]);
    assert_eq!(world.snapshot().changes_since(&before), Vec::<String>::new());

    let file = world.build_locally("1.1.0", Artifact::Good, "hello-1.1.0.tar.gz");
    world.kai(["plan", "test", &file.display().to_string(), "--out", &saved]).assert_exit(0);
    world.kai(["deploy", "--plan", &saved]).assert_exit(0).assert_says(&["deployed", "local build"]);
    for host in world.actives() {
        assert!(host.current().is_some_and(|c| c.starts_with("1.1.0+local.")), "{host:?}");
    }
}

/// Issue 22: a build is matched against every app, not only those placed in the
/// environment: a build of an app placed elsewhere is refused, naming it, never taken
/// for another app's release (`hello-admin-2.0` is not `hello` at version `admin-2.0`).
#[test]
fn a_build_of_an_app_not_placed_in_the_environment_is_refused_naming_it() {
    crate::support::require_transport();
    let world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    world.write_file(
        "apps/hello-admin.toml",
        "artifact = \"hello-admin\"\npackaging = \"tar.gz\"\nuser = \"admin\"\nstart = \"bin/start.sh\"\nstop = \"bin/stop.sh\"\n",
    );
    let file = world.build_locally("2.0", Artifact::Good, "hello-admin-2.0.tar.gz");
    let before = world.snapshot();

    let run = world.deploy([&file.display().to_string()]);

    run.assert_exit(2).assert_says(&["hello-admin-2.0.tar.gz is a build of hello-admin, which is not deployed to test"]);
    assert!(world.snapshot().changes_since(&before).is_empty(), "nothing was touched");
    assert_eq!(world.host("web1").current().as_deref(), Some("1.0.0"));
}
