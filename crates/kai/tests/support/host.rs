//! A host, as a test reads it: its app home, version, releases, history, processes.

use super::*;

/// One host of a world: a folder `<config>/.kai/hosts/<name>/`, the app home below it.
#[derive(Clone, Copy)]
pub struct Host<'w> {
    pub(super) world: &'w World,
    pub(super) spec: &'w HostSpec,
}

impl Host<'_> {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn address(&self) -> &str {
        &self.spec.address
    }

    /// `<host root>/home/hello`.
    pub fn home(&self) -> PathBuf {
        self.world.root.join(".kai/hosts").join(&self.spec.name).join("home").join(&self.world.user)
    }

    /// The version `current` points to.
    pub fn current(&self) -> Option<String> {
        let target = fs::read_link(self.home().join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// Everything in `releases/`, sorted: temporary folders would show too.
    pub fn releases(&self) -> Vec<String> {
        list(&self.home().join("releases"))
    }

    /// The versions with a recorded checksum (`.kai/checksums/`).
    pub fn recorded_checksums(&self) -> Vec<String> {
        list(&self.home().join(".kai/checksums"))
    }

    pub fn is_disabled(&self) -> bool {
        self.home().join("disabled").exists()
    }

    pub fn is_locked(&self) -> bool {
        self.home().join(".kai/lock").exists()
    }

    /// The command lines of the processes working in this host's app home (their
    /// current folder inside it).
    pub fn processes(&self) -> Vec<String> {
        let home = self.home();
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let inside = fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&home));
            if inside {
                let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned());
            }
        }
        found
    }

    /// Puts someone else's deploy lock on this host, as kai writes one.
    pub fn hold_lock(&self, owner_json: &str) {
        let lock = self.home().join(".kai/lock");
        fs::create_dir_all(&lock).expect("the lock folder");
        fs::write(lock.join("owner"), format!("{owner_json}\n")).expect("the lock owner");
    }

    /// Stops the app as a crash would leave it: `current` unchanged, nothing running.
    pub fn stop_service(&self) {
        let current = self.home().join("current");
        let status = Command::new(current.join("bin/stop.sh")).current_dir(&current).stdout(Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "bin/stop.sh failed on {}", self.spec.name);
    }

    /// The lines of `.kai/history.jsonl`.
    pub fn history(&self) -> Vec<String> {
        fs::read_to_string(self.home().join(".kai/history.jsonl")).map(|t| t.lines().map(str::to_owned).collect()).unwrap_or_default()
    }

    /// The lines of `.kai/history.jsonl` that record a result (not the "started" line
    /// a deploy writes before it changes the host).
    pub fn results(&self) -> Vec<String> {
        self.history().into_iter().filter(|l| !l.contains(r#""result":"started""#)).collect()
    }

    /// The rendered properties of a release.
    pub fn properties(&self, version: &str) -> String {
        let path = self.home().join("releases").join(version).join("config/app.properties");
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// What the running service answers on `/version`; `None` when nothing answers 200.
    pub fn version(&self) -> Option<String> {
        match http_get(&self.spec.address, self.world.port, "/version") {
            Some((200, body)) => Some(body.trim().to_owned()),
            _ => None,
        }
    }
}

impl fmt::Debug for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, current {:?}, releases {:?})", self.spec.name, self.spec.address, self.current(), self.releases())
    }
}

/// `GET path` over a fresh connection: the status and body, or `None` when nothing answers.
pub fn http_get(address: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let socket: SocketAddr = format!("{address}:{port}").parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&socket, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
