//! `kai ps`: the processes of every app on a host, with their memory, swap, CPU and
//! age. One constant script per host prints raw `/proc` facts (nothing is spliced
//! into it: the apps come as positional arguments); here they are parsed, each
//! process mapped to its app by working directory, executable or user, then sorted
//! and totalled.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use serde::Serialize;

use crate::shell::command::Command;
use crate::table::{self, Table};

/// Arguments: `app user home`, repeated. Prints tab-separated facts: the script's own
/// pid, clock ticks, uptime, each app with its user's uid and its home resolved to a
/// physical path and where its `current` points, the passwd names, then per process
/// `status` lines, the `stat` line and the `cwd`/`exe` links (readable for the login's
/// own processes only, unless root).
pub const PS_SCRIPT: &str = r#"printf 'self\t%s\n' "$$"
printf 'clk_tck\t%s\n' "$(getconf CLK_TCK 2>/dev/null)"
read -r up _ < /proc/uptime && printf 'uptime\t%s\n' "$up"
while [ "$#" -ge 3 ]; do
  home=$3
  case $home in "~"*) home=$(getent passwd "${home#"~"}" | cut -d: -f6) ;; esac
  real=$(cd "$home" 2>/dev/null && pwd -P) || real=$home
  printf 'app\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(id -u "$2" 2>/dev/null)" "$real"
  printf 'current\t%s\t%s\n' "$1" "$(readlink "$real/current" 2>/dev/null)"
  shift 3
done
while IFS=: read -r name _ uid _; do printf 'passwd\t%s\t%s\n' "$uid" "$name"; done < /etc/passwd
grep -a -H -E '^(Uid|VmRSS|VmSwap):' /proc/[0-9]*/status 2>/dev/null
grep -a -H '' /proc/[0-9]*/stat 2>/dev/null
find /proc/[0-9]* -mindepth 1 -maxdepth 1 \( -name cwd -o -name exe \) -printf 'link\t%h\t%f\t%l\n' 2>/dev/null
exit 0
"#;

/// An app on a host, as the script is told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppHome {
    pub app: String,
    /// The Unix account that runs it.
    pub user: String,
    /// The app home as the transport knows it: `~user` or an absolute path.
    pub home: String,
}

/// The command that prints one host's process facts for `apps`.
pub fn ps_command(apps: &[AppHome]) -> Command {
    let mut argv: Vec<String> = ["sh", "-c", PS_SCRIPT, "kai-ps"].map(String::from).into();
    for a in apps {
        argv.extend([a.app.clone(), a.user.clone(), a.home.clone()]);
    }
    Command::new(argv)
}

/// How a process was found to belong to its app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchedBy {
    /// Its working directory is under the app home.
    Cwd,
    /// Its executable is under the app home.
    Exe,
    /// It runs as the app's user.
    User,
}

/// One process of an app.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Process {
    pub host: String,
    pub pid: u32,
    /// The user name, or the uid when the host does not name it.
    pub user: String,
    /// Its app; `a|b` when it runs as a user several apps share and nothing else tells.
    pub app: String,
    /// The kernel's name for it (`comm`, at most 15 characters).
    pub command: String,
    pub rss_kb: u64,
    pub swap_kb: u64,
    /// CPU time over its lifetime, as `ps` shows %CPU (100 = one core).
    pub cpu_percent: f64,
    pub uptime_secs: u64,
    pub matched_by: MatchedBy,
    /// The release it runs from (its working folder or executable inside
    /// `<home>/releases/<release>`), when it does.
    pub release: Option<String>,
    /// It runs from a release that is not the app's `current` one (or from a release
    /// folder removed under it): left behind, and in the way of the release that
    /// should run.
    pub orphan: bool,
}

#[derive(Debug, Default)]
struct Raw {
    uid: Option<u32>,
    rss_kb: u64,
    swap_kb: u64,
    stat: Option<Stat>,
    cwd: Option<String>,
    exe: Option<String>,
}

#[derive(Debug)]
struct Stat {
    comm: String,
    ppid: u32,
    cpu_ticks: u64,
    start_ticks: u64,
}

