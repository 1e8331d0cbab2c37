//! A real HAProxy in front of a world's hosts, a load generator that counts every
//! failed request, and a sampler of `show stat`: the rig of the zero-downtime proof.
//! HAProxy is set up so that mistakes show: `option http-server-close`,
//! `http-reuse never`, `retries 0`, no `redispatch` (docs/deploy.md).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kai_core::haproxy::{parse_stat, ServerStat};

const HAPROXY: &str = "/usr/sbin/haproxy";
pub const BACKEND: &str = "hello";

/// The proof fails without HAProxy, saying what to install.
#[track_caller]
pub fn require_haproxy() {
    assert!(Path::new(HAPROXY).exists(), "{HAPROXY} is missing: apt-get install haproxy (scripts/test.sh installs it, as root)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

pub struct Haproxy {
    pub front: u16,
    pub admin: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Haproxy {
    /// HAProxy balancing `servers` (name, address, port), checking `GET /health`.
    pub fn start(servers: &[(String, String, u16)]) -> Haproxy {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (front, admin) = (free_port(), free_port());
        let lines: String = servers.iter().map(|(name, address, port)| format!("  server {name} {address}:{port} check\n")).collect();
        let config = format!(
            "global\n  stats socket ipv4@127.0.0.1:{admin} level admin\n  maxconn 2000\n\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
               option http-server-close\n  http-reuse never\n  retries 0\n\n\
             frontend front\n  bind 127.0.0.1:{front}\n  default_backend {BACKEND}\n\n\
             backend {BACKEND}\n  option httpchk GET /health\n  default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 2\n{lines}"
        );
        fs::write(dir.path().join("haproxy.cfg"), config).expect("haproxy.cfg");
        let child = Command::new(HAPROXY)
            .args(["-W", "-db", "-f"])
            .arg(dir.path().join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("haproxy.log")).expect("haproxy.log"))
            .spawn()
            .expect("start haproxy");
        let haproxy = Haproxy { front, admin, child, dir };
        haproxy.wait_until(Duration::from_secs(10), |stats| stats.len() == servers.len() && stats.iter().all(ServerStat::in_rotation));
        haproxy
    }

    /// `show stat` of the backend, or nothing while HAProxy is not answering.
    pub fn stats(&self) -> Vec<ServerStat> {
        Haproxy::probe(self.admin)()
    }

    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[ServerStat]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if done(&stats) {
                return;
            }
            assert!(Instant::now() < deadline, "HAProxy never got there: {stats:?}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A reload: the master starts new workers that forget the runtime state.
    pub fn reload(&self) {
        let status = Command::new("kill").args(["-USR2", &self.child.id().to_string()]).status().expect("kill -USR2");
        assert!(status.success());
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub sent: u64,
    pub failed: u64,
    /// (milliseconds since the start, what went wrong) of each failure.
    pub failures: Vec<(u128, String)>,
}

/// Requests through HAProxy, one new connection each, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<LoadReport>>,
}

impl Load {
    pub fn start(port: u16, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut report = LoadReport::default();
                    // Bounded in time even if nobody stops it.
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                        report.sent += 1;
                        if let Err(e) = request(port) {
                            report.failed += 1;
                            report.failures.push((started.elapsed().as_millis(), e));
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    report
                })
            })
            .collect();
        Load { stop, threads }
    }

    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = LoadReport::default();
        for thread in self.threads {
            let r = thread.join().expect("a load thread");
            total.sent += r.sent;
            total.failed += r.failed;
            total.failures.extend(r.failures);
        }
        total.failures.sort();
        total
    }
}

pub fn request(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 2") || status.starts_with("HTTP/1.0 2") {
        Ok(())
    } else {
        Err(format!("answer {status:?}"))
    }
}

/// Samples a balancer every ~100 ms: how many servers were out of rotation.
/// Writes the figures of one proof where a person (and CI's log) finds them: on
/// standard error and appended to `target/zero-downtime.txt`. `name` says which proof,
/// `members` what the balancer calls a server (`server(s)`, `worker(s)`).
pub fn report(name: &str, members: &str, load: &LoadReport, samples: &Samples) {
    let out: Vec<String> = samples.out.iter().map(|(s, n)| format!("{s} {:.1}s", *n as f64 / 10.0)).collect();
    let line = format!(
        "{name}: {} requests, {} failed, at most {} {members} out of rotation in {} samples; out of rotation: {}{}\n",
        load.sent,
        load.failed,
        samples.max_out,
        samples.count,
        if out.is_empty() { "none".into() } else { out.join(", ") },
        load.failures.first().map(|(t, e)| format!("; first failure at {t} ms: {e}")).unwrap_or_default()
    );
    eprint!("{line}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../zero-downtime.txt");
    let mut file = fs::OpenOptions::new().create(true).append(true).open(path).expect("target/zero-downtime.txt");
    file.write_all(line.as_bytes()).expect("write target/zero-downtime.txt");
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Samples>,
}

#[derive(Debug, Default)]
pub struct Samples {
    pub count: u64,
    /// The most servers out of rotation at one sample.
    pub max_out: usize,
    /// Per server, samples out of rotation (× ~100 ms).
    pub out: std::collections::BTreeMap<String, u64>,
}

impl Sampler {
    pub fn start(admin: u16) -> Sampler {
        let probe = Haproxy::probe(admin);
        Sampler::watch(move || probe().iter().map(|s| (s.server.clone(), s.in_rotation())).collect())
    }

    /// Samples `probe` (each server's name and whether it is in rotation; nothing
    /// while the balancer does not answer) every ~100 ms.
    pub fn watch(probe: impl Fn() -> Vec<(String, bool)> + Send + 'static) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Samples::default();
            while !flag.load(Ordering::Relaxed) {
                let servers = probe();
                if !servers.is_empty() {
                    samples.count += 1;
                    let out: Vec<&String> = servers.iter().filter(|(_, in_rotation)| !in_rotation).map(|(name, _)| name).collect();
                    samples.max_out = samples.max_out.max(out.len());
                    for name in out {
                        *samples.out.entry(name.clone()).or_default() += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Sampler { stop, thread }
    }

    pub fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler")
    }
}

impl Haproxy {
    /// A `show stat` reader that needs only the admin port.
    fn probe(admin: u16) -> impl Fn() -> Vec<ServerStat> {
        move || {
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", admin)) else { return Vec::new() };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(format!("show stat {BACKEND} 4 -1\n").as_bytes());
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            parse_stat(&answer).unwrap_or_default()
        }
    }
}
