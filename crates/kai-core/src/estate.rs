//! Reading many apps of one host in one script: what `kai status`, `kai serve`,
//! `kai history`, `kai plan` and the other reading commands ask a host.
//!
//! One script per host (and login) carries every app placed there: for each, whether
//! its home exists and can be entered, the facts of [`crate::facts`] (the same
//! `kai_probe`), and when asked the newest part of its history; the command health
//! checks of the apps it carries run first, side by side on the host ([`AT_ONCE`] at a
//! time), each within its deadline. An app whose user is not the login is read
//! through `sudo -n -u <user> -- sh -s` inside the same script.
//!
//! Nothing here creates a file or a folder: a home that does not exist is "not
//! installed". The text is built here and parsed here, a pure function of what the
//! host printed ([`parse`]), with the run's random token marking each app's part so no
//! file's content can pass for another app's.

use std::time::Duration;

use crate::facts::{parse_probe, HostFacts};
use crate::shell::command::quote;
use crate::shell::helpers::HELPERS;
use crate::shell::session::Access;

/// Command health checks run on a host at once.
pub const AT_ONCE: usize = 8;

/// One app of the host, as the read asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The app home and the account that reads it (`home` must be set).
    pub access: Access,
    /// The app's properties file, relative to its release.
    pub properties_file: Option<String>,
    /// The newest this many bytes of `.kai/history.jsonl`, when the history is wanted.
    pub history: Option<u64>,
    /// The app's command health check (run in `current`) and its deadline, when its
    /// health is wanted from this host.
    pub health: Option<(Vec<String>, Duration)>,
}

/// The functions of the read, after kai's [`HELPERS`]: `kai_read TOKEN HOME PROPERTIES
/// CAP` prints one app's part (`kai_probe` without its `df`: the free space of every
/// home is asked of one `df` at the end), `kai_check N HOME SECONDS ARGV…` one health
/// line.
const READ_HELPERS: &str = r#"kai_read() {
  if ! cd -P -- "$2" 2>/dev/null; then
    if [ -d "$2" ]; then w='permission denied'
    elif [ -e "$2" ] || [ -L "$2" ]; then w='not a folder'
    else
      w=$(LC_ALL=C ls -d -- "$2" 2>&1)
      case $w in *"No such file or directory"*) printf 'home\tmissing\n'; return 0;; esac
      w=${w##*: }
    fi
    printf 'home\tunreadable\t%s\n' "$w"
    return 0
  fi
  printf 'home\there\t%s\n' "$PWD"
  kai_here=$PWD kai_nodf=1 kai_probe "$3"
  if [ -n "$4" ]; then printf '\n%s history\n' "$1"; sh -c "$kai_hr" kai-history "$4"; fi
  return 0
}
kai_check() {
  n=$1 h=$2 s=$3; shift 3
  cd -- "$h/current" 2>/dev/null || return 0
  if command -v timeout >/dev/null 2>&1; then timeout -k 1 "$s" "$@"; else "$@"; fi >/dev/null 2>&1 </dev/null
  printf 'health\t%s\t%s\n' "$n" "$?"
}"#;

