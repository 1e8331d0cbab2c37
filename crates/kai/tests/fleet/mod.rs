//! A fleet of SSH "hosts" for tests: one real OpenSSH `sshd` listening on several
//! loopback addresses, with a generated host key, client key and known_hosts, so
//! kai's SSH transport is tested against the real thing. Stopped on drop.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// Loopback addresses handed out to fleets, so parallel tests never share one.
static NEXT_ADDRESS: AtomicU8 = AtomicU8::new(100);

pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub addresses: Vec<String>,
    pub port: u16,
    /// The login kai uses: the user running the tests.
    pub user: String,
    pub ssh_config: PathBuf,
    pub known_hosts: PathBuf,
    sshd: Option<Child>,
}

/// The tests that need sshd fail without it, saying what to install.
#[track_caller]
pub fn require_sshd() {
    assert!(Path::new(SSHD).exists(), "{SSHD} is missing: apt-get install openssh-server (scripts/test.sh installs it, as root)");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a setup command");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path));
}

impl Fleet {
    /// `n` hosts on fresh loopback addresses, one sshd, keys generated.
    pub fn start(n: usize) -> Fleet {
        let base = NEXT_ADDRESS.fetch_add(u8::try_from(n).expect("a small fleet"), Ordering::SeqCst);
        Fleet::start_on((0..n).map(|i| format!("127.0.0.{}", usize::from(base) + i)).collect())
    }

    /// Hosts on the given loopback addresses.
    pub fn start_on(addresses: Vec<String>) -> Fleet {
        Fleet::start_on_except(addresses, 0)
    }

    /// Hosts on the given loopback addresses, sshd on any port but `taken` (one the
    /// caller's services will listen on there: a port just let go can come back).
    pub fn start_on_except(addresses: Vec<String>, taken: u16) -> Fleet {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = std::iter::repeat_with(free_port).find(|p| *p != taken).expect("a free port");
        let user = whoami();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let ssh_config = d.join("ssh_config");
        fs::write(
            &ssh_config,
            format!("Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  LogLevel ERROR\n", d.join("client_key").display()),
        )
        .expect("ssh_config");
        let known_hosts = d.join("known_hosts");
        let mut fleet = Fleet { dir, addresses, port, user, ssh_config, known_hosts, sshd: None };
        fleet.write_known_hosts("host_key.pub");
        fleet.start_sshd();
        fleet
    }

    /// The known_hosts line of every address with the key in `public_key_file`.
    pub fn write_known_hosts(&self, public_key_file: &str) {
        let key = fs::read_to_string(self.dir.path().join(public_key_file)).expect("public key");
        let key = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let lines: String = self.addresses.iter().map(|a| format!("[{a}]:{} {key}\n", self.port)).collect();
        fs::write(&self.known_hosts, lines).expect("known_hosts");
    }

    /// Gives the hosts a new host key (as after a reinstall, or an attacker).
    pub fn change_host_key(&mut self) {
        self.stop();
        let key = self.dir.path().join("host_key");
        fs::remove_file(&key).ok();
        fs::remove_file(key.with_extension("pub")).ok();
        keygen(&key);
        self.start_sshd();
    }

    fn start_sshd(&mut self) {
        let d = self.dir.path();
        fs::create_dir_all("/run/sshd").ok();
        let listen: String = self.addresses.iter().map(|a| format!("ListenAddress {a}:{}\n", self.port)).collect();
        let config = format!(
            "{listen}HostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nMaxSessions 100\nMaxStartups 100\n\
             LogLevel ERROR\n",
            d.join("host_key").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display(),
        );
        // root's own ~/.bashrc on this kind of machine runs `pyenv init` for every ssh
        // command; a stub HOME keeps the hosts like a stock Debian account.
        let home = d.join("home");
        fs::create_dir_all(&home).expect("stub home");
        fs::write(home.join(".bashrc"), fs::read_to_string("/usr/share/base-files/dot.bashrc").unwrap_or_default()).expect(".bashrc");
        let config = format!(
            "{config}SetEnv HOME={}\nUseDNS no\nPrintMotd no\nKexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n",
            home.display()
        );
        fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join("sshd.log")).expect("sshd.log"))
            .spawn()
            .expect("start sshd");
        self.sshd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((self.addresses[0].as_str(), self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start: {}", fs::read_to_string(d.join("sshd.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts sshd again (after a cut), on the same addresses, port and keys.
    pub fn restart(&mut self) {
        self.stop();
        self.start_sshd();
    }

    /// The pid of the listening sshd.
    pub fn sshd_pid(&self) -> Option<u32> {
        self.sshd.as_ref().map(Child::id)
    }

    /// Kills sshd and every connection it serves, at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// `ssh` options for running a command on a host by hand in a test.
    pub fn ssh(&self, address: &str, command: &str) -> std::process::Output {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.ssh_config)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-p",
                &self.port.to_string(),
                "-l",
                &self.user,
                address,
                command,
            ])
            .output()
            .expect("run ssh")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills the sshd `pid` and the sshd processes below it (one per connection), as a
/// network failure would cut them; what those sessions started lives on.
pub fn kill_tree(pid: u32) {
    let mut children = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
            let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if ppid == Some(pid) && comm.trim() == "sshd" {
                children.push(child);
            }
        }
    }
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    for child in children {
        kill_tree(child);
    }
}
