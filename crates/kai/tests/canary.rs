//! The canary judged by HAProxy's own counters (issue 14, docs/configuration.md
//! "Canary"): a real HAProxy in front of three hosts reached over a real sshd, load
//! running, `[canary] hosts = 1`. A release that passes its health check but answers
//! 500 to one request in twenty, and one three times slower, are judged bad and put
//! back, the other servers never leaving the old release; a good release is judged
//! good and rolled out. Each run's verdict, both sides' figures and the requests the
//! load lost are printed and added to `target/zero-downtime.txt`.
#![allow(clippy::unwrap_used)]

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod haproxy;
mod support;

use std::sync::Mutex;

use haproxy::{Haproxy, Load, Sampler};
use serde_json::Value;
use support::{Artifact, Run, World};

static SERIAL: Mutex<()> = Mutex::new(());

/// Every release answers in about 10 ms; the slow one in 30.
const GOOD: Artifact = Artifact::Serves { fail_every: 0, delay_ms: 10 };

fn canary_section(admin: u16) -> String {
    format!(
        "kind = \"haproxy\"\nproxies = [\"lb\"]\nadmin = \"tcp:127.0.0.1:{admin}\"\nbackend = \"hello\"\ndrain_timeout = \"20s\"\n\n\
         [canary]\nhosts = 1\nwindow = \"8s\"\nmin_requests = 50\non_low_traffic = \"fail\""
    )
}

/// Three servers on 1.0.0 (good) behind a fresh HAProxy with a canary configured.
fn world(releases: &[(&str, Artifact)]) -> (World, Haproxy) {
    let mut builder = World::builder().active(3).standby(0).balancer("kind = \"none\"").publish_as("1.0.0", GOOD);
    for (version, artifact) in releases {
        builder = builder.publish_as(version, *artifact);
    }
    let world = builder.build().deployed("hello-1.0.0");
    let servers: Vec<(String, String, u16)> = world.hosts().map(|h| (h.name().to_owned(), h.address().to_owned(), world.port())).collect();
    let haproxy = Haproxy::start(&servers);
    let env = std::fs::read_to_string(world.root().join("environments/test.toml")).unwrap();
    world.write_file("environments/test.toml", &env.replace("kind = \"none\"", &canary_section(haproxy.admin)));
    (world, haproxy)
}

/// `kai --json deploy test hello-VERSION` under load: the run, its document, the
/// requests the load lost, and the servers ever seen out of rotation.
fn deploy_under_load(world: &World, haproxy: &Haproxy, version: &str) -> (Run, Value, haproxy::LoadReport, haproxy::Samples) {
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    let run = world.kai(["--json", "deploy", "test", &format!("hello-{version}")]);
    let (load, samples) = (load.finish(), sampler.finish());
    let document: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {run:?}"));
    (run, document, load, samples)
}

/// One line per run: the verdict, both sides' figures, what the load lost.
fn report(name: &str, document: &Value, load: &haproxy::LoadReport) {
    let canary = &document["apps"][0]["canary"];
    let side = |f: &Value| {
        format!(
            "{} {} requests, {} errors ({:.1}%), {:.1} ms",
            f["servers"].as_array().map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            f["requests"],
            f["errors"],
            f["error_ratio"].as_f64().unwrap_or(0.0) * 100.0,
            f["mean_ms"].as_f64().unwrap_or(f64::NAN)
        )
    };
    let line = format!(
        "canary, {name}: verdict {}; canary {}; baseline {}; load: {} requests, {} failed\n",
        canary["verdict"],
        side(&canary["canary"]),
        side(&canary["baseline"]),
        load.sent,
        load.failed
    );
    eprint!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../zero-downtime.txt");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    std::io::Write::write_all(&mut file, line.as_bytes()).unwrap();
}

/// The canary (web1) is back on 1.0.0; web2 and web3 never left it, nor rotation.
#[track_caller]
fn assert_put_back(world: &World, samples: &haproxy::Samples) {
    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some("1.0.0"), "{host:?}");
    }
    for host in ["web2", "web3"] {
        assert_eq!(world.host(host).results().len(), 1, "{host} was touched: {:?}", world.host(host).results());
        assert!(!samples.out.iter().any(|(s, _)| s == host), "{host} left rotation: {samples:?}");
    }
}

#[test]
fn a_canary_failing_one_request_in_twenty_is_put_back_and_the_others_never_leave() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    support::require_transport();
    haproxy::require_haproxy();
    let (world, haproxy) = world(&[("1.1.0", Artifact::Serves { fail_every: 20, delay_ms: 10 })]);

    let (run, document, load, samples) = deploy_under_load(&world, &haproxy, "1.1.0");
    report("fails 1 in 20", &document, &load);
    run.assert_exit(1);
    let app = &document["apps"][0];
    assert_eq!((&app["result"], &app["canary"]["verdict"]), (&Value::from("rolled-back"), &Value::from("bad")), "{document}");
    assert_eq!(app["failure"]["step"], "judge", "{document}");
    let ratio = app["canary"]["canary"]["error_ratio"].as_f64().unwrap();
    assert!((0.03..0.08).contains(&ratio), "about 5 % failed on the canary: {ratio}");
    assert_eq!(app["canary"]["baseline"]["errors"], 0, "{document}");
    assert_put_back(&world, &samples);
    world.kai(["history", "test"]).assert_exit(0).assert_says(&["canary bad", "failed"]);
}

#[test]
fn a_canary_three_times_slower_is_put_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    support::require_transport();
    haproxy::require_haproxy();
    let (world, haproxy) = world(&[("1.1.0", Artifact::Serves { fail_every: 0, delay_ms: 30 })]);

    let (run, document, load, samples) = deploy_under_load(&world, &haproxy, "1.1.0");
    report("3x slower", &document, &load);
    run.assert_exit(1);
    let canary = &document["apps"][0]["canary"];
    assert_eq!(canary["verdict"], "bad", "{document}");
    let (slow, base) = (canary["canary"]["mean_ms"].as_f64().unwrap(), canary["baseline"]["mean_ms"].as_f64().unwrap());
    assert!(slow > 2.0 * base, "canary {slow} ms, baseline {base} ms");
    assert_eq!(load.failed, 0, "slow is not lost: {:?}", load.failures);
    assert_put_back(&world, &samples);
}

#[test]
fn a_good_canary_is_judged_good_and_the_release_rolls_out() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    support::require_transport();
    haproxy::require_haproxy();
    let (world, haproxy) = world(&[("1.1.0", GOOD)]);

    let plan = world.kai(["plan", "test", "hello-1.1.0", "--commands"]);
    plan.assert_exit(0).assert_says(&["judge canary web1 against web2, web3 by HAProxy's counters over 8s"]);
    let (run, document, load, samples) = deploy_under_load(&world, &haproxy, "1.1.0");
    report("good release", &document, &load);
    run.assert_exit(0);
    assert_eq!(document["apps"][0]["canary"]["verdict"], "good", "{document}");
    assert_eq!(load.failed, 0, "{:?}", load.failures);
    assert!(samples.max_out <= 1, "{samples:?}");
    for host in world.hosts() {
        assert_eq!(host.current().as_deref(), Some("1.1.0"), "{host:?}");
    }
    let history = world.kai(["--json", "history", "test"]);
    let events: Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(events["events"][0]["canary"]["verdict"], "good", "{events}");
}
