//! A local HTTP receiver for the webhook: a std `TcpListener` on a free loopback
//! port, answering every request with a chosen status and keeping what it got.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header lines, names lowercased: `content-type: application/json`.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.headers.iter().find_map(|h| h.strip_prefix(&prefix))
    }
}

pub struct WebhookReceiver {
    pub port: u16,
    received: Arc<Mutex<Vec<Request>>>,
}

/// How the receiver answers.
#[derive(Clone, Copy)]
pub enum Answer {
    /// 200, as Slack answers (`ok`).
    Ok,
    /// 403 with the request path in the answer, as a server that echoes too much.
    ForbiddenEchoingThePath,
}

impl WebhookReceiver {
    pub fn start(answer: Answer) -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("its address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = serve(stream, answer) {
                    sink.lock().expect("the receiver's list").push(request);
                }
            }
        });
        WebhookReceiver { port, received }
    }

    /// A webhook URL on this receiver, with a token in its path as real ones have.
    pub fn url(&self, token: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{token}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.received.lock().expect("the receiver's list").clone()
    }

    /// Waits (briefly) until `count` requests are in, and returns them.
    pub fn wait_for(&self, count: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let requests = self.requests();
            if requests.len() >= count || Instant::now() > deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve(stream: TcpStream, answer: Answer) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push(format!("{}: {}", name.to_ascii_lowercase(), value.trim()));
    }
    let request = Request { method, path, headers, body: Vec::new() };
    let length: usize = request.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (status, text) = match answer {
        Answer::Ok => ("200 OK", "ok".to_owned()),
        Answer::ForbiddenEchoingThePath => ("403 Forbidden", format!("invalid_token for {}", request.path)),
    };
    let mut stream = stream;
    let reply =
        format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
    stream.write_all(reply.as_bytes()).ok()?;
    Some(Request { body, ..request })
}
