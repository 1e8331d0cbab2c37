//! The zero-downtime proof behind Apache httpd (issue 13): a real httpd 2.4 with
//! mod_proxy_balancer in front of three hosts reached over a real sshd, each running
//! the demo service; kai drives the balancer-manager page (basic auth, the login from
//! the environment). A load generator counts every failed request. The figures are
//! printed and added to `target/zero-downtime.txt`, beside HAProxy's.
#![allow(clippy::unwrap_used)]

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod haproxy;
mod httpd;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use haproxy::{Load, LoadReport, Sampler, Samples};
use httpd::Httpd;
use kai_core::httpd::Worker;
use support::{Artifact, Run, World};

/// One proof at a time: they measure, and the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const LOGIN: [(&str, &str); 2] = [("KAI_LB_USER", httpd::USER), ("KAI_LB_PASSWORD", httpd::PASSWORD)];

#[track_caller]
fn require_rig() {
    support::require_transport();
    httpd::require_httpd();
}

/// Three servers deployed with `versions[0]` behind a fresh httpd, then the
/// environment's balancer set to `balancer(manager port, app port)`.
fn world(balancer: impl Fn(u16, u16) -> String, versions: &[(&str, Artifact)]) -> (World, Httpd) {
    let mut builder = World::builder().active(3).standby(0).balancer("kind = \"none\"");
    for (version, artifact) in versions {
        builder = builder.publish_as(version, *artifact);
    }
    let world = builder.build().deployed(&format!("hello-{}", versions[0].0));
    let workers: Vec<String> = world.hosts().map(|h| format!("http://{}:{}", h.address(), world.port())).collect();
    // The proxy host `lb` has the first host's address over SSH (support), 127.0.0.1 locally.
    let proxy = if OVER_SSH { world.host("web1").address().to_owned() } else { "127.0.0.1".to_owned() };
    let httpd = Httpd::start(&workers, &proxy);
    let env = std::fs::read_to_string(world.root().join("environments/test.toml")).unwrap();
    world.write_file("environments/test.toml", &env.replace("kind = \"none\"", &balancer(httpd.manager, world.port())));
    (world, httpd)
}

fn httpd_driver(manager: u16, port: u16) -> String {
    format!(
        "kind = \"httpd\"\nproxies = [\"lb\"]\nmanager = \"http://{{address}}:{manager}/balancer-manager\"\n\
         worker = \"http://{{address}}:{port}\"\nbalancer = \"hello\"\ndrain_timeout = \"20s\"\n\
         username_env = \"KAI_LB_USER\"\npassword_env = \"KAI_LB_PASSWORD\""
    )
}

fn no_driver(_: u16, _: u16) -> String {
    "kind = \"none\"".into()
}

/// `kai deploy test APP` with the balancer-manager's login in the environment.
fn deploy(world: &World, app: &str) -> Run {
    world.start_kai(["deploy", "test", app], &LOGIN).wait()
}

fn sampler(httpd: &Httpd) -> Sampler {
    let probe = Httpd::probe(httpd.manager);
    Sampler::watch(move || probe().iter().map(|w| (w.url.clone(), w.usable())).collect())
}

fn report(name: &str, load: &LoadReport, samples: &Samples) {
    haproxy::report(&format!("httpd, {name}"), "worker(s)", load, samples);
}

#[test]
fn negative_control_restarting_behind_httpd_without_draining_loses_requests() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, httpd) = world(no_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Good), ("1.2.0", Artifact::Good)]);
    let (load, sampler) = (Load::start(httpd.front, 3), sampler(&httpd));
    deploy(&world, "hello-1.1.0").assert_exit(0);
    deploy(&world, "hello-1.2.0").assert_exit(0);
    let (load, samples) = (load.finish(), sampler.finish());
    report("negative control (no balancer driver)", &load, &samples);
    assert!(load.failed > 0, "the rig proves nothing: restarts without draining lost no request ({load:?})");
}

#[test]
fn five_rolling_deploys_behind_httpd_and_a_failing_release_lose_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"];
    let mut published: Vec<(&str, Artifact)> = versions.iter().map(|v| (*v, Artifact::Good)).collect();
    published.push(("1.6.0", Artifact::BrokenOn("web2")));
    let (world, httpd) = world(httpd_driver, &published);
    let (load, sampler) = (Load::start(httpd.front, 3), sampler(&httpd));
    let mut printed = String::new();
    for version in &versions[1..] {
        printed += &deploy(&world, &format!("hello-{version}")).assert_exit(0).output();
    }
    let failing = deploy(&world, "hello-1.6.0");
    failing.assert_exit(1).assert_says(&["failed, put back", "web2"]);
    printed += &failing.output();
    httpd.wait_until(Duration::from_secs(10), |workers| workers.iter().all(Worker::usable));
    let (load, samples) = (load.finish(), sampler.finish());
    report("5 deploys and a release failing on web2", &load, &samples);
    assert_eq!(load.failed, 0, "failed requests: {:?}", load.failures);
    assert!(samples.max_out <= 1, "more than one worker out of rotation at once: {samples:?}");
    assert!(samples.max_out == 1, "no worker ever left rotation: the driver did nothing ({samples:?})");
    assert!(load.sent > 100, "the load did not run: {load:?}");
    for host in world.hosts() {
        assert_eq!(host.version().as_deref(), Some("1.5.0"), "{host:?}");
    }
    assert!(!printed.contains(httpd::PASSWORD), "the balancer-manager password was printed");
}

