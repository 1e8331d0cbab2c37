//! Everything kai reads from its surroundings, read once at start and passed down:
//! nothing deeper in the code calls `std::env::var`.

use std::collections::HashMap;
use std::path::PathBuf;

/// The world as kai found it when it started.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cwd: PathBuf,
    /// `KAI_CONFIG`.
    pub kai_config: Option<PathBuf>,
    /// Who runs kai, for locks and history.
    pub user: String,
    /// This machine's name, for locks and history.
    pub machine: String,
    /// Where downloaded artifacts are kept.
    pub cache_dir: PathBuf,
    /// The command line, for lock owners.
    pub command_line: String,
    /// The process environment, for the variables the configuration names
    /// (credentials): looked up by name, never logged.
    vars: HashMap<String, String>,
}

impl Settings {
    pub fn from_environment() -> std::io::Result<Settings> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let home = vars.get("HOME").map(PathBuf::from);
        let cache_dir = vars
            .get("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("kai");
        Ok(Settings {
            cwd: std::env::current_dir()?,
            kai_config: vars.get("KAI_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from),
            user: vars.get("USER").or_else(|| vars.get("LOGNAME")).cloned().or_else(user_from_passwd).unwrap_or_else(|| "unknown".into()),
            machine: std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into()),
            cache_dir,
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            vars,
        })
    }

    /// The value of an environment variable the configuration names.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// The name of this process's user from `/etc/passwd`, when `USER` is not set (cron, CI).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_owned())
    })
}
