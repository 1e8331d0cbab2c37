//! `kai serve` (issue 16) over real HTTP, on an estate of local hosts: the matrix shows
//! a deployed version, a drifted host, a failing host and a held lock; `/api/status` is
//! the document of `kai status --json` (its schema); 50 page views cause no probe of
//! their own; no secret reaches a page; an address other machines can reach needs a
//! token, and a token is then required.
#![allow(clippy::unwrap_used)]

/// Hosts are folders on this machine.
const OVER_SSH: bool = false;

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Background, World};

const ANN_LOCK: &str = r#"{"user":"ann","machine":"ws1","pid":1,"since":"2026-01-01T00:00:00Z","command":"kai deploy test hello"}"#;
const SECRET: &str = "hunter2-never-on-a-page";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` (with `authorization`, when given): the status code and the body.
fn get(port: u16, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// Waits until kai serves a first snapshot.
fn wait_served(port: u16, server: &Background) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (code, body) = get(port, "/api/snapshot", None);
            if code == 200 && !body.contains("\"taken\":null") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "kai serve never served a snapshot: {}", server.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn validate(schema: &str, document: &Value) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/schemas/{schema}.schema.json"));
    let mut schemas = boon::Schemas::new();
    let index = boon::Compiler::new().compile(&path.display().to_string(), &mut schemas).map_err(|e| format!("{e:#}"))?;
    schemas.validate(document, index).map_err(|e| format!("{e:#}"))
}

#[test]
fn the_matrix_shows_what_runs_and_what_is_wrong_and_views_cause_no_probes() {
    support::require_transport();
    let world = World::builder().active(3).standby(0).property("db.password", SECRET).publish("1.0.0").publish("1.1.0").build();
    let world = world.deployed("hello-1.0.0").deployed("hello-1.1.0");
    world.host("web2").switch_current_by_hand("1.0.0");
    world.host("web1").stop_service();
    world.host("web3").hold_lock(ANN_LOCK);
    let trace = world.base().join("serve.trace");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = world.start_kai(["serve", "--listen", listen.as_str(), "--refresh", "600s"], &[("KAI_TRACE", trace.to_str().unwrap())]);
    wait_served(port, &server);

    let (code, page) = get(port, "/", None);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<tr data-app=\"hello\">"), "{page}");
    assert!(page.contains("1.0.0/1.1.0"), "both versions in the cell: {page}");
    for mark in ["mark drift", "mark failing", "mark locked"] {
        assert!(page.contains(mark), "{mark} missing: {page}");
    }
    let (code, env) = get(port, "/env/test", None);
    assert!(code == 200 && env.contains("web2") && env.contains("FAILING"), "{env}");
    let (code, app) = get(port, "/app/hello", None);
    assert!(code == 200 && app.contains("history") && app.contains("1.0.0 → 1.1.0"), "{app}");
    assert_eq!(get(port, "/env/nowhere", None).0, 404);

    let (code, status) = get(port, "/api/status", None);
    assert_eq!(code, 200);
    let document: Value = serde_json::from_str(&status).unwrap();
    validate("status", &document).unwrap_or_else(|e| panic!("/api/status is not kai status --json: {e}"));
    let (_, history) = get(port, "/api/history", None);
    validate("history", &serde_json::from_str(&history).unwrap()).unwrap_or_else(|e| panic!("/api/history: {e}"));

    let probes = || std::fs::read_to_string(&trace).unwrap_or_default().lines().filter(|l| l.contains(" sends: ")).count();
    let before = probes();
    assert_eq!(before, 3, "one script a host for the first read (facts, health and history together)");
    let started = Instant::now();
    for i in 0..50 {
        let path = ["/", "/env/test", "/app/hello", "/history", "/api/status"][i % 5];
        assert_eq!(get(port, path, None).0, 200, "{path}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "50 views took {:?}", started.elapsed());
    assert_eq!(probes(), before, "page views made kai read the hosts");

    for path in ["/", "/env/test", "/app/hello", "/history", "/api/status", "/api/history"] {
        assert!(!get(port, path, None).1.contains(SECRET), "{path} shows a secret");
    }
    server.signal("INT");
    server.wait();
}

#[test]
fn other_machines_need_a_token_and_every_request_then_carries_it() {
    support::require_transport();
    let world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let open = world.kai(["serve", "--listen", "0.0.0.0:0"]);
    open.assert_exit(2).assert_says(&["other machines could reach it, and there is no token", "--token-env"]);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = world.start_kai(["serve", "--listen", listen.as_str(), "--token-env", "KAI_SERVE_TOKEN"], &[("KAI_SERVE_TOKEN", "t0ken")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "kai serve did not listen: {}", server.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(port, "/", None).0, 401);
    assert_eq!(get(port, "/api/status", Some("Bearer wrong")).0, 401);
    let (code, _) = get(port, "/api/snapshot", Some("Bearer t0ken"));
    assert_eq!(code, 200);
    // Basic auth with the token as the password: "team:t0ken".
    assert_eq!(get(port, "/api/snapshot", Some("Basic dGVhbTp0MGtlbg==")).0, 200);
    server.signal("INT");
    server.wait();
}

#[test]
fn an_app_page_compares_two_environments_as_kai_diff_does() {
    support::require_transport();
    let world = World::builder().active(2).standby(0).property("db.password", SECRET).publish("1.0.0").publish("1.1.0").build();
    let world = world.deployed("hello-1.0.0");
    world.move_to_env("prod", &["web2"]);
    world.deploy(["hello-1.1.0"]).assert_exit(0);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = world.start_kai(["serve", "--listen", listen.as_str()], &[]);
    wait_served(port, &server);

    let (code, page) = get(port, "/app/hello?a=test&b=prod", None);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("test compared with prod"), "{page}");
    assert!(page.contains("1.1.0") && page.contains("1.0.0") && page.contains("DIFFERS"), "{page}");
    assert!(page.contains("the same template, another host"), "{page}");
    assert!(!page.contains(SECRET), "a secret on the page");
    let (_, swapped) = get(port, "/app/hello?a=prod&b=test", None);
    assert!(swapped.contains("prod compared with test"), "{swapped}");
    let (code, diff) = get(port, "/api/diff?a=test&b=prod", None);
    assert_eq!(code, 200, "{diff}");
    let document: Value = serde_json::from_str(&diff).unwrap();
    validate("diff", &document).unwrap_or_else(|e| panic!("/api/diff is not kai diff --json: {e}"));
    assert_eq!(document["same"], false, "{document}");
    assert!(!diff.contains(SECRET));
    assert_eq!(get(port, "/api/diff?a=test", None).0, 400);
    server.signal("INT");
    server.wait();
}

/// A connection to the server from the loopback address `from`.
fn connect_from(from: &str, port: u16) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

/// `GET /api/snapshot` from `from` (a loopback address) naming `host`: the status code
/// (0: no answer).
fn get_from(from: &str, port: u16, host: &str) -> u16 {
    let mut stream = connect_from(from, port);
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /api/snapshot HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Whether the server closed `stream` (a read ends, or fails) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Issue 23: `kai serve` faces clients. A `Host` it is not reached by is refused (DNS
/// rebinding); a connection that sends nothing, or trickles a header line every few
/// seconds, is closed within 30 s; 1,500 idle connections from one client do not keep
/// another client's request from its answer.
#[test]
fn serve_refuses_foreign_hosts_closes_idle_and_trickling_clients_and_answers_under_a_flood() {
    support::require_transport();
    let world = World::builder().active(1).standby(0).publish("1.0.0").build().deployed("hello-1.0.0");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = world.start_kai(["serve", "--listen", listen.as_str(), "--refresh", "600s", "--host-name", "kai.example.org"], &[]);
    wait_served(port, &server);

    assert_eq!(get_from("127.0.0.1", port, "attacker.example"), 421, "a foreign Host is refused");
    assert_eq!(get_from("127.0.0.1", port, &format!("localhost:{port}")), 200);
    assert_eq!(get_from("127.0.0.1", port, "kai.example.org"), 200, "a name given with --host-name");
    assert_eq!(get_from("127.0.0.1", port, &format!("127.0.0.1:{}", port + 1)), 421, "another port");

    let started = Instant::now();
    let mut idle = connect_from("127.0.0.3", port);
    let mut trickling = connect_from("127.0.0.4", port);
    write!(trickling, "GET / HTTP/1.1\r\n").unwrap();
    let flood: Vec<TcpStream> = (0..1500).map(|_| connect_from("127.0.0.5", port)).collect();
    assert_eq!(get_from("127.0.0.2", port, &format!("127.0.0.1:{port}")), 200, "another client is answered under the flood");
    let trickle = std::thread::spawn(move || {
        for i in 0..8 {
            std::thread::sleep(Duration::from_secs(5));
            if write!(trickling, "X-Slow-{i}: 1\r\n").is_err() {
                return (true, trickling);
            }
        }
        (false, trickling)
    });
    assert!(closed_within(&mut idle, Duration::from_secs(45)), "an idle connection is still open after {:?}", started.elapsed());
    assert!(started.elapsed() <= Duration::from_secs(40), "closed only after {:?}", started.elapsed());
    let (refused_a_line, mut trickling) = trickle.join().unwrap();
    assert!(refused_a_line || closed_within(&mut trickling, Duration::from_secs(5)), "a trickling connection stays open");
    drop(flood);
    assert_eq!(get_from("127.0.0.1", port, &format!("127.0.0.1:{port}")), 200);
}
