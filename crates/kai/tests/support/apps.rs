//! More applications in a world: a second service beside `hello`, and an environment
//! of the same hosts that places nothing.

use super::*;

impl World {
    /// Adds the app `name`, the demo service built from `hello`'s artifact (so its
    /// versions are published), placed in `test` on the same active and standby servers,
    /// in its own home `/srv/<name>` ([`World::app_home`]) and on a port of its own.
    /// Returns that port.
    pub fn add_served_app(&self, name: &str) -> u16 {
        let port = self.free_port();
        let names =
            |standby: bool| self.hosts.iter().filter(|h| h.standby == standby).map(|h| toml_string(&h.name)).collect::<Vec<_>>().join(", ");
        self.write_file(
            &format!("apps/{name}.toml"),
            &format!(
                "artifact = \"{APP}\"\npackaging = \"tar.gz\"\nuser = \"{}\"\nhome = \"/srv/{name}\"\nstart = \"bin/start.sh\"\n\
                 stop = \"bin/stop.sh\"\nproperties_file = \"config/app.properties\"\n\n[properties]\n\"app.name\" = \"{{app}}\"\n\
                 \"app.version\" = \"{{version}}\"\n\"http.address\" = \"{{address}}\"\n\"http.port\" = {port}\n\n[health]\n\
                 http = \"http://{{address}}:{port}/ready\"\ntimeout = \"{HEALTH_TIMEOUT}\"\nstable = \"{HEALTH_STABLE}\"\n\n\
                 [env.{ENV}]\nservers = [{}]\nstandby = [{}]\n",
                self.user,
                names(false),
                names(true)
            ),
        );
        port
    }

    /// Adds the environment `env`: the hosts of `test` (its file copied), with no app
    /// placed in it.
    pub fn add_empty_env(&self, env: &str) {
        let text = read(&self.root.join(format!("environments/{ENV}.toml")));
        self.write_file(&format!("environments/{env}.toml"), &text);
    }

    /// A port free on every host's address, other than the app's.
    fn free_port(&self) -> u16 {
        for _ in 0..50 {
            let Ok(port) = TcpListener::bind((self.hosts[0].address.as_str(), 0)).and_then(|probe| probe.local_addr()).map(|a| a.port())
            else {
                continue;
            };
            if port != self.port && self.hosts.iter().all(|h| TcpListener::bind((h.address.as_str(), port)).is_ok()) {
                return port;
            }
        }
        panic!("no port free on every host of the world");
    }
}
