//! A small HTTP/1.1 file server for the repository tests: serves a folder laid out
//! as a Maven repository, and can require basic authentication.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

pub(super) struct TestServer {
    pub(super) base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

struct Site {
    root: PathBuf,
    /// The expected value of the `Authorization` header, if one is required.
    authorization: Option<String>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Serves `root` on a free port of 127.0.0.1 until the test process ends.
    pub(super) fn start(root: &Path, credentials: Option<(&str, &str)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let site = Arc::new(Site {
            root: root.to_path_buf(),
            authorization: credentials.map(|(user, password)| format!("Basic {}", base64(&format!("{user}:{password}")))),
            requests: Arc::clone(&requests),
        });
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let site = Arc::clone(&site);
                thread::spawn(move || site.serve(stream));
            }
        });
        TestServer { base: format!("http://127.0.0.1:{port}/repo"), requests }
    }

    /// Every request so far, as `METHOD /path`.
    pub(super) fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Site {
    fn serve(&self, stream: TcpStream) {
        // A client that hangs up early is not the test's concern.
        let _ = self.answer(stream);
    }

    fn answer(&self, stream: TcpStream) -> io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let authorization = read_authorization(&mut reader)?;
        self.requests.lock().expect("request log").push(format!("{method} {target}"));

        let authorized = self.authorization.is_none() || self.authorization == authorization;
        let (status, body) = match (authorized, self.file(&target)) {
            (false, _) => ("401 Unauthorized", b"who are you?".to_vec()),
            (true, Some(body)) => ("200 OK", body),
            (true, None) => ("404 Not Found", b"<html>not here</html>".to_vec()),
        };
        respond(stream, status, &body, method == "HEAD")
    }

    /// The file for `/repo/<path>`, if it exists under the root.
    fn file(&self, target: &str) -> Option<Vec<u8>> {
        let rel = Path::new(target.strip_prefix("/repo/")?);
        if !rel.components().all(|part| matches!(part, Component::Normal(_))) {
            return None;
        }
        std::fs::read(self.root.join(rel)).ok()
    }
}

/// Reads the headers up to the blank line; returns the `Authorization` value.
fn read_authorization(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(authorization);
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
}

fn respond(mut stream: TcpStream, status: &str, body: &[u8], head: bool) -> io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nWWW-Authenticate: Basic realm=\"test\"\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    if !head {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc_4648() {
    assert_eq!(base64("f"), "Zg==");
    assert_eq!(base64("fo"), "Zm8=");
    assert_eq!(base64("foo"), "Zm9v");
    assert_eq!(base64("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}
