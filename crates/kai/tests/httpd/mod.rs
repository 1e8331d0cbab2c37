//! A real Apache httpd 2.4 (mod_proxy_balancer) in front of a world's hosts, with its
//! balancer-manager page behind basic auth on a port of its own: the rig of the httpd
//! zero-downtime proof. httpd is set up so that mistakes show: `maxattempts=0` (no
//! failover to another worker when one fails), `retry=1` (a failed worker is tried
//! again after a second, not a minute).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kai_core::httpd::{parse_page, Worker};

const HTTPD: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";
pub const BALANCER: &str = "hello";
pub const USER: &str = "kai-lb";
pub const PASSWORD: &str = "lb-Pw7-never-shown";

/// The proof fails without httpd, saying what to install.
#[track_caller]
pub fn require_httpd() {
    assert!(
        Path::new(HTTPD).exists() && Path::new(MODULES).join("mod_proxy_balancer.so").exists(),
        "{HTTPD} or its proxy modules are missing: apt-get install apache2 (scripts/test.sh installs it, as root)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

pub struct Httpd {
    pub front: u16,
    pub manager: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Httpd {
    /// httpd balancing `workers` (their URLs), its manager on a port of its own, on
    /// 127.0.0.1 and on `proxy` (the address the proxy host has in the world).
    pub fn start(workers: &[String], proxy: &str) -> Httpd {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (front, manager) = (free_port(), free_port());
        let root = dir.path().display();
        let members: String = workers.iter().map(|w| format!("    BalancerMember \"{w}\" retry=1\n")).collect();
        let modules = [
            ("mpm_event", "mod_mpm_event"),
            ("authz_core", "mod_authz_core"),
            ("authz_user", "mod_authz_user"),
            ("authn_core", "mod_authn_core"),
            ("authn_file", "mod_authn_file"),
            ("auth_basic", "mod_auth_basic"),
            ("proxy", "mod_proxy"),
            ("proxy_http", "mod_proxy_http"),
            ("proxy_balancer", "mod_proxy_balancer"),
            ("lbmethod_byrequests", "mod_lbmethod_byrequests"),
            ("slotmem_shm", "mod_slotmem_shm"),
        ];
        let loads: String = modules.iter().map(|(name, file)| format!("LoadModule {name}_module {MODULES}/{file}.so\n")).collect();
        let (proxy_listen, proxy_host) = match proxy {
            "127.0.0.1" => (String::new(), String::new()),
            other => (format!("Listen {other}:{manager}\n"), format!(" {other}:{manager}")),
        };
        let config = format!(
            "ServerRoot {root}\nServerName kai-test\nPidFile {root}/httpd.pid\nDefaultRuntimeDir {root}\nErrorLog {root}/error.log\n\
             LogLevel warn\nMutex file:{root}\n{loads}User nobody\nGroup nogroup\n\
             Listen 127.0.0.1:{front}\nListen 127.0.0.1:{manager}\n{proxy_listen}Timeout 5\nProxyTimeout 5\n\
             <Proxy \"balancer://{BALANCER}\">\n{members}    ProxySet maxattempts=0\n</Proxy>\n\
             <VirtualHost 127.0.0.1:{front}>\n    ProxyPass \"/\" \"balancer://{BALANCER}/\"\n</VirtualHost>\n\
             <VirtualHost 127.0.0.1:{manager}{proxy_host}>\n    <Location \"/balancer-manager\">\n        SetHandler balancer-manager\n\
                     AuthType Basic\n        AuthName kai\n        AuthBasicProvider file\n        AuthUserFile {root}/users\n\
                     Require valid-user\n    </Location>\n</VirtualHost>\n"
        );
        fs::write(dir.path().join("httpd.conf"), config).expect("httpd.conf");
        fs::write(dir.path().join("users"), format!("{USER}:{}\n", sha_password(PASSWORD))).expect("users");
        // httpd, started as root, serves as `nobody`: it must be able to read its folder.
        let _ = fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755));
        let _ = fs::set_permissions(dir.path().join("users"), std::os::unix::fs::PermissionsExt::from_mode(0o644));
        // A process group of its own: stopping it stops every child it forked.
        let child = Command::new(HTTPD)
            .process_group(0)
            .args(["-DFOREGROUND", "-f"])
            .arg(dir.path().join("httpd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("stderr.log")).expect("stderr.log"))
            .spawn()
            .expect("start httpd");
        let httpd = Httpd { front, manager, child, dir };
        let count = workers.len();
        httpd.wait_until(Duration::from_secs(10), |workers| workers.len() == count && workers.iter().all(Worker::usable));
        httpd
    }

    /// The workers as the balancer-manager shows them, or nothing while httpd is not answering.
    pub fn workers(&self) -> Vec<Worker> {
        Httpd::probe(self.manager)()
    }

    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Worker]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let workers = self.workers();
            if done(&workers) {
                return;
            }
            assert!(Instant::now() < deadline, "httpd never got there: {workers:?}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// httpd's parent process: `kill -USR1` it for a graceful restart.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    /// A balancer-manager reader that needs only the manager port.
    pub fn probe(manager: u16) -> impl Fn() -> Vec<Worker> {
        move || {
            let Ok(page) = get(manager, "/balancer-manager") else { return Vec::new() };
            parse_page(&page, BALANCER).map(|b| b.workers).unwrap_or_default()
        }
    }
}

impl Drop for Httpd {
    /// Stops httpd as `apachectl stop` does (TERM: it stops its children, then itself),
    /// and then whatever of its process group is left: killing the parent alone left its
    /// children running, holding their ports.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// `GET path` with the manager's login; the body of a 200 answer.
fn get(port: u16, path: &str) -> Result<String, String> {
    use base64_login as b64;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let auth = b64::encode(format!("{USER}:{PASSWORD}").as_bytes());
    let request = format!("GET {path} HTTP/1.0\r\nHost: manager\r\nAuthorization: Basic {auth}\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 200") && !answer.starts_with("HTTP/1.0 200") {
        return Err(answer.lines().next().unwrap_or_default().to_owned());
    }
    Ok(answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

/// An htpasswd `{SHA}` entry: base64 of the password's SHA-1.
fn sha_password(password: &str) -> String {
    use sha1::Digest;
    format!("{{SHA}}{}", base64_login::encode(&sha1::Sha1::digest(password.as_bytes())))
}

/// Base64 (standard alphabet, padded), enough for a login and a digest.
mod base64_login {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_standard() {
        assert_eq!(encode(b"Man"), "TWFu");
        assert_eq!(encode(b"Ma"), "TWE=");
        assert_eq!(encode(b"M"), "TQ==");
    }
}
