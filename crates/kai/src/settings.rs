//! Everything kai reads from its surroundings, read once at start and passed down:
//! nothing deeper in the code calls `std::env::var`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

/// The world as kai found it when it started.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cwd: PathBuf,
    /// `KAI_CONFIG`.
    pub kai_config: Option<PathBuf>,
    /// `KAI_TRACE`: a file to append every text sent to a host to.
    pub trace: Option<PathBuf>,
    /// Who runs kai, for locks and history.
    pub user: String,
    /// This machine's name, for locks and history.
    pub machine: String,
    /// Where downloaded artifacts are kept.
    pub cache_dir: PathBuf,
    /// The command line, for lock owners.
    pub command_line: String,
    /// Standard input is a terminal: someone can answer a question.
    pub stdin_is_terminal: bool,
    /// Standard output is a terminal: a person reads it (`kai man` shows its page as `man`
    /// does there, and prints roff into a pipe).
    pub stdout_is_terminal: bool,
    /// Standard error is a terminal that understands cursor movement (not `TERM=dumb`):
    /// progress may redraw its lines in place.
    pub stderr_is_live_terminal: bool,
    /// `NO_COLOR` is set (to anything but the empty string): no color codes at all.
    pub no_color: bool,
    /// `TERM=dumb`: a terminal that shows no color and cannot redraw lines.
    pub term_is_dumb: bool,
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
            trace: vars.get("KAI_TRACE").filter(|v| !v.is_empty()).map(PathBuf::from),
            user: vars.get("USER").or_else(|| vars.get("LOGNAME")).cloned().or_else(user_from_passwd).unwrap_or_else(|| "unknown".into()),
            machine: std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown".into()),
            cache_dir,
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            stdin_is_terminal: std::io::stdin().is_terminal(),
            stdout_is_terminal: std::io::stdout().is_terminal(),
            stderr_is_live_terminal: std::io::stderr().is_terminal() && vars.get("TERM").is_none_or(|t| t != "dumb"),
            no_color: vars.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
            term_is_dumb: vars.get("TERM").is_some_and(|t| t == "dumb"),
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