/// The script that reads `entries` on one host (fed to `sh -s` as the login); `token`
/// is the run's ([`crate::shell::session`]'s kind: letters, digits and `-`).
pub fn script(entries: &[Entry], token: &str) -> String {
    debug_assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{token}");
    let functions = format!("{HELPERS}\n{READ_HELPERS}\nkai_hr={}\n", quote(crate::history::READ_SCRIPT));
    let mut script = functions.clone();
    if entries.iter().any(|e| e.access.sudo.is_some()) {
        // What a `sudo -n -u <user> -- sh -s` reads before its own line: the same functions.
        script.push_str(&format!("kai_h={}\n", quote(&functions)));
    }
    // As the app's user: its script on standard input (sudo logs `sh -s`, not the
    // script); what it printed, or not, says what happened.
    let as_user = |entry: &Entry, line: String| match &entry.access.sudo {
        Some(user) => format!("printf '%s\\n' \"$kai_h\" {} | sudo -n -u {} -- sh -s 2>/dev/null", quote(&line), quote(user)),
        None => format!("{line} </dev/null 2>/dev/null"),
    };
    let checks: Vec<String> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let (argv, deadline) = entry.health.as_ref()?;
            let home = entry.access.home_word()?;
            let words: Vec<String> = argv.iter().map(|w| quote(w)).collect();
            let line = format!("kai_check {i} {home} {} {}", seconds(*deadline), words.join(" "));
            Some(format!("{} &", as_user(entry, line)))
        })
        .collect();
    if !checks.is_empty() {
        script.push_str("kai_c=$( (\n");
        for (n, check) in checks.iter().enumerate() {
            script.push_str(check);
            script.push('\n');
            if (n + 1) % AT_ONCE == 0 {
                script.push_str("wait\n");
            }
        }
        script.push_str("wait ) 2>/dev/null )\n");
    }
    if entries.iter().any(|e| e.access.sudo.is_none()) {
        // The processes of the host, listed once for every app read as the login.
        script.push_str("kai_pl=$(kai_scan)\n");
    }
    let mut homes: Vec<String> = entries.iter().filter_map(|e| e.access.home_word()).collect();
    homes.sort();
    homes.dedup();
    for (i, entry) in entries.iter().enumerate() {
        let Some(home) = entry.access.home_word() else { continue };
        script.push_str(&format!("printf '\\n%s app %d\\n' {token} {i}\n"));
        let cap = entry.history.map(|c| c.to_string()).unwrap_or_default();
        let properties = entry.properties_file.as_deref().unwrap_or("");
        let line = format!("kai_read {token} {home} {} {}", quote(properties), quote(&cap));
        script.push_str(&format!("{} || printf 'refused\\t%s\\n' \"$?\"\n", as_user(entry, line)));
    }
    if !checks.is_empty() {
        script.push_str(&format!("printf '\\n%s health\\n%s\\n' {token} \"$kai_c\"\n"));
    }
    if !homes.is_empty() {
        // One `df` for every home (a home that is not there is left out by `df`).
        script.push_str(&format!("printf '\\n%s df\\n' {token}\ndf -Pk -- {} 2>/dev/null\n", homes.join(" ")));
    }
    script.push_str(&format!("printf '\\n%s end\\n' {token}\n"));
    script
}

/// The mount points `df -Pk` listed, with the KiB available on each.
fn mounts(df: &str) -> Vec<(String, u64)> {
    df.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let available = fields.get(3)?.parse::<u64>().ok()?;
            let mount = fields.get(5..).filter(|m| !m.is_empty())?.join(" ");
            mount.starts_with('/').then_some((mount, available))
        })
        .collect()
}

/// The free bytes where `path` lies: on the longest mount point that holds it.
fn free_at(mounts: &[(String, u64)], path: &str) -> Option<u64> {
    let holds = |mount: &str| mount == "/" || path == mount || path.strip_prefix(mount).is_some_and(|rest| rest.starts_with('/'));
    let (_, kb) = mounts.iter().filter(|(m, _)| holds(m)).max_by_key(|(m, _)| m.len())?;
    kb.checked_mul(1024)
}

/// A deadline as `timeout` takes it: seconds, to the millisecond.
fn seconds(deadline: Duration) -> String {
    format!("{}.{:03}", deadline.as_secs(), deadline.subsec_millis())
}

/// What the host said about one app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub home: Home,
    /// The history text, as [`crate::history::read_text`] takes it (when it was asked
    /// for and the home is there).
    pub history: Option<String>,
    /// The command health check's verdict (when one ran: asked for, and `current` there).
    pub healthy: Option<bool>,
}

/// Whether the app home could be read, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Home {
    Here(Box<HostFacts>),
    /// No home: the app is not installed on this host.
    Missing,
    /// The home cannot be entered by the account kai reads it as (it is not a folder, its
    /// permissions, a path through a file): why, as the host said it (printable).
    Unreadable(String),
    /// The host said nothing about this app: why (sudo refused, the answer cut short).
    Unread(String),
}

impl Reading {
    /// The facts, as one app's probe gives them: a missing home is an app not
    /// installed (no facts), one that cannot be read an error naming why.
    pub fn facts(&self, home: &str) -> Result<HostFacts, String> {
        match &self.home {
            Home::Here(facts) => Ok((**facts).clone()),
            Home::Missing => Ok(HostFacts::default()),
            Home::Unreadable(why) => Err(format!("the app home {home} cannot be entered: {why}")),
            Home::Unread(why) => Err(why.clone()),
        }
    }
}

