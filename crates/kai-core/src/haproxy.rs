//! HAProxy's runtime API, the pure half: the commands kai sends and the parser of
//! `show stat` (CSV, read by its header names; docs/deploy.md).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where HAProxy's runtime API is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Admin {
    /// A unix socket on each proxy host, used there through the transport (`socat`).
    Unix { proxies: Vec<String>, path: String },
    /// `ADDRESS:PORT` per proxy, dialled from the control machine.
    Tcp { addresses: Vec<String> },
}

/// The states kai sets a server to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// No new balanced traffic; checks go on.
    Drain,
    /// Out: no traffic, no checks.
    Maint,
    /// In rotation (once its checks pass).
    Ready,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Drain => "drain",
            State::Maint => "maint",
            State::Ready => "ready",
        })
    }
}

/// `set server <backend>/<server> state <state>`; the names are identifiers (checked
/// when planned), so the line needs no quoting.
pub fn set_state(backend: &str, server: &str, state: State) -> String {
    format!("set server {backend}/{server} state {state}")
}

/// `show stat <backend> 4 -1`: the servers of one backend.
pub fn show_stat(backend: &str) -> String {
    format!("show stat {backend} 4 -1")
}

/// `show stat -1 4 -1`: the servers of every backend (a read of many apps asks once).
pub const SHOW_ALL_SERVERS: &str = "show stat -1 4 -1";

/// One server's line of `show stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStat {
    pub backend: String,
    pub server: String,
    /// `UP`, `UP 1/3`, `DRAIN`, `DRAIN 1/2`, `MAINT`, `DOWN`, `no check`, …
    pub status: String,
    pub scur: u64,
    pub qcur: u64,
    /// The counters a canary is judged by (zero where HAProxy leaves them empty).
    pub counters: Counters,
}

/// A server's counters from `show stat`: totals since HAProxy started (they go back to
/// zero when it is reloaded), and `rtime`, its average response time in ms over the
/// last 1024 requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Answers by class: 1xx to 5xx and other.
    pub hrsp: [u64; 6],
    /// Connection and response errors, retries and redispatches.
    pub econ: u64,
    pub eresp: u64,
    pub wretr: u64,
    pub wredis: u64,
    pub rtime: u64,
    /// Times the server was chosen by the balancing (`lbtot`): how many answers its
    /// `rtime` average has seen, up to its window of 1024.
    pub lbtot: u64,
}

impl ServerStat {
    /// In rotation: its status starts with `UP` (or it has no checks and is not out).
    pub fn in_rotation(&self) -> bool {
        self.status.starts_with("UP") || self.status == "no check"
    }

    /// No sessions left and none queued.
    pub fn drained(&self) -> bool {
        self.scur == 0 && self.qcur == 0
    }

    /// After `drain` from MAINT the status reads `DRAIN 1/2` (stale) until a check
    /// passes; exactly `DRAIN` means a fresh check succeeded. Exactly `UP` means the
    /// same (HAProxy was reloaded meanwhile and forgot the drain).
    pub fn checked(&self) -> bool {
        self.status == "DRAIN" || self.status == "UP"
    }
}

