//! The zero-downtime proof (issue: zero-downtime rollout): a real HAProxy in front of
//! three hosts reached over a real sshd, each running the demo service; a load
//! generator counts every failed request while kai deploys. The figures are printed
//! and written to `target/zero-downtime.txt`.
#![allow(clippy::unwrap_used)]

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod haproxy;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use haproxy::{Haproxy, Load, LoadReport, Sampler, Samples};
use support::{Artifact, World};

/// The rig needs sshd and HAProxy; the proof fails without them, saying what to install.
#[track_caller]
fn require_rig() {
    support::require_transport();
    haproxy::require_haproxy();
}

/// One proof at a time: they measure, and the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Three servers deployed with `versions[0]` behind a fresh HAProxy, then the
/// environment's balancer set to `balancer(admin port)`.
fn world(balancer: impl Fn(u16) -> String, versions: &[(&str, Artifact)]) -> (World, Haproxy) {
    let mut builder = World::builder().active(3).standby(0).balancer("kind = \"none\"");
    for (version, artifact) in versions {
        builder = builder.publish_as(version, *artifact);
    }
    let world = builder.build().deployed(&format!("hello-{}", versions[0].0));
    let servers: Vec<(String, String, u16)> = world.hosts().map(|h| (h.name().to_owned(), h.address().to_owned(), world.port())).collect();
    let haproxy = Haproxy::start(&servers);
    let env = std::fs::read_to_string(world.root().join("environments/test.toml")).unwrap();
    world.write_file("environments/test.toml", &env.replace("kind = \"none\"", &balancer(haproxy.admin)));
    (world, haproxy)
}

fn haproxy_driver(admin: u16) -> String {
    format!("kind = \"haproxy\"\nproxies = [\"lb\"]\nadmin = \"tcp:127.0.0.1:{admin}\"\nbackend = \"hello\"\ndrain_timeout = \"20s\"")
}

fn no_driver(_: u16) -> String {
    "kind = \"none\"".into()
}

fn health_file(_: u16) -> String {
    HEALTH_FILE.into()
}

/// HAProxy checks every 100 ms and needs 2 failures: 1 s is ample to notice.
const HEALTH_FILE: &str = "kind = \"health-file\"\ndrain_wait = \"1s\"\nsettle = \"1s\"";

fn report(name: &str, load: &LoadReport, samples: &Samples) {
    haproxy::report(name, "server(s)", load, samples);
}

#[test]
fn negative_control_restarting_without_draining_loses_requests() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, haproxy) = world(no_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Good), ("1.2.0", Artifact::Good)]);
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    world.deploy(["hello-1.2.0"]).assert_exit(0);
    let (load, samples) = (load.finish(), sampler.finish());
    report("negative control (no balancer driver)", &load, &samples);
    assert!(load.failed > 0, "the rig proves nothing: restarts without draining lost no request ({load:?})");
}

fn rolling_deploys(balancer: fn(u16) -> String, name: &str) {
    let versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"];
    let published: Vec<(&str, Artifact)> = versions.iter().map(|v| (*v, Artifact::Good)).collect();
    let (world, haproxy) = world(balancer, &published);
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    for version in &versions[1..] {
        world.deploy([format!("hello-{version}")]).assert_exit(0);
    }
    let (load, samples) = (load.finish(), sampler.finish());
    report(name, &load, &samples);
    assert_eq!(load.failed, 0, "failed requests: {:?}", load.failures);
    assert!(samples.max_out <= 1, "more than one server out of rotation at once: {samples:?}");
    assert!(load.sent > 100, "the load did not run: {load:?}");
    for host in world.hosts() {
        assert_eq!(host.version().as_deref(), Some("1.5.0"));
    }
}

#[test]
fn five_rolling_deploys_with_the_haproxy_driver_lose_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    rolling_deploys(haproxy_driver, "5 deploys, haproxy driver");
}

#[test]
fn five_rolling_deploys_with_the_health_file_driver_lose_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    rolling_deploys(health_file, "5 deploys, health-file driver");
}