#[derive(Debug)]
struct App {
    name: String,
    uid: Option<u32>,
    home: String,
    /// The release `current` points to.
    current: Option<String>,
}

impl App {
    /// The release `path` lies in (`<home>/releases/<release>/…`), and whether that
    /// folder was removed under it.
    fn release_of(&self, path: &str) -> Option<(String, bool)> {
        let rest = path.strip_prefix(&self.home)?.strip_prefix("/releases/")?;
        let name = rest.split('/').next()?;
        let (name, deleted) = match name.strip_suffix(" (deleted)") {
            Some(name) => (name, true),
            None => (name, rest.ends_with(" (deleted)") && !rest.contains('/')),
        };
        crate::ident::is_valid(name).then(|| (name.to_owned(), deleted))
    }
}

/// The processes of the apps in the output of [`PS_SCRIPT`] run on `host`. The
/// script itself, its ancestors and its children are left out.
pub fn parse_ps(host: &str, output: &str) -> Vec<Process> {
    let mut me = None;
    let mut ticks: f64 = 100.0;
    let mut uptime: f64 = 0.0;
    let mut apps: Vec<App> = Vec::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut raw: BTreeMap<u32, Raw> = BTreeMap::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("/proc/") {
            let Some((pid, rest)) = rest.split_once('/') else { continue };
            let Ok(pid) = pid.parse::<u32>() else { continue };
            let entry = raw.entry(pid).or_default();
            if let Some(field) = rest.strip_prefix("status:") {
                read_status(entry, field);
            } else if let Some(stat) = rest.strip_prefix("stat:") {
                entry.stat = parse_stat(stat);
            }
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["self", pid] => me = pid.trim().parse::<u32>().ok(),
            ["clk_tck", t] => ticks = t.trim().parse().ok().filter(|t| *t > 0.0).unwrap_or(100.0),
            ["uptime", u] => uptime = u.trim().parse().unwrap_or(0.0),
            ["app", name, _user, uid, home] => {
                let home = home.trim_end_matches('/').into();
                apps.push(App { name: (*name).into(), uid: uid.trim().parse().ok(), home, current: None });
            }
            ["current", name, target] => {
                if let Some(app) = apps.iter_mut().rfind(|a| a.name == *name) {
                    let target = target.trim_end_matches('/');
                    app.current = Some(target.rsplit('/').next().unwrap_or(target).to_owned()).filter(|c| !c.is_empty());
                }
            }
            ["passwd", uid, name] => {
                if let Ok(uid) = uid.parse() {
                    names.entry(uid).or_insert_with(|| (*name).to_owned());
                }
            }
            ["link", dir, kind, target] if !target.is_empty() => {
                let Some(Ok(pid)) = dir.strip_prefix("/proc/").map(str::parse::<u32>) else { continue };
                let entry = raw.entry(pid).or_default();
                match *kind {
                    "cwd" => entry.cwd = Some((*target).to_owned()),
                    "exe" => entry.exe = Some((*target).to_owned()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let skip = family_of(me, &raw);
    raw.iter()
        .filter(|(pid, _)| !skip.contains(pid))
        .filter_map(|(&pid, r)| {
            let stat = r.stat.as_ref()?;
            let (app, matched_by) = app_of(r, &apps)?;
            let lived = (uptime - stat.start_ticks as f64 / ticks).max(0.0);
            let cpu = if lived > 0.0 { stat.cpu_ticks as f64 / ticks / lived * 100.0 } else { 0.0 };
            let user = r.uid.map_or_else(|| "?".to_owned(), |uid| names.get(&uid).cloned().unwrap_or_else(|| uid.to_string()));
            let home = apps.iter().find(|a| a.name == app);
            let release = home
                .and_then(|a| r.cwd.as_deref().and_then(|p| a.release_of(p)).or_else(|| r.exe.as_deref().and_then(|p| a.release_of(p))));
            let orphan = match (&release, home) {
                (Some((name, deleted)), Some(a)) => *deleted || a.current.as_ref() != Some(name),
                _ => false,
            };
            Some(Process {
                host: host.into(),
                pid,
                user,
                app,
                command: stat.comm.clone(),
                rss_kb: r.rss_kb,
                swap_kb: r.swap_kb,
                cpu_percent: (cpu * 10.0).round() / 10.0,
                uptime_secs: lived as u64,
                matched_by,
                release: release.map(|(name, _)| name),
                orphan,
            })
        })
        .collect()
}

/// `Uid:\t1000\t1000…`, `VmRSS:\t  1234 kB`, `VmSwap:\t  0 kB`.
fn read_status(entry: &mut Raw, field: &str) {
    let Some((key, value)) = field.split_once(':') else { return };
    let first = value.split_whitespace().next().and_then(|v| v.parse::<u64>().ok());
    match (key, first) {
        ("Uid", Some(uid)) => entry.uid = u32::try_from(uid).ok(),
        ("VmRSS", Some(kb)) => entry.rss_kb = kb,
        ("VmSwap", Some(kb)) => entry.swap_kb = kb,
        _ => {}
    }
}

/// `pid (comm) state ppid …`: the name may hold spaces and parentheses, so the
/// fields are counted from its last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat { comm, ppid: u32::try_from(field(4)?).ok()?, cpu_ticks: field(14)? + field(15)?, start_ticks: field(22)? })
}

/// The script, every process above it (the shells and sudo that started it) and every
/// process it started: they work in the app home but are kai's, not the app's.
fn family_of(me: Option<u32>, raw: &BTreeMap<u32, Raw>) -> BTreeSet<u32> {
    let Some(me) = me else { return BTreeSet::new() };
    let mut family: BTreeSet<u32> = raw.keys().copied().filter(|p| is_below(*p, me, raw)).collect();
    family.insert(me);
    let parent = |pid: u32| raw.get(&pid).and_then(|r| r.stat.as_ref()).map(|s| s.ppid);
    let mut up = parent(me);
    while let Some(pid) = up.filter(|p| *p > 1 && family.insert(*p)) {
        up = parent(pid);
    }
    family
}

/// True when `pid` is `me` or one of its descendants.
fn is_below(mut pid: u32, me: u32, raw: &BTreeMap<u32, Raw>) -> bool {
    for _ in 0..64 {
        if pid == me {
            return true;
        }
        match raw.get(&pid).and_then(|r| r.stat.as_ref()) {
            Some(s) if s.ppid > 1 => pid = s.ppid,
            _ => return false,
        }
    }
    false
}

/// The app a process belongs to: the longest app home holding its working folder,
/// else its executable; else the app of its user, when that is not root.
fn app_of(raw: &Raw, apps: &[App]) -> Option<(String, MatchedBy)> {
    let under = |path: &str| {
        apps.iter()
            .filter(|a| a.home.starts_with('/') && a.home.len() > 1)
            .filter(|a| path == a.home || path.strip_prefix(&a.home).is_some_and(|rest| rest.starts_with('/')))
            .max_by_key(|a| a.home.len())
            .map(|a| a.name.clone())
    };
    if let Some(app) = raw.cwd.as_deref().and_then(under) {
        return Some((app, MatchedBy::Cwd));
    }
    if let Some(app) = raw.exe.as_deref().and_then(under) {
        return Some((app, MatchedBy::Exe));
    }
    let uid = raw.uid.filter(|uid| *uid != 0)?;
    let owners: BTreeSet<&str> = apps.iter().filter(|a| a.uid == Some(uid)).map(|a| a.name.as_str()).collect();
    if owners.is_empty() {
        return None;
    }
    Some((owners.into_iter().collect::<Vec<_>>().join("|"), MatchedBy::User))
}

/// What `kai ps --sort` orders by: largest first, or by app and host (an order that
/// stays the same from one run to the next).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortKey {
    #[default]
    Swap,
    Rss,
    Cpu,
    App,
}

impl FromStr for SortKey {
    type Err = String;

    fn from_str(s: &str) -> Result<SortKey, String> {
        match s {
            "swap" => Ok(SortKey::Swap),
            "rss" => Ok(SortKey::Rss),
            "cpu" => Ok(SortKey::Cpu),
            "app" => Ok(SortKey::App),
            other => Err(format!("{other:?}: sort by swap, rss, cpu or app")),
        }
    }
}

/// The sum over the processes of one host or one app.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Total {
    pub name: String,
    pub processes: usize,
    pub rss_kb: u64,
    pub swap_kb: u64,
    pub cpu_percent: f64,
}

/// The report: the processes shown (sorted, maybe the top N), and totals over all of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Listing {
    pub sort: SortKey,
    /// How many processes were found; `processes` may hold fewer (`--top`).
    pub found: usize,
    pub processes: Vec<Process>,
    pub hosts: Vec<Total>,
    pub apps: Vec<Total>,
}

