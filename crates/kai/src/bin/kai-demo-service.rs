//! The "application" kai's demo deploys: a tiny HTTP/1.1 server configured by a properties file.
//!
//! `kai-demo-service <properties-file>`. Endpoints: `/ready` (kai's readiness check: 200 unless
//! `fail.ready=true`, or a file `BROKEN` is in the working folder: a release published broken), `/health` (503 while the app home's `disabled` file exists: what a load
//! balancer checks), `/version`, `/greeting`, and `/` (one line: app, version, address:port).
//! `exit.after.ms=N` makes it exit N ms after it starts listening (a release that crashes
//! soon after start, for tests). `fail.every=N` answers every Nth request to `/` with a
//! 500, and `delay.ms=N` makes every answer to `/` wait N ms: a release that passes its
//! health checks and still fails or is slow (what a canary is judged for).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use std::{env, fs, thread};

/// What the properties file says, checked once at startup.
struct Settings {
    name: String,
    version: String,
    /// `http.address:http.port`, what the service listens on.
    listen: String,
    greeting: Option<String>,
    disabled_file: PathBuf,
    startup_delay: Duration,
    fail_ready: bool,
    /// Exit (status 3) this long after listening: a release that dies soon after start.
    exit_after: Option<Duration>,
    /// Every Nth answer to `/` is a 500 (0: never).
    fail_every: u64,
    /// How long each answer to `/` waits.
    delay: Duration,
    /// Answers to `/` so far.
    served: std::sync::atomic::AtomicU64,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("kai-demo-service: {message}");
            ExitCode::from(code)
        }
    }
}

/// Loads the settings (exit code 2 when they are wrong), listens (1 when it cannot), serves.
fn run() -> Result<(), (u8, String)> {
    let args: Vec<_> = env::args_os().collect();
    let [_, path] = args.as_slice() else {
        return Err((2, "usage: kai-demo-service <properties-file>".into()));
    };
    let path = Path::new(path);
    let settings = load(path).map_err(|message| (2, format!("{}: {message}", path.display())))?;
    let settings = Arc::new(settings);
    thread::sleep(settings.startup_delay);
    let listener = TcpListener::bind(&settings.listen).map_err(|err| (1, format!("cannot listen on {}: {err}", settings.listen)))?;
    let (name, version, listen) = (&settings.name, &settings.version, &settings.listen);
    let disabled = settings.disabled_file.display();
    println!("{name} {version} listening on {listen}; disabled file {disabled}");
    if let Some(after) = settings.exit_after {
        thread::spawn(move || {
            thread::sleep(after);
            eprintln!("kai-demo-service: exit.after.ms reached, exiting");
            std::process::exit(3);
        });
    }
    for stream in listener.incoming().flatten() {
        let settings = Arc::clone(&settings);
        thread::spawn(move || {
            if let Err(err) = serve(stream, &settings) {
                eprintln!("kai-demo-service: connection: {err}");
            }
        });
    }
    Ok(())
}

/// Reads `key=value` lines (blank lines and `#` or `!` comments skipped) into [`Settings`].
fn load(path: &Path) -> Result<Settings, String> {
    let text = fs::read_to_string(path).map_err(|err| format!("cannot read: {err}"))?;
    let mut props = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            let number = number + 1;
            return Err(format!("line {number}: expected key=value, found {line:?}"));
        };
        props.insert(key.trim(), value.trim());
    }
    let required = |key: &str| match props.get(key) {
        Some(value) if !value.is_empty() => Ok(value.to_string()),
        _ => Err(format!("missing property {key}")),
    };
    let expected = |key: &str, what: &str, found: &str| format!("{key}: expected {what}, found {found:?}");
    let port = required("http.port")?;
    let port: u16 = port.parse().map_err(|_| expected("http.port", "a port", &port))?;
    let number = |key: &str| -> Result<u64, String> {
        let text = props.get(key).copied().unwrap_or("0");
        text.parse().map_err(|_| expected(key, "a number", text))
    };
    let delay = props.get("startup.delay.ms").copied().unwrap_or("0");
    let delay = delay.parse().map_err(|_| expected("startup.delay.ms", "a number", delay))?;
    let fail_ready = match props.get("fail.ready").copied() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(expected("fail.ready", "true or false", other)),
    } || std::path::Path::new("BROKEN").exists();
    let disabled_file = match props.get("disabled.file") {
        Some(file) => PathBuf::from(file),
        None => home_disabled_file()?,
    };
    Ok(Settings {
        name: required("app.name")?,
        version: required("app.version")?,
        listen: match required("http.address")? {
            address if address.contains(':') => format!("[{address}]:{port}"),
            address => format!("{address}:{port}"),
        },
        greeting: props.get("greeting").map(ToString::to_string),
        disabled_file,
        startup_delay: Duration::from_millis(delay),
        fail_ready,
        exit_after: match props.get("exit.after.ms").copied() {
            None => None,
            Some(ms) => Some(Duration::from_millis(ms.parse().map_err(|_| expected("exit.after.ms", "a number", ms))?)),
        },
        fail_every: number("fail.every")?,
        delay: Duration::from_millis(number("delay.ms")?),
        served: std::sync::atomic::AtomicU64::new(0),
    })
}

/// `<home>/disabled`: the process runs in `<home>/releases/<version>`, and the working
/// directory is always the physical path, so the home is two levels up.
fn home_disabled_file() -> Result<PathBuf, String> {
    let cwd = env::current_dir().map_err(|err| format!("working directory: {err}"))?;
    match cwd.parent().and_then(|releases| releases.parent()) {
        Some(home) => Ok(home.join("disabled")),
        None => Err(format!("no app home above {}; set disabled.file", cwd.display())),
    }
}

/// Answers one request and closes the connection.
fn serve(mut stream: TcpStream, settings: &Settings) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let head = read_head(&mut stream)?;
    let mut request_line = head.split_whitespace();
    let (method, target) = (request_line.next(), request_line.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let (status, body) = match method {
        Some("GET") => route(path, settings),
        _ => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    let length = body.len();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n{body}"
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// The status line and body for a GET of `path`.
fn route(path: &str, settings: &Settings) -> (&'static str, String) {
    let (name, version, listen) = (&settings.name, &settings.version, &settings.listen);
    let disabled = settings.disabled_file.exists();
    match path {
        "/ready" if settings.fail_ready => ("500 Internal Server Error", "not ready\n".into()),
        "/ready" => ("200 OK", "ready\n".into()),
        "/health" if disabled => ("503 Service Unavailable", "disabled\n".into()),
        "/health" => ("200 OK", "ok\n".into()),
        "/version" => ("200 OK", format!("{version}\n")),
        "/" => {
            let n = settings.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            thread::sleep(settings.delay);
            if settings.fail_every > 0 && n % settings.fail_every == 0 {
                ("500 Internal Server Error", "failed on purpose (fail.every)\n".into())
            } else {
                ("200 OK", format!("{name} {version} on {listen}\n"))
            }
        }
        "/greeting" => match &settings.greeting {
            Some(greeting) => ("200 OK", format!("{greeting}\n")),
            None => ("404 Not Found", "no greeting configured\n".into()),
        },
        _ => ("404 Not Found", "not found\n".into()),
    }
}

/// Reads up to the blank line that ends the request head (at most 16 KiB).
fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