#[test]
fn a_release_failing_its_health_check_on_server_2_is_rolled_back_without_losing_a_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, haproxy) = world(haproxy_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::BrokenOn("web2"))]);
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["failed, put back", "web2"]);
    haproxy.wait_until(Duration::from_secs(10), |stats| stats.iter().all(|s| s.in_rotation()));
    let (load, samples) = (load.finish(), sampler.finish());
    report("health check fails on web2", &load, &samples);
    assert_eq!(load.failed, 0, "failed requests: {:?}", load.failures);
    assert!(samples.max_out <= 1, "{samples:?}");
    for host in world.hosts() {
        assert_eq!(host.version().as_deref(), Some("1.0.0"), "{host:?}");
    }
}

#[test]
fn a_corrupt_artifact_is_refused_while_staging_and_no_server_leaves_rotation() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, haproxy) = world(haproxy_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Corrupt)]);
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    world.deploy(["hello-1.1.0"]).assert_exit(1).assert_says(&["checksum"]);
    let (load, samples) = (load.finish(), sampler.finish());
    report("corrupt artifact", &load, &samples);
    assert_eq!((load.failed, samples.max_out), (0, 0), "{load:?} {samples:?}");
}

#[test]
fn a_second_concurrent_deploy_is_refused_and_the_first_loses_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, haproxy) = world(haproxy_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Good)]);
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    std::thread::scope(|scope| {
        let first = scope.spawn(|| world.deploy(["hello-1.1.0"]));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !world.hosts().any(|h| h.is_locked()) {
            assert!(std::time::Instant::now() < deadline, "the first deploy never took its lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        world.deploy(["hello-1.1.0"]).assert_exit(3).assert_says(&["locked by"]);
        first.join().unwrap().assert_exit(0);
    });
    let (load, samples) = (load.finish(), sampler.finish());
    report("second concurrent deploy", &load, &samples);
    assert_eq!(load.failed, 0, "failed requests: {:?}", load.failures);
    assert!(samples.max_out <= 1, "{samples:?}");
}

#[test]
fn haproxy_reloaded_mid_rollout_never_drops_below_all_but_one_and_ends_correct() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, haproxy) = world(haproxy_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Good)]);
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    std::thread::scope(|scope| {
        let deploy = scope.spawn(|| world.deploy(["hello-1.1.0"]));
        haproxy.wait_until(Duration::from_secs(20), |stats| stats.iter().any(|s| !s.in_rotation()));
        haproxy.reload();
        deploy.join().unwrap().assert_exit(0);
    });
    haproxy.wait_until(Duration::from_secs(10), |stats| stats.len() == 3 && stats.iter().all(|s| s.in_rotation()));
    let (load, samples) = (load.finish(), sampler.finish());
    report("HAProxy reloaded mid-rollout", &load, &samples);
    assert!(samples.max_out <= 1, "{samples:?}");
    for host in world.hosts() {
        assert_eq!(host.version().as_deref(), Some("1.1.0"), "{host:?}");
    }
}

/// Issue 22: status never says fine when it cannot know. With HAProxy gone, rotation
/// is unknown (a mark of its own naming the balancer and why, `null` in JSON, never
/// `true`), a failing health check read before is still shown, and status exits 1.
#[test]
fn status_with_haproxy_gone_marks_rotation_unknown_and_keeps_the_health_results() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, haproxy) = world(haproxy_driver, &[("1.0.0", Artifact::Good)]);
    world.kai(["status", "test"]).assert_exit(0);
    let admin = haproxy.admin;
    drop(haproxy);
    let web2 = world.host("web2");
    let pid = web2.service_pid().expect("web2 runs the service");
    assert!(std::process::Command::new("kill").arg(pid.to_string()).status().unwrap().success());

    let run = world.kai(["status", "test"]);
    run.assert_exit(1).assert_says(&[
        "hello  1.0.0 %  1.0.0 %!  1.0.0 %",
        &format!("% hello in test: the balancer could not be read (HAProxy at 127.0.0.1:{admin}: "),
        "whether web1, web2, web3 are in rotation is unknown",
        "! hello in test: web2 runs 1.0.0 and fails its health check",
    ]);
    let json = world.kai(["status", "test", "--json"]);
    json.assert_exit(1);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    for host in doc["hosts"].as_array().unwrap() {
        assert_eq!(host["in_rotation"], serde_json::Value::Null, "{host}");
    }
    assert!(doc["problems"].as_array().unwrap().iter().any(|p| p["problem"] == "balancer-unread"), "{doc}");
}