/// Sorts by `key` (then by the other two, then host and pid), keeps the `top` first,
/// and totals every process found per host and per app.
pub fn report(mut processes: Vec<Process>, key: SortKey, top: Option<usize>) -> Listing {
    processes.sort_by(|a, b| {
        largest_first(sort_tuple(a, key), sort_tuple(b, key)).then_with(|| (&a.app, &a.host, a.pid).cmp(&(&b.app, &b.host, b.pid)))
    });
    let hosts = totals(&processes, |p| &p.host, key);
    let apps = totals(&processes, |p| &p.app, key);
    let found = processes.len();
    if let Some(top) = top {
        processes.truncate(top);
    }
    Listing { sort: key, found, processes, hosts, apps }
}

/// Largest first; a total order, so the same figures always give the same rows.
fn largest_first(a: (f64, f64, f64), b: (f64, f64, f64)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)).then(b.2.total_cmp(&a.2))
}

fn sort_tuple(p: &Process, key: SortKey) -> (f64, f64, f64) {
    by_key(key, p.swap_kb, p.rss_kb, p.cpu_percent)
}

/// The figures compared, in order of importance; none for `SortKey::App`.
fn by_key(key: SortKey, swap_kb: u64, rss_kb: u64, cpu: f64) -> (f64, f64, f64) {
    let (swap, rss) = (swap_kb as f64, rss_kb as f64);
    match key {
        SortKey::Swap => (swap, rss, cpu),
        SortKey::Rss => (rss, swap, cpu),
        SortKey::Cpu => (cpu, swap, rss),
        SortKey::App => (0.0, 0.0, 0.0),
    }
}