/// Parses `show stat` output: the `# pxname,svname,...` header names the columns.
pub fn parse_stat(csv: &str) -> Result<Vec<ServerStat>, String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty answer to `show stat`")?;
    let header = header.strip_prefix("# ").ok_or_else(|| format!("not a `show stat` answer: {header:?}"))?;
    let names: Vec<&str> = header.split(',').collect();
    let column = |name: &str| names.iter().position(|n| *n == name).ok_or_else(|| format!("`show stat` has no {name} column"));
    let (px, sv, status, scur, qcur) = (column("pxname")?, column("svname")?, column("status")?, column("scur")?, column("qcur")?);
    // The counters are optional: a TCP backend has no hrsp_*, an old HAProxy fewer columns.
    let optional = |name: &str| names.iter().position(|n| *n == name);
    let hrsp = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].map(optional);
    let (econ, eresp, wretr, wredis, rtime) =
        (optional("econ"), optional("eresp"), optional("wretr"), optional("wredis"), optional("rtime"));
    let lbtot = optional("lbtot");
    let mut servers = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default();
        if matches!(field(sv), "FRONTEND" | "BACKEND") {
            continue;
        }
        let number = |i: Option<usize>| i.and_then(|i| field(i).parse().ok()).unwrap_or(0);
        servers.push(ServerStat {
            backend: field(px).to_owned(),
            server: crate::table::printable(&crate::table::cut(field(sv), 256)),
            // What HAProxy says is shown in messages: escaped, never played.
            status: crate::table::printable(&crate::table::cut(field(status), 64)),
            scur: field(scur).parse().unwrap_or(0),
            qcur: field(qcur).parse().unwrap_or(0),
            counters: Counters {
                hrsp: hrsp.map(number),
                econ: number(econ),
                eresp: number(eresp),
                wretr: number(wretr),
                wredis: number(wredis),
                rtime: number(rtime),
                lbtot: number(lbtot),
            },
        });
    }
    Ok(servers)
}

/// The answer to a `set server` command: empty on success, else HAProxy's message.
pub fn check_reply(reply: &str) -> Result<(), String> {
    let reply = reply.trim();
    if reply.is_empty() {
        Ok(())
    } else {
        Err(format!("HAProxy answered: {reply}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_haproxy_says_is_kept_escaped() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n\
                   hello,web1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP\u{1b}]0;pwned\u{7}\n";
        let servers = super::parse_stat(csv).expect("parses");
        assert!(!servers[0].status.chars().any(char::is_control), "{:?}", servers[0].status);
        assert!(servers[0].status.starts_with("UP\\u{1b}"), "{:?}", servers[0].status);
    }

    use super::*;

    /// Captured from HAProxy 2.6 (Debian 12), `show stat app 4 -1`, trimmed after `status`'s neighbours.
    const SAMPLE: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
app,web1,0,0,0,1,,12,0,0,,0,,0,0,0,0,UP,1\n\
app,web2,0,0,2,3,,40,0,0,,0,,0,0,0,0,DRAIN 1/2,1\n\
app,web3,1,1,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1\n\
app,BACKEND,0,0,2,3,,52,0,0,0,0,,0,0,0,0,UP,2\n";

    #[test]
    fn parses_servers_by_header_name() {
        let servers = parse_stat(SAMPLE).unwrap();
        assert_eq!(servers.len(), 3);
        let web1 = ServerStat {
            backend: "app".into(),
            server: "web1".into(),
            status: "UP".into(),
            scur: 0,
            qcur: 0,
            counters: Counters::default(),
        };
        assert_eq!(servers[0], web1);
        assert!(servers[0].in_rotation() && servers[0].drained());
        assert!(!servers[1].in_rotation() && !servers[1].drained() && !servers[1].checked());
        assert!(!servers[2].drained(), "a queued request counts");
    }

    #[test]
    fn a_fresh_check_reads_exactly_drain_or_up() {
        let csv = "# pxname,svname,qcur,scur,status\napp,web1,0,0,DRAIN\napp,web2,0,0,UP\napp,web3,0,0,UP 1/3\n";
        let checked: Vec<bool> = parse_stat(csv).unwrap().iter().map(ServerStat::checked).collect();
        assert_eq!(checked, [true, true, false]);
    }

    #[test]
    fn refuses_what_is_not_a_stat_answer() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("Unknown command.\n").is_err());
        assert!(parse_stat("# pxname,svname\napp,web1\n").unwrap_err().contains("status"));
    }

    #[test]
    fn commands_and_replies() {
        assert_eq!(set_state("app", "web1", State::Drain), "set server app/web1 state drain");
        assert_eq!(show_stat("app"), "show stat app 4 -1");
        assert!(check_reply("\n").is_ok());
        assert!(check_reply("No such server.\n").unwrap_err().contains("No such server"));
    }
}