/// Parses what [`script`] printed for `entries`: one reading per entry, in order.
pub fn parse(output: &str, token: &str, entries: &[Entry]) -> Vec<Reading> {
    let mut parts: Vec<Option<String>> = vec![None; entries.len()];
    let mut histories: Vec<Option<String>> = vec![None; entries.len()];
    let mut health: Vec<Option<bool>> = vec![None; entries.len()];
    let mut ended = false;
    let mut df = String::new();
    // Each marker line comes after a newline of its own (so text without a final newline
    // cannot hide one); that newline belongs to the marker, not to the part before it.
    let marker = format!("\n{token} ");
    let mut sections = output.split(marker.as_str()).skip(1).peekable();
    while let Some(section) = sections.next() {
        let (head, body) = section.split_once('\n').unwrap_or((section, ""));
        let mut words = head.split(' ');
        match (words.next(), words.next()) {
            (Some("app"), Some(n)) => {
                let Some(i) = n.parse::<usize>().ok().filter(|i| *i < entries.len()) else { continue };
                parts[i] = Some(body.to_owned());
                // The history, when there is one, is the next section.
                if sections.peek().is_some_and(|s| s.starts_with("history\n") || *s == "history") {
                    let history = sections.next().unwrap_or_default();
                    histories[i] = Some(history.split_once('\n').map_or("", |(_, h)| h).to_owned());
                }
            }
            (Some("health"), None) => {
                for line in body.lines() {
                    let mut fields = line.split('\t');
                    if let (Some("health"), Some(n), Some(code)) = (fields.next(), fields.next(), fields.next()) {
                        if let (Ok(i), Ok(code)) = (n.parse::<usize>(), code.trim().parse::<i32>()) {
                            if i < entries.len() && entries[i].health.is_some() {
                                health[i] = Some(code == 0);
                            }
                        }
                    }
                }
            }
            (Some("df"), None) => df = body.to_owned(),
            (Some("end"), None) => ended = true,
            _ => {}
        }
    }
    let mounts = mounts(&df);
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let mut home = match parts[i].as_deref() {
                None if ended => Home::Unread("the host's answer has no part for this app".into()),
                None => Home::Unread("the host's answer ended before this app".into()),
                Some(part) => home_of(part, entry),
            };
            if let (Home::Here(facts), Some(path)) = (&mut home, parts[i].as_deref().and_then(real_path)) {
                facts.free_bytes = facts.free_bytes.or_else(|| free_at(&mounts, path));
            }
            let here = matches!(home, Home::Here(_));
            Reading { history: histories[i].take().filter(|_| here && entry.history.is_some()), healthy: health[i].filter(|_| here), home }
        })
        .collect()
}

/// The home's real path, as its part's first line gives it.
fn real_path(part: &str) -> Option<&str> {
    part.lines().next()?.strip_prefix("home\there\t").filter(|p| p.starts_with('/'))
}