fn totals(processes: &[Process], name: impl Fn(&Process) -> &String, key: SortKey) -> Vec<Total> {
    let mut by: BTreeMap<&String, Total> = BTreeMap::new();
    for p in processes {
        let t = by.entry(name(p)).or_insert_with(|| Total { name: name(p).clone(), processes: 0, rss_kb: 0, swap_kb: 0, cpu_percent: 0.0 });
        t.processes += 1;
        t.rss_kb = t.rss_kb.saturating_add(p.rss_kb);
        t.swap_kb = t.swap_kb.saturating_add(p.swap_kb);
        t.cpu_percent += p.cpu_percent;
    }
    let mut out: Vec<Total> = by.into_values().collect();
    let tuple = |t: &Total| by_key(key, t.swap_kb, t.rss_kb, t.cpu_percent);
    out.sort_by(|a, b| largest_first(tuple(a), tuple(b)).then_with(|| a.name.cmp(&b.name)));
    out
}

impl Listing {
    /// The process table, then the totals per host and per app.
    pub fn render(&self) -> String {
        let mut processes = Table::new(&["host", "pid", "user", "app", "release", "command", "rss", "swap", "cpu%", "uptime"])
            .right(&["pid", "rss", "swap", "cpu%"]);
        for p in &self.processes {
            let release = match (&p.release, p.orphan) {
                (Some(release), true) => format!("{release} (not current)"),
                (Some(release), false) => release.clone(),
                (None, _) => "-".to_owned(),
            };
            processes.row([
                p.host.clone(),
                p.pid.to_string(),
                p.user.clone(),
                p.app.clone(),
                release,
                p.command.clone(),
                table::kib(p.rss_kb),
                table::kib(p.swap_kb),
                format!("{:.1}", p.cpu_percent),
                table::age(std::time::Duration::from_secs(p.uptime_secs)),
            ]);
        }
        let mut out = processes.render();
        if self.processes.len() < self.found {
            out.push_str(&format!("(the top {} of {} processes; the totals count all)\n", self.processes.len(), self.found));
        }
        for p in self.processes.iter().filter(|p| p.orphan) {
            out.push_str(&format!(
                "{}: pid {} of {} runs from release {}, not the current one: left behind? it may hold what the current release needs (a port)\n",
                p.host,
                p.pid,
                p.app,
                p.release.as_deref().unwrap_or("?")
            ));
        }
        for (title, totals) in [("host", &self.hosts), ("app", &self.apps)] {
            let mut t = Table::new(&[title, "processes", "rss", "swap", "cpu%"]).right(&["processes", "rss", "swap", "cpu%"]);
            for total in totals {
                t.row([
                    total.name.clone(),
                    total.processes.to_string(),
                    table::kib(total.rss_kb),
                    table::kib(total.swap_kb),
                    format!("{:.1}", total.cpu_percent),
                ]);
            }
            out.push('\n');
            out.push_str(&t.render());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on a test machine running the demo (web1 and web2 share it), trimmed:
    /// init, a kernel thread, the two services, and the script with the shell above it.
    const SAMPLE: &str = "self\t28425
clk_tck\t100
uptime\t2102.38
app\thello\thello\t\t/work/kai-demo/.kai/hosts/web1/home/hello
current\thello\treleases/1.2.0
app\tother\tnobody\t65534\t/nonexistent
passwd\t0\troot
passwd\t65534\tnobody
/proc/1/status:Uid:\t0\t0\t0\t0
/proc/1/status:VmRSS:\t   13572 kB
/proc/1/status:VmSwap:\t       0 kB
/proc/1/stat:1 (process_api) S 0 0 0 0 -1 4194560 73567 28736510 0 3997 105 563 52538 10215 20 0 13 0 24 43954176 3319 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0
link\t/proc/1\tcwd\t
link\t/proc/1\texe\t
/proc/2/status:Uid:\t0\t0\t0\t0
/proc/2/stat:2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
link\t/proc/2\tcwd\t/
/proc/3733/status:Uid:\t0\t0\t0\t0
/proc/3733/status:VmRSS:\t    2192 kB
/proc/3733/status:VmSwap:\t      64 kB
/proc/3733/stat:3733 (kai-demo-servic) S 1 3733 3733 0 -1 4194304 204 0 0 0 150 50 0 0 20 0 1 0 192674 72294400 545 18446744073709551615 94004098476544 94004098777920 140729974508880 0 0 0 0 4102 1088 1 0 0 17 0 0 0 0 0 0 94004098798480 94004098800992 94004152692736 140729974516099 140729974516142 140729974516142 140729974517731 0
link\t/proc/3733\tcwd\t/work/kai-demo/.kai/hosts/web1/home/hello/releases/1.2.0
link\t/proc/3733\texe\t/work/kai-demo/.kai/hosts/web1/home/hello/releases/1.2.0/bin/kai-demo-service
/proc/3757/status:Uid:\t0\t0\t0\t0
/proc/3757/status:VmRSS:\t    2284 kB
/proc/3757/status:VmSwap:\t       0 kB
/proc/3757/stat:3757 (kai-demo-servic) S 1 3757 3757 0 -1 4194304 207 0 0 0 0 0 0 0 20 0 1 0 192696 72294400 508 18446744073709551615 94752544078336 94752544379712 140728681721472 0 0 0 0 4102 1088 1 0 0 17 1 0 0 0 0 0 94752544400272 94752544402784 94752736845824 140728681724291 140728681724334 140728681724334 140728681725923 0
link\t/proc/3757\tcwd\t/work/kai-demo/.kai/hosts/web2/home/hello/releases/1.2.0
link\t/proc/3757\texe\t/work/kai-demo/.kai/hosts/web2/home/hello/releases/1.2.0/bin/kai-demo-service
/proc/28421/status:Uid:\t0\t0\t0\t0
/proc/28421/status:VmRSS:\t    1996 kB
/proc/28421/status:VmSwap:\t       0 kB
/proc/28421/stat:28421 (bash) S 28420 28421 30911 0 -1 4194368 230 317 0 0 0 0 0 0 20 0 1 0 210238 4730880 496 18446744073709551615 94791700078592 94791700867997 140726234865232 0 0 0 65536 0 81922 1 0 0 17 1 0 0 0 0 0 94791701101296 94791701149540 94792358191104 140726234872698 140726234872713 140726234872713 140726234873834 0
link\t/proc/28421\tcwd\t/work/kai-demo/.kai/hosts/web1/home/hello
link\t/proc/28421\texe\t/usr/bin/bash
/proc/28425/status:Uid:\t0\t0\t0\t0
/proc/28425/status:VmRSS:\t    1740 kB
/proc/28425/status:VmSwap:\t       0 kB
/proc/28425/stat:28425 (sh) S 28421 28421 30911 0 -1 4194304 179 814 0 3 0 0 0 0 20 0 1 0 210238 2654208 434 18446744073709551615 93950734299136 93950734375865 140734327066320 0 0 0 0 0 65538 1 0 0 17 1 0 0 0 0 0 93950734405168 93950734410304 93951526612992 140734327073169 140734327073277 140734327073277 140734327074796 0
link\t/proc/28425\tcwd\t/work/kai-demo/.kai/hosts/web1/home/hello
link\t/proc/28425\texe\t/usr/bin/dash
";

    #[test]
    fn finds_the_service_in_the_app_home_with_its_memory_swap_cpu_and_age() {
        let found = parse_ps("web1", SAMPLE);
        assert_eq!(
            found,
            [Process {
                host: "web1".into(),
                pid: 3733,
                user: "root".into(),
                app: "hello".into(),
                command: "kai-demo-servic".into(),
                rss_kb: 2192,
                swap_kb: 64,
                // 200 ticks of CPU over 2102.38 - 1926.74 = 175.64 s of life.
                cpu_percent: 1.1,
                uptime_secs: 175,
                matched_by: MatchedBy::Cwd,
                release: Some("1.2.0".into()),
                orphan: false,
            }]
        );
    }

    #[test]
    fn a_process_of_the_current_release_is_no_orphan_and_one_of_a_removed_folder_is() {
        let sample = "app\thello\thello\t\t/srv/hello\ncurrent\thello\treleases/1.2.0\n\
                      /proc/5/status:Uid:\t0\n/proc/5/stat:5 (java) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      link\t/proc/5\tcwd\t/srv/hello/releases/1.2.0\n\
                      /proc/6/status:Uid:\t0\n/proc/6/stat:6 (java) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      link\t/proc/6\tcwd\t/srv/hello/releases/1.2.0 (deleted)\n\
                      /proc/7/status:Uid:\t0\n/proc/7/stat:7 (sh) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      link\t/proc/7\tcwd\t/srv/hello\n";
        let found: Vec<(u32, Option<String>, bool)> = parse_ps("h", sample).into_iter().map(|p| (p.pid, p.release, p.orphan)).collect();
        assert_eq!(found, [(5, Some("1.2.0".into()), false), (6, Some("1.2.0".into()), true), (7, None, false)]);
    }

    #[test]
    fn leaves_out_the_script_and_the_shell_that_started_it() {
        let pids: Vec<u32> = parse_ps("web1", SAMPLE).iter().map(|p| p.pid).collect();
        assert!(!pids.contains(&28425) && !pids.contains(&28421), "{pids:?}");
    }

    #[test]
    fn a_process_of_the_apps_user_is_the_apps_even_elsewhere_but_root_is_nobodys() {
        let sample = "app\tjms\tjms\t1001\t/srv/jms\napp\tweb\tweb\t1002\t/srv/web\napp\tweb2\tweb\t1002\t/srv/web2\n\
                      /proc/10/status:Uid:\t1001\t1001\t1001\t1001\n/proc/10/stat:10 (java) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      /proc/11/status:Uid:\t0\t0\t0\t0\n/proc/11/stat:11 (cron) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      /proc/12/status:Uid:\t1002\t1002\t1002\t1002\n/proc/12/stat:12 (x) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      /proc/13/status:Uid:\t0\t0\t0\t0\n/proc/13/stat:13 (x (y)) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      link\t/proc/13\texe\t/srv/web2/bin/x\n";
        let found: Vec<(u32, String, String, MatchedBy)> =
            parse_ps("h", sample).into_iter().map(|p| (p.pid, p.user, p.app, p.matched_by)).collect();
        assert_eq!(
            found,
            [
                (10, "1001".into(), "jms".into(), MatchedBy::User),
                (12, "1002".into(), "web|web2".into(), MatchedBy::User),
                (13, "0".into(), "web2".into(), MatchedBy::Exe),
            ]
        );
    }

    #[test]
    fn a_home_is_matched_by_whole_folder_names() {
        let sample = "app\ta\ta\t\t/srv/web1\n/proc/5/status:Uid:\t0\n/proc/5/stat:5 (x) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n\
                      link\t/proc/5\tcwd\t/srv/web10/releases/1.0\n";
        assert_eq!(parse_ps("h", sample), []);
    }

    fn process(host: &str, pid: u32, app: &str, rss_kb: u64, swap_kb: u64, cpu_percent: f64) -> Process {
        Process {
            host: host.into(),
            pid,
            user: "u".into(),
            app: app.into(),
            command: "java".into(),
            rss_kb,
            swap_kb,
            cpu_percent,
            uptime_secs: 3600,
            matched_by: MatchedBy::User,
            release: None,
            orphan: false,
        }
    }

    #[test]
    fn sorts_by_swap_and_totals_every_process_even_beyond_the_top() {
        let all = vec![
            process("web1", 1, "jms", 524_288, 0, 1.0),
            process("web1", 2, "hello", 102_400, 20_480, 0.5),
            process("web2", 3, "jms", 409_600, 92_160, 3.0),
        ];
        let report = report(all, SortKey::Swap, Some(2));
        assert_eq!(report.processes.iter().map(|p| p.pid).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(report.found, 3);
        let apps: Vec<(&str, usize, u64)> = report.apps.iter().map(|t| (t.name.as_str(), t.processes, t.swap_kb)).collect();
        assert_eq!(apps, [("jms", 2, 92_160), ("hello", 1, 20_480)]);
        assert_eq!(
            report.render(),
            "host  pid  user  app    release  command   rss   swap  cpu%  uptime
web2    3  u     jms    -        java     400M  90.0M   3.0  1h 00m
web1    2  u     hello  -        java     100M  20.0M   0.5  1h 00m
(the top 2 of 3 processes; the totals count all)

host  processes   rss   swap  cpu%
web2          1  400M  90.0M   3.0
web1          2  612M  20.0M   1.5

app    processes   rss   swap  cpu%
jms            2  912M  90.0M   4.0
hello          1  100M  20.0M   0.5
"
        );
    }

    #[test]
    fn by_app_the_order_does_not_follow_the_figures() {
        let first =
            vec![process("web2", 9, "jms", 1, 0, 0.0), process("web1", 7, "jms", 5, 0, 0.0), process("web1", 3, "hello", 9, 9, 9.0)];
        let mut second = first.clone();
        second.reverse();
        second[0].rss_kb = 100;
        for run in [first, second] {
            let rows: Vec<(String, String)> = report(run, SortKey::App, None).processes.into_iter().map(|p| (p.app, p.host)).collect();
            let expected = [("hello", "web1"), ("jms", "web1"), ("jms", "web2")];
            assert_eq!(rows, expected.map(|(a, h)| (a.to_owned(), h.to_owned())));
        }
    }

    #[test]
    fn equal_figures_keep_one_order_whatever_came_first() {
        let a = process("web1", 40, "jms", 100, 0, f64::NAN);
        let b = process("web1", 20, "hello", 100, 0, 0.0);
        let one = report(vec![a.clone(), b.clone()], SortKey::Swap, None);
        let two = report(vec![b, a], SortKey::Swap, None);
        let pids = |r: &Listing| r.processes.iter().map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(pids(&one), pids(&two));
    }
}
