//! The chaos soak (issue 11): consecutive rolling deploys under load behind a real
//! HAProxy, over a real sshd, with a random fault in about one deploy in three: sshd
//! killed mid-deploy, HAProxy reloaded mid-rollout, a failing release, a host's disk
//! full, kai killed with SIGKILL or stopped with SIGTERM (and run again). After every
//! deploy (and its recovery, the way an operator would do it) every host must run one
//! version, be in rotation and unlocked. It prints requests sent and failed (and how
//! many of those fell in HAProxy reloads, the one case where kai cannot keep a request
//! from failing), the faults, and whether every host converged.
//!
//! It takes minutes: `bench/soak.sh [DEPLOYS] [SEED]` runs it (`cargo test --test soak
//! -- --ignored`), and writes its figures to `bench/results/`; CI runs 30 deploys with
//! a seed of its own. It prints the seed and every round with its fault, so a failure
//! can be replayed with the same dice.
#![allow(clippy::unwrap_used)]

/// Hosts are reached over SSH.
const OVER_SSH: bool = true;

mod haproxy;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use haproxy::{Haproxy, Load, Sampler};
use support::{wait_until, Artifact, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    SshdKilled,
    HaproxyReloaded,
    FailingRelease,
    DiskFull,
    KaiKilled,
    KaiTerminated,
}

/// xorshift64: the same faults every run of one seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// The seed `bench/soak.sh` rolls with unless given another.
const DEFAULT_SEED: u64 = 0x5EED_1234_ABCD_0042;

const GOOD: [&str; 4] = ["1.1.0", "1.2.0", "1.3.0", "1.4.0"];
const BROKEN: &str = "9.0.0";

