//! Fleet visibility: a second environment, an unreachable host, hand-made changes.

use super::*;

impl World {
    /// Adds the app `name` (not deployed) on the test environment's active hosts, in its
    /// own home `/srv/<name>` below each host's folder, with `health` (a `[health]`
    /// line), the artifact of `hello` (so its versions are published);
    /// [`World::app_home`] is its folder on a host.
    pub fn add_app(&self, name: &str, health: &str) {
        let servers: Vec<String> = self.hosts.iter().filter(|h| !h.standby).map(|h| toml_string(&h.name)).collect();
        self.write_file(
            &format!("apps/{name}.toml"),
            &format!(
                "artifact = \"{APP}\"\npackaging = \"tar.gz\"\nuser = \"{}\"\nhome = \"/srv/{name}\"\nstart = \"bin/start.sh\"\n\
                 stop = \"bin/stop.sh\"\n\n[health]\n{health}\ntimeout = \"5s\"\n\n[env.{ENV}]\nservers = [{}]\n",
                self.user,
                servers.join(", ")
            ),
        );
    }

    /// The home of an app added by [`World::add_app`] on `host`.
    pub fn app_home(&self, host: &str, app: &str) -> PathBuf {
        self.root.join(".kai/hosts").join(host).join("srv").join(app)
    }

    /// Moves `hosts` (keeping their roles, addresses and folders) out of `test` into a
    /// new environment `env` the app is deployed to as well.
    pub fn move_to_env(&self, env: &str, hosts: &[&str]) {
        let moved = |name: &str| hosts.contains(&name);
        let is_line_of = |line: &str, name: &str| line.starts_with(&format!("{name} = "));
        let text = read(&self.root.join(format!("environments/{ENV}.toml")));
        let other: String = text
            .lines()
            .filter(|l| !self.hosts.iter().any(|h| !moved(&h.name) && is_line_of(l, &h.name)))
            .map(|l| format!("{l}\n"))
            .collect();
        self.write_file(&format!("environments/{env}.toml"), &other);
        let app_file = format!("apps/{APP}.toml");
        let app = read(&self.root.join(&app_file));
        let head = &app[..app.find(&format!("\n[env.{ENV}]\n")).expect("the app's [env.test] section")];
        let names = |standby: bool, here: bool| {
            let list: Vec<String> =
                self.hosts.iter().filter(|h| h.standby == standby && moved(&h.name) == here).map(|h| toml_string(&h.name)).collect();
            list.join(", ")
        };
        let mut sections = String::new();
        for (name, here) in [(ENV, false), (env, true)] {
            sections.push_str(&format!("\n[env.{name}]\nservers = [{}]\nstandby = [{}]\n", names(false, here), names(true, here)));
        }
        self.write_file(&app_file, &format!("{head}\n{sections}"));
    }

    /// Makes `host` unreachable in every environment: over SSH its address becomes one
    /// where no sshd listens; a local host gets a root that cannot be a folder.
    pub fn make_unreachable(&self, host: &str) {
        let spec = self.hosts.iter().find(|h| h.name == host).unwrap_or_else(|| panic!("no host {host} in this world"));
        let nowhere = match spec.address.rsplit_once('.') {
            Some((net, _)) => format!("{net}.250"),
            None => panic!("{} is not an IPv4 address", spec.address),
        };
        for file in list(&self.root.join("environments")) {
            let path = self.root.join("environments").join(&file);
            let text: String = read(&path)
                .lines()
                .map(|line| match line.strip_prefix(&format!("{host} = ")) {
                    Some(_) if self.fleet.is_some() => line.replace(&format!("\"{}\"", spec.address), &format!("\"{nowhere}\"")),
                    Some(_) => format!("{host} = {{ address = \"{}\", root = \"/dev/null/unreachable\" }}", spec.address),
                    None => line.to_owned(),
                })
                .map(|l| l + "\n")
                .collect();
            fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }
}

impl Host<'_> {
    /// Points `current` at `version` by hand, as someone on the server might: nothing
    /// is stopped or started.
    pub fn switch_current_by_hand(&self, version: &str) {
        let link = self.home().join("current");
        fs::remove_file(&link).expect("remove current");
        std::os::unix::fs::symlink(format!("releases/{version}"), &link).expect("link current");
    }

    /// Puts the app home on a file system of `bytes` (a tmpfs; needs root), for as long
    /// as the returned guard lives: a host whose disk is nearly full.
    pub fn limit_disk(&self, bytes: u64) -> DiskLimit {
        let home = self.home();
        fs::create_dir_all(&home).expect("the app home");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "kai-test", &home.display().to_string()])
            .status()
            .expect("mount runs");
        assert!(status.success(), "this test mounts a small tmpfs as a host's home: run it as root (scripts/test.sh in CI)");
        DiskLimit { home }
    }

    /// Creates an empty file in the app home (`disabled`, say), as someone on the server might.
    pub fn touch(&self, name: &str) {
        fs::write(self.home().join(name), "").expect("touch a file in the app home");
    }

    /// Removes a file from the app home.
    pub fn remove(&self, name: &str) {
        fs::remove_file(self.home().join(name)).expect("remove a file from the app home");
    }

    /// The pid of the running service, from its release's `run/pid`.
    pub fn service_pid(&self) -> Option<u32> {
        fs::read_to_string(self.home().join("current/run/pid")).ok()?.trim().parse().ok()
    }
}