fn home_of(part: &str, entry: &Entry) -> Home {
    let (first, rest) = part.split_once('\n').unwrap_or((part, ""));
    match first.strip_prefix("home\t") {
        Some(here) if here == "here" || here.starts_with("here\t") => Home::Here(Box::new(parse_probe(rest))),
        Some("missing") => Home::Missing,
        Some(unreadable) if unreadable.starts_with("unreadable") => {
            let why = unreadable.strip_prefix("unreadable\t").unwrap_or("").trim();
            let why = if why.is_empty() { "the host did not say why" } else { why };
            Home::Unreadable(crate::table::printable(&crate::table::cut(why, 200)))
        }
        _ => {
            let said = part.lines().find_map(|l| l.strip_prefix("refused\t")).map(str::trim);
            Home::Unread(match (&entry.access.sudo, said) {
                (Some(user), Some(code)) => format!("sudo -n -u {user} was refused (exit status {code})"),
                (None, Some(code)) => format!("the read of the app home failed (exit status {code})"),
                _ => "the host printed nothing for this app".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(home: &str) -> Entry {
        Entry { access: Access { home: Some(home.into()), sudo: None }, properties_file: None, history: None, health: None }
    }

    #[test]
    fn each_app_gets_its_own_part_and_the_history_and_health_go_to_the_right_one() {
        let mut b = entry("/srv/b");
        b.history = Some(1024);
        b.health = Some((vec!["bin/ok".into()], Duration::from_secs(2)));
        let entries = [entry("/srv/a"), b, entry("/srv/c")];
        let out = "greeting\n\nT app 0\nhome\there\ncurrent\treleases/1.0\n\nT app 1\nhome\there\ncurrent\treleases/2.0\nlock\t{}\n\nT history\n{\"a\":1}\n{\"b\"\n\nT app 2\nhome\tmissing\n\nT health\nhealth\t1\t0\nhealth\t0\t0\n\nT end\n";
        let read = parse(out, "T", &entries);
        assert_eq!(read.len(), 3);
        let Home::Here(a) = &read[0].home else { panic!("{:?}", read[0]) };
        assert_eq!(a.current.as_deref(), Some("1.0"));
        assert_eq!(read[0].healthy, None, "a check that was not asked for is not taken");
        let Home::Here(b) = &read[1].home else { panic!("{:?}", read[1]) };
        assert_eq!(b.current.as_deref(), Some("2.0"));
        assert!(b.lock.is_some(), "a lock whose owner cannot be read is still a lock");
        assert_eq!(read[1].history.as_deref(), Some("{\"a\":1}\n{\"b\"\n"));
        assert_eq!(read[1].healthy, Some(true));
        assert_eq!(read[2].home, Home::Missing);
        assert_eq!(read[2].facts("/srv/c"), Ok(HostFacts::default()));
    }

    #[test]
    fn a_part_cut_short_or_refused_is_unread_never_empty() {
        let mut sudo = entry("/srv/b");
        sudo.access.sudo = Some("bee".into());
        let entries = [entry("/srv/a"), sudo, entry("/srv/c")];
        let read = parse("\nT app 0\nhome\tunreadable\tpermission \x1b[2Jdenied\n\nT app 1\nrefused\t1\n", "T", &entries);
        assert_eq!(read[0].facts("/srv/a").unwrap_err(), "the app home /srv/a cannot be entered: permission \\u{1b}[2Jdenied");
        assert_eq!(read[1].home, Home::Unread("sudo -n -u bee was refused (exit status 1)".into()));
        assert!(matches!(&read[2].home, Home::Unread(why) if why.contains("ended before")), "{:?}", read[2]);
    }

    #[test]
    fn a_file_cannot_pass_for_another_apps_part_without_the_token() {
        let entries = [entry("/srv/a"), entry("/srv/b")];
        let out = "\nT app 0\nhome\there\nproperty\tx=1\nT app 1\n\nT app 1\nhome\tmissing\n\nT end\n";
        let read = parse(out, "T", &entries);
        assert!(matches!(&read[0].home, Home::Here(_)), "{:?}", read[0]);
        assert_eq!(read[1].home, Home::Missing);
    }

    #[test]
    fn the_script_reads_as_the_user_through_sudo_and_never_creates_a_home() {
        let mut b = entry("~bee");
        b.access.sudo = Some("bee".into());
        b.health = Some((vec!["bin/status.sh".into(), "it's".into()], Duration::from_millis(1500)));
        let text = script(&[entry("/srv/my app"), b], "T");
        assert!(text.contains("\nkai_read T '/srv/my app' '' '' </dev/null"), "{text}");
        assert!(text.contains(r#"printf '%s\n' "$kai_h" 'kai_read T ~bee '\'''\'' '\'''\''' | sudo -n -u bee -- sh -s"#), "{text}");
        assert!(text.contains("kai_check 1 ~bee 1.500 bin/status.sh"), "{text}");
        let body = &text[text.find("kai_c=$(").unwrap()..];
        for reading in [READ_HELPERS, body] {
            assert!(!reading.contains("mkdir") && !reading.contains("kai_enter"), "{reading}");
        }
    }

    #[test]
    fn the_free_space_of_a_home_is_that_of_the_longest_mount_point_holding_it() {
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 50 40 50% /\n\
                  /dev/sdb1 100 10 90 10% /srv\nsrv2 100 10 7 10% /srv/my data\nbad line\n";
        let m = mounts(df);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(free_at(&m, "/srv/a"), Some(90 * 1024));
        assert_eq!(free_at(&m, "/srv"), Some(90 * 1024));
        assert_eq!(free_at(&m, "/srvx/a"), Some(40 * 1024), "a mount point is a whole folder name");
        assert_eq!(free_at(&m, "/srv/my data/x"), Some(7 * 1024));
        let entries = [entry("/srv/a"), entry("/srv/b")];
        let out = format!("\nT app 0\nhome\there\t/srv/a\n\nT app 1\nhome\there\t/srvx/b\nfree_kb\t3\n\nT df\n{df}\nT end\n");
        let read = parse(&out, "T", &entries);
        let free = |i: usize| match &read[i].home {
            Home::Here(f) => f.free_bytes,
            other => panic!("{other:?}"),
        };
        assert_eq!((free(0), free(1)), (Some(90 * 1024), Some(3 * 1024)), "the probe's own figure first");
    }

    #[test]
    fn seconds_keep_the_milliseconds() {
        assert_eq!(seconds(Duration::from_millis(2500)), "2.500");
        assert_eq!(seconds(Duration::from_secs(60)), "60.000");
    }
}