#[test]
#[ignore = "a long soak (minutes): bench/soak.sh runs it"]
fn chaos_soak() {
    support::require_transport();
    haproxy::require_haproxy();
    let deploys: usize = std::env::var("KAI_SOAK_DEPLOYS").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let seed: u64 = std::env::var("KAI_SOAK_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_SEED);
    assert_ne!(seed, 0, "a seed of 0 rolls nothing but zeros");
    let mut dice = Dice(seed);
    eprintln!("chaos soak: {deploys} deploys, seed {seed} (replay: bench/soak.sh {deploys} {seed})");

    let mut builder = World::builder().active(3).standby(0).balancer("kind = \"none\"").publish("1.0.0");
    for version in GOOD {
        builder = builder.publish(version);
    }
    let mut world = builder.publish_as(BROKEN, Artifact::Broken).build();
    let disks: Vec<_> = world.hosts().map(|h| h.limit_disk(256 * 1024 * 1024)).collect();
    world.deploy(["hello-1.0.0"]).assert_exit(0);
    let servers: Vec<(String, String, u16)> = world.hosts().map(|h| (h.name().to_owned(), h.address().to_owned(), world.port())).collect();
    let haproxy = Haproxy::start(&servers);
    let env = std::fs::read_to_string(world.root().join("environments/test.toml")).unwrap();
    world.write_file(
        "environments/test.toml",
        &env.replace(
            "kind = \"none\"",
            &format!(
                "kind = \"haproxy\"\nproxies = [\"lb\"]\nadmin = \"tcp:127.0.0.1:{}\"\nbackend = \"hello\"\ndrain_timeout = \"20s\"",
                haproxy.admin
            ),
        ),
    );

    let started = Instant::now();
    let (load, sampler) = (Load::start(haproxy.front, 3), Sampler::start(haproxy.admin));
    let mut faults: BTreeMap<Fault, usize> = BTreeMap::new();
    let mut reloads: Vec<(u128, u128)> = Vec::new();
    let mut unconverged = Vec::new();
    let mut expected = "1.0.0".to_owned();
    for round in 0..deploys {
        let version = GOOD[round % GOOD.len()];
        let fault = (dice.roll(3) == 0).then(|| {
            [Fault::SshdKilled, Fault::HaproxyReloaded, Fault::FailingRelease, Fault::DiskFull, Fault::KaiKilled, Fault::KaiTerminated]
                [dice.roll(6) as usize]
        });
        let app = format!("hello-{version}");
        eprintln!("round {round} of seed {seed}: {app}, {}", fault.map_or_else(|| "no fault".to_owned(), |f| format!("fault {f:?}")));
        match fault {
            None => {
                world.deploy([&app]).assert_exit(0);
                expected = version.into();
            }
            Some(Fault::FailingRelease) => {
                world.deploy([format!("hello-{BROKEN}")]).assert_exit(1).assert_says(&["failed, put back"]);
            }
            Some(Fault::DiskFull) => {
                let host = world.host("web2");
                let filler = host.home().join("filler");
                let avail = free_bytes(&host.home());
                std::fs::write(&filler, vec![0u8; avail.saturating_sub(256 * 1024) as usize]).ok();
                // A release already on the host (kept from an earlier round) needs no room.
                let staged = host.releases().iter().any(|r| r == version);
                let run = world.deploy([&app]);
                if staged {
                    assert!(run.code == 0, "{version} is on web2 already and needs no room: {run:?}");
                } else {
                    assert!(run.code == 1, "a full disk must fail the deploy cleanly: {run:?}");
                }
                std::fs::remove_file(&filler).unwrap();
                world.deploy([&app]).assert_exit(0);
                expected = version.into();
            }
            Some(Fault::HaproxyReloaded) => {
                let deploy = world.start_kai(["deploy", "test", &app], &[]);
                haproxy.wait_until(Duration::from_secs(30), |stats| stats.iter().any(|s| !s.in_rotation()));
                let from = started.elapsed().as_millis();
                haproxy.reload();
                deploy.wait().assert_exit(0);
                reloads.push((from, started.elapsed().as_millis() + 2000));
                expected = version.into();
            }
            Some(fault @ (Fault::KaiKilled | Fault::KaiTerminated | Fault::SshdKilled)) => {
                let deploy = world.start_kai(["deploy", "test", &app], &[]);
                let switching = format!("releases/{version}/run/pid");
                wait_until("a server starts the new release", || world.hosts().any(|h| h.home().join(&switching).exists()));
                match fault {
                    Fault::KaiKilled => deploy.signal("KILL"),
                    Fault::KaiTerminated => deploy.signal("TERM"),
                    _ => world.cut_ssh(),
                }
                let stopped = deploy.wait();
                if fault == Fault::KaiTerminated {
                    stopped.assert_exit(143);
                }
                if fault == Fault::SshdKilled {
                    world.restore_ssh();
                }
                // What an operator does: break a lock left behind, then deploy again.
                if world.hosts().any(|h| h.is_locked()) {
                    world.kai(["unlock", "test", "hello", "--yes"]).assert_exit(0);
                }
                world.deploy([&app]).assert_exit(0);
                expected = version.into();
            }
        }
        if let Some(fault) = fault {
            *faults.entry(fault).or_default() += 1;
        }
        let converged = converged(&world, &haproxy, &expected);
        if let Err(why) = converged {
            unconverged.push(format!("deploy {round} ({fault:?}): {why}"));
        }
    }
    let (load, samples) = (load.finish(), sampler.finish());
    drop(disks);

    let in_reloads = load.failures.iter().filter(|(at, _)| reloads.iter().any(|(from, to)| at >= from && at <= to)).count();
    let outside = load.failed as usize - in_reloads.min(load.failed as usize);
    let mut text = format!(
        "chaos soak: {deploys} deploys (seed {seed}) in {:.0} s, {} faults ({}), {} requests sent, {} failed ({} during the {} HAProxy reloads, {outside} outside them), at most {} server(s) out of rotation at once, {} of {deploys} deploys ended with every host on one version, in rotation and unlocked\n",
        started.elapsed().as_secs_f64(),
        faults.values().sum::<usize>(),
        faults.iter().map(|(f, n)| format!("{f:?} {n}")).collect::<Vec<_>>().join(", "),
        load.sent,
        load.failed,
        in_reloads,
        reloads.len(),
        samples.max_out,
        deploys - unconverged.len(),
    );
    for line in &unconverged {
        text.push_str(&format!("  not converged: {line}\n"));
    }
    for (at, error) in load.failures.iter().take(10) {
        text.push_str(&format!("  failed request at {at} ms: {error}\n"));
    }
    eprint!("{text}");
    std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../soak.txt"), &text).unwrap();
    assert!(unconverged.is_empty(), "{text}");
    assert_eq!(outside, 0, "requests failed outside HAProxy reloads: {text}");
}

/// Every host runs `version`, answers, is UP in HAProxy and unlocked (waiting a little
/// for HAProxy's checks after a recovery).
fn converged(world: &World, haproxy: &Haproxy, version: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = haproxy.stats();
        let up = stats.len() == 3 && stats.iter().all(kai_core::haproxy::ServerStat::in_rotation);
        let versions: Vec<Option<String>> = world.hosts().map(|h| h.version()).collect();
        let locked: Vec<String> = world.hosts().filter(|h| h.is_locked()).map(|h| h.name().to_owned()).collect();
        if up && versions.iter().all(|v| v.as_deref() == Some(version)) && locked.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "versions {versions:?}, HAProxy {:?}, locked {locked:?}",
                stats.iter().map(|s| (&s.server, &s.status)).collect::<Vec<_>>()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Free bytes of the file system holding `dir`.
fn free_bytes(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}