#[test]
fn a_graceful_reload_of_the_proxy_before_each_server_returns_loses_no_request() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, httpd) = world(httpd_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Good), ("1.2.0", Artifact::Good)]);
    // Run on the proxy host (over SSH): a graceful restart of this httpd, counted in a file.
    let reloads = world.base().join("reloads");
    let reload = format!("reload = \"sh -c 'kill -USR1 {} && echo reloaded >> {}'\"", httpd.pid(), reloads.display());
    world.edit_file("environments/test.toml", "drain_timeout = \"20s\"", &format!("drain_timeout = \"20s\"\n{reload}"));
    let plan = world.start_kai(["plan", "test", "hello-1.1.0", "--commands"], &LOGIN).wait();
    plan.assert_exit(0).assert_says(&["kill -USR1"]);

    let (load, sampler) = (Load::start(httpd.front, 3), sampler(&httpd));
    deploy(&world, "hello-1.1.0").assert_exit(0);
    deploy(&world, "hello-1.2.0").assert_exit(0);
    let (load, samples) = (load.finish(), sampler.finish());
    report("2 deploys, a graceful reload before each server returns", &load, &samples);
    let count = std::fs::read_to_string(&reloads).unwrap_or_default().lines().count();
    assert_eq!(count, 6, "one reload per server per deploy");
    assert_eq!(load.failed, 0, "failed requests: {:?}", load.failures);
    assert!(samples.max_out <= 1, "more than one worker out of rotation at once: {samples:?}");
    for host in world.hosts() {
        assert_eq!(host.version().as_deref(), Some("1.2.0"), "{host:?}");
    }
}

#[test]
fn status_reads_rotation_from_httpd_and_a_missing_login_stops_before_any_server_leaves() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let (world, httpd) = world(httpd_driver, &[("1.0.0", Artifact::Good), ("1.1.0", Artifact::Good)]);

    let without = world.deploy(["hello-1.1.0"]);
    without.assert_exit(1).assert_says(&["KAI_LB_USER is not set"]);
    assert!(httpd.workers().iter().all(Worker::usable), "a worker left rotation: {:?}", httpd.workers());
    for host in world.hosts() {
        assert_eq!(host.version().as_deref(), Some("1.0.0"), "{host:?}");
    }

    let worker = format!("http://{}:{}", world.host("web1").address(), world.port());
    set_disabled(&httpd, &worker);
    let status = world.start_kai(["status", "test"], &LOGIN).wait();
    status.assert_exit(1).assert_says(&["web1", "out of rotation"]);
}

/// Disables `worker` on the page, as a person at the page would.
fn set_disabled(httpd: &Httpd, worker: &str) {
    let manager = format!("http://127.0.0.1:{}/balancer-manager", httpd.manager);
    let output = std::process::Command::new("curl")
        .args(["-sf", "-u", &format!("{}:{}", httpd::USER, httpd::PASSWORD), &manager])
        .output()
        .expect("curl runs");
    let page = String::from_utf8_lossy(&output.stdout);
    let nonce = kai_core::httpd::parse_page(&page, httpd::BALANCER).expect("the page").nonce;
    let form = format!("b={}&w={worker}&nonce={nonce}&w_status_D=1", httpd::BALANCER);
    let posted = std::process::Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-u", &format!("{}:{}", httpd::USER, httpd::PASSWORD), "-H", &format!("Referer: {manager}")])
        .args(["--data", &form, &manager])
        .status()
        .expect("curl runs");
    assert!(posted.success());
    httpd.wait_until(Duration::from_secs(5), |workers| workers.iter().any(|w| w.url == worker && !w.usable()));
}

/// Issue 22: a balancer-manager page that does not list the configured balancer is a
/// balancer that cannot be read: rotation unknown, marked, exit 1; never "in rotation".
#[test]
fn status_with_a_balancer_the_page_does_not_list_marks_rotation_unknown() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_rig();
    let other = |manager, port| httpd_driver(manager, port).replace("balancer = \"hello\"", "balancer = \"other\"");
    let (world, _httpd) = world(other, &[("1.0.0", Artifact::Good)]);

    let run = world.start_kai(["status", "test"], &LOGIN).wait();

    run.assert_exit(1).assert_says(&["hello  1.0.0 %", "the balancer could not be read", "no balancer \"other\""]);
    let json = world.start_kai(["status", "test", "--json"], &LOGIN).wait();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(doc["hosts"].as_array().unwrap().iter().all(|h| h["in_rotation"].is_null()), "{doc}");
}
