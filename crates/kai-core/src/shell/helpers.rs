//! The small shell programs kai runs on hosts, each a constant script taking its
//! values as positional parameters (never spliced in), and the commands that run
//! them. The plan prints these commands and the transports send them, word for word.

use std::time::Duration;

use crate::checksum::Checksum;
use crate::shell::command::{Command, Input};

/// kai's helpers: shell functions defined at the top of every script kai sends (see
/// [`crate::shell::session`]), so the commands of a plan read `kai_write FILE`, and run
/// without forking a shell of their own. Values come as arguments, never spliced in.
///
/// - `kai_enter DIR`: into the app home (made when missing), or the script ends.
/// - `kai_text`: standard input (text) to standard output with shell builtins only:
///   kai's own records and files are small, and a program start costs more than them.
/// - `kai_mkdir DIR…`: `mkdir -p` of them, run only when one is missing.
/// - `kai_write FILE` / `kai_append FILE`: standard input to FILE (a temporary name,
///   then rename) / at its end; its folder made when missing. `kai_put FILE`: straight
///   to FILE, for a file in a staging folder nobody reads until it is renamed whole.
///   A file kai writes (the properties, which may hold secrets, and its own records)
///   is readable by its owner only (0600: the app's user).
/// - `kai_receive FILE TOOL SUM`: an upload on standard input into `FILE.part`,
///   checked against SUM with TOOL, and only then named FILE: a cut upload never looks
///   complete; a failure removes what arrived.
/// - `kai_download FILE TOOL SUM CURL…`: the same for a download by the host.
/// - `kai_lock`: takes the deploy lock: a folder holding the owner (standard input) is
///   made aside, then renamed to `.kai/lock` (atomic, and refused when a lock is there),
///   so a lock never exists without its owner. Exit 3 when someone else holds it (their
///   owner on standard output); 4 when it could not be taken.
/// - `kai_contained DIR`: every path below DIR, resolved as the kernel resolves it
///   (links followed, `readlink -m` of the names `find` passes as arguments, so no
///   name can hide a newline or a tab), must stay below DIR; exit 3 names one that does
///   not (a resolved name holding a newline is refused too: its second line is not
///   below DIR).
/// - `kai_procs [PREFIX]`: the processes working in or running from a release of this app home
///   (their current folder or executable inside `releases/<name>`, as `/proc` tells;
///   only the login's own processes unless it is root), one `PID<TAB>RELEASE` a line
///   (a release removed under a process reads `<name> (deleted)`), each after `PREFIX<TAB>`
///   when one is given. `/proc` is listed once per shell (`kai_scan`, kept in `kai_pl`:
///   a command's frame is a shell of its own, so no command sees another's list), and
///   only links into some `releases/` folder are kept; `kai_here`, when set, is the
///   home's real path (no `pwd -P` then).
/// - `kai_busy RELEASE`: the pids running from that release, and status 0; 1 for none.
/// - `kai_prune RELEASE…`: removes each release with its records, unless a process
///   runs from it: then it is kept, and a `kept releases/<name>: pid …` line says so.
/// - `kai_replace RELEASE`: removes a release about to be staged again (it differs
///   from the artifact), or refuses (status 1) while a process runs from it.
/// - `kai_unstage RELEASE`: `kai_prune` of a release a deploy staged and put back,
///   unless `current` points to it.
/// - `kai_who`: why a start may have failed: each process running from a release of
///   the home, which release (current or not) and the TCP addresses it listens on, as
///   `kai: pid N runs from …` lines ([`crate::facts::parse_who`] reads them).
/// - `kai_started RECORD`: a deploy's "started" line in the history, and in the lock.
/// - `kai_run LOG LIMIT SCRIPT…`: one of the app's scripts in `current`, for at most
///   LIMIT seconds (then TERM, then KILL, to its whole process group), its output
///   appended to LOG rather than to kai: a child holding it cannot hold kai. On failure
///   the last lines this script wrote (from its own `== kai:` line on) go to standard
///   error, then what `kai_who` says. LOG is kept under 1 MiB: past it, its last
///   256 KiB are kept.
///   `kai_run_for RELEASE LOG LIMIT SCRIPT…`: the same, only when `current` points to
///   RELEASE (an undo stops whichever release a failure left current, each with its
///   own script).
/// - `kai_probe PROPERTIES`: the facts of the app home, one per line (see
///   [`crate::facts`]); one `find` reads `current`, the releases and the sizes of kai's
///   records and of the properties file (the other folders of the home are not
///   entered); the rest is read by the shell itself. A host's files are read with a bound: a
///   record of kai's (a checksum, a build, the lock's files) larger than 16 KiB, or a
///   properties file larger than 1 MiB, is not read; an `oversized` line names it
///   (`kai_small FILE` tells, from the one `find` that lists them).
pub const HELPERS: &str = r#"kai_enter() { [ -d "$1" ] || mkdir -p -- "$1" || exit 1; cd -- "$1" || exit 1; }
kai_dir() { case $1 in */*) [ -d "${1%/*}" ] || mkdir -p -- "${1%/*}";; esac; }
kai_text() { l=; while IFS= read -r l; do printf '%s\n' "$l"; done; [ -z "$l" ] || printf '%s' "$l"; }
kai_mkdir() { for d; do [ -d "$d" ] || { mkdir -p -- "$@"; return; }; done; }
kai_write() { kai_dir "$1" && (umask 077 && kai_text > "$1.kai-part") && mv -f -- "$1.kai-part" "$1"; }
kai_put() { kai_dir "$1" && (umask 077 && kai_text > "$1"); }
kai_append() { kai_dir "$1" && kai_text >> "$1"; }
kai_receive() { if cat > "$1.part" && printf '%s  %s\n' "$3" "$1.part" | "$2" --check --strict --quiet; then mv -f -- "$1.part" "$1"; else rc=$?; rm -f -- "$1.part"; return "$rc"; fi; }
kai_download() { d=$1 tool=$2 sum=$3; shift 3; if "$@" && printf '%s  %s\n' "$sum" "$d.part" | "$tool" --check --strict --quiet; then mv -f -- "$d.part" "$d"; else rc=$?; rm -f -- "$d.part"; return "$rc"; fi; }
kai_lock() {
  [ -d .kai ] || mkdir -p .kai || return 4
  t=.kai/.lock-$$; [ ! -e "$t" ] || rm -rf "$t"
  if ! { mkdir "$t" && kai_text > "$t/owner"; }; then rm -rf "$t"; return 4; fi
  if mv -T "$t" .kai/lock 2>/dev/null; then return 0; fi
  rm -rf "$t"
  if [ -d .kai/lock ]; then owner=; { IFS= read -r owner < .kai/lock/owner; } 2>/dev/null; printf '%s\n' "$owner"; return 3; fi
  return 4
}
kai_contained() {
  base=$(cd -P -- "$1" && pwd) || return 1
  find "$1" -mindepth 1 -exec readlink -m -- {} + | while IFS= read -r p; do
    case $p in "$base"/*) ;; *) printf 'kai: a path in the release resolves to %s, outside it (links are followed as the kernel does)\n' "$p" >&2; exit 3;; esac
  done
}
kai_scan() { find /proc/[0-9]*/cwd /proc/[0-9]*/exe -maxdepth 0 -lname '*/releases/*' -printf '%h\t%l\n' 2>/dev/null; }
kai_procs() {
  h=${kai_here:-$(pwd -P)}
  [ -n "${kai_pl+x}" ] || kai_pl=$(kai_scan)
  o=$IFS IFS='
'
  set -f
  for e in $kai_pl; do
    l=${e#*	} p=${e%%	*}
    case $l in "$h"/releases/*) r=${l#"$h"/releases/}; printf '%s%s\t%s\n' "${1:+$1	}" "${p#/proc/}" "${r%%/*}";; esac
  done
  set +f
  IFS=$o
}
kai_busy() { t=$(printf '\t'); kai_procs | { b=; while IFS=$t read -r p r; do [ "$r" = "$1" ] && b="$b $p"; done; [ -n "$b" ] && printf '%s\n' "${b# }"; }; }
kai_prune() { for r; do if b=$(kai_busy "$r"); then printf 'kept releases/%s: pid %s runs from it\n' "$r" "$b"; else rm -rf -- "releases/$r" ".kai/checksums/$r" ".kai/builds/$r"; fi; done; }
kai_replace() {
  if b=$(kai_busy "$1"); then printf 'kai: releases/%s differs from the artifact but pid %s runs from it: it is not replaced while it runs\n' "$1" "$b" >&2; return 1; fi
  rm -f -- ".kai/checksums/$1" && rm -rf -- "releases/$1"
}
kai_small() { case "
$big
" in *"
$1
"*) printf 'oversized\t%s\n' "$1"; return 1;; esac; }
kai_unstage() { [ "$(readlink current 2>/dev/null)" = "releases/$1" ] || kai_prune "$1"; }
kai_who() {
  c=$(readlink current 2>/dev/null) t=$(printf '\t')
  kai_procs | sort -u -k1,1 | while IFS=$t read -r p r; do
    s=$(find "/proc/$p/fd" -lname 'socket:*' -printf '%l ' 2>/dev/null)
    l=$(awk -v want=" $s" 'function hex(x,  i, v) { v = 0; for (i = 1; i <= length(x); i++) v = v * 16 + index("0123456789ABCDEF", toupper(substr(x, i, 1))) - 1; return v }
      FNR > 1 && $4 == "0A" && index(want, " socket:[" $10 "] ") { split($2, a, ":"); h = a[1]
        if (length(h) == 8) h = hex(substr(h, 7, 2)) "." hex(substr(h, 5, 2)) "." hex(substr(h, 3, 2)) "." hex(substr(h, 1, 2)); else if (h ~ /^0+$/) h = "[::]"; else h = "[" h "]"
        printf "%s%s:%d", sep, h, hex(a[2]); sep = " " }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    if [ "releases/$r" = "$c" ]; then w="the current release"; else w="release $r, not the current one"; fi
    printf 'kai: pid %s runs from %s%s\n' "$p" "$w" "${l:+, listening on $l}"
  done
}
kai_started() { printf '%s\n' "$1" >> .kai/history.jsonl && printf '%s\n' "$1" > .kai/lock/started; }
kai_run() {
  home=$PWD log=$PWD/$1 limit=$2; shift 2; cd current || return
  if [ -n "$(find "$log" -size +1024k 2>/dev/null)" ]; then tail -c 262144 -- "$log" > "$log.kai-part" && mv -f -- "$log.kai-part" "$log"; fi
  printf '== kai: %s\n' "$*" >> "$log"
  timeout -k 5 "$limit" "$@" >> "$log" 2>&1 < /dev/null; rc=$?
  [ "$rc" -eq 0 ] && return 0
  [ "$rc" -eq 124 ] && printf 'kai: %s did not finish within %s s and was stopped\n' "$1" "$limit" >&2
  awk '/^== kai: /{n=0} {l[n++]=$0} END{for(i=(n>20?n-20:0);i<n;i++) print l[i]}' "$log" >&2; cd "$home" && kai_who >&2; return "$rc"
}
kai_run_for() { [ "$(readlink current 2>/dev/null)" = "releases/$1" ] || return 0; shift; kai_run "$@"; }
kai_probe() {
  found=$(find . ${1:+"current/$1"} -maxdepth 3 \( -path ./current -type l -printf 'current\t%l\n' \) \
    -o \( -path './releases/*' -prune -printf 'release\t%f\t%T@\n' \) \
    -o \( -path 'current/*' -type f -size +1024k -printf 'big\t%p\n' \) \
    -o \( \( -path './.kai/checksums/*' -o -path './.kai/builds/*' -o -path './.kai/lock/*' \) -prune -type f -size +16k -printf 'big\t%P\n' \) \
    -o \( -path . -o -path ./releases -o -path ./.kai -o -path ./.kai/checksums -o -path ./.kai/builds -o -path ./.kai/lock \) \
    -o -prune 2>/dev/null)
  big= o=$IFS IFS='
'
  set -f
  for e in $found; do case $e in "big	"*) big="$big
${e#big	}";; *) printf '%s\n' "$e";; esac; done
  set +f
  IFS=$o
  if [ -e disabled ]; then printf 'disabled\n'; fi
  for f in .kai/checksums/*; do if [ -f "$f" ] && kai_small "$f"; then sum= settings= runs=; { IFS= read -r sum; IFS= read -r settings; IFS= read -r runs; } < "$f"; printf 'checksum\t%s\t%s\t%s\t%s\n' "${f##*/}" "$sum" "$settings" "$runs"; fi; done
  for f in .kai/builds/*; do if [ -f "$f" ] && kai_small "$f"; then build=; IFS= read -r build < "$f"; printf 'build\t%s\t%s\n' "${f##*/}" "$build"; fi; done
  if [ -d .kai/lock ]; then
    owner=; if kai_small .kai/lock/owner; then { IFS= read -r owner < .kai/lock/owner; } 2>/dev/null; fi; printf 'lock\t%s\n' "$owner"
    for f in started abandoned kept; do if [ -f ".kai/lock/$f" ] && kai_small ".kai/lock/$f"; then l=; IFS= read -r l < ".kai/lock/$f"; printf '%s\t%s\n' "$f" "$l"; fi; done
  fi
  kai_procs process
  if [ -n "$1" ] && [ -f "current/$1" ] && kai_small "current/$1"; then printf 'properties\n'; while IFS= read -r line || [ -n "$line" ]; do printf 'property\t%s\n' "$line"; done < "current/$1"; fi
  [ -n "${kai_nodf:-}" ] || df -Pk . | { read -r _; read -r _ _ _ free _; printf 'free_kb\t%s\n' "$free"; }
}"#;

/// Exit status of `kai_lock` when someone else holds the lock.
pub const LOCK_HELD: i32 = 3;

/// Why a deploy kept its lock on purpose (a server it could not put back), in the lock.
pub const LOCK_KEPT: &str = ".kai/lock/kept";

/// Where the output of the app's start and stop scripts goes, in the app home.
pub const SCRIPT_LOG: &str = ".kai/start.log";

/// Writes `contents` to `path` (temporary name, then rename).
pub fn write_file(path: &str, contents: &str) -> Command {
    Command::new(["kai_write", path]).stdin(contents)
}

/// Writes `contents` to `path`, a plan showing `shown` (its secrets masked) instead.
pub fn write_masked(path: &str, contents: &str, shown: &str) -> Command {
    written("kai_write", path, contents, shown)
}

/// [`write_masked`] into a staging folder, which is renamed whole once complete: no
/// one reads the file before, so it is written in place.
pub fn put_masked(path: &str, contents: &str, shown: &str) -> Command {
    written("kai_put", path, contents, shown)
}

fn written(helper: &str, path: &str, contents: &str, shown: &str) -> Command {
    if contents == shown {
        return Command::new([helper, path]).stdin(contents);
    }
    Command::new([helper, path]).stdin_input(Input::Masked { text: contents.to_owned(), shown: shown.to_owned() })
}

/// Appends `line` and a newline to `path`.
pub fn append_line(path: &str, line: &str) -> Command {
    Command::new(["kai_append", path]).stdin(format!("{line}\n"))
}

/// Receives an upload into `dest`, verified against `checksum` before it is named.
pub fn receive(dest: &str, checksum: &Checksum) -> Command {
    Command::new(["kai_receive", dest, checksum.algorithm.tool(), &checksum.hex])
}

/// How long a host's download may take, and how slow it may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadLimits {
    pub connect: Duration,
    /// The whole download.
    pub total: Duration,
}

/// The host downloads `url` into `dest`, verified against `checksum` before it is
/// named; with `auth`, curl reads the repository credentials as configuration on
/// standard input, so they are never in an argument list.
pub fn download(url: &str, dest: &str, checksum: &Checksum, auth: bool, limits: DownloadLimits) -> Command {
    let (connect, total) = (limits.connect.as_secs().max(1).to_string(), limits.total.as_secs().max(1).to_string());
    let part = format!("{dest}.part");
    let mut argv = vec!["kai_download", dest, checksum.algorithm.tool(), &checksum.hex];
    argv.extend(["curl", "--fail", "--silent", "--show-error", "--location", "--max-redirs", "5", "--retry", "2"]);
    argv.extend(["--connect-timeout", &connect, "--max-time", &total, "--speed-limit", "1024", "--speed-time", "30"]);
    if auth {
        argv.extend(["--config", "-"]);
    }
    argv.extend(["--output", &part, "--", url]);
    let command = Command::new(argv);
    if auth {
        command.stdin_input(Input::RepositoryCredentials)
    } else {
        command
    }
}

/// Takes the lock with `owner` (a JSON line) inside.
pub fn lock(owner: &str) -> Command {
    Command::new(["kai_lock"]).stdin(format!("{owner}\n"))
}

/// Refuses a release folder in which any path resolves outside it.
pub fn contained(dir: &str) -> Command {
    Command::new(["kai_contained", dir])
}

/// Removes a release staged by a deploy that was put back, unless `current` points to
/// it or a process runs from it.
pub fn unstage(version: &str) -> Command {
    Command::new(["kai_unstage", version])
}

/// Removes old releases with their records, keeping each one a process runs from.
pub fn prune(releases: &[&str]) -> Command {
    Command::new(std::iter::once("kai_prune").chain(releases.iter().copied()))
}

/// Removes a release that is to be staged again, refused while a process runs from it.
pub fn replace(release: &str) -> Command {
    Command::new(["kai_replace", release])
}

/// Records that a deploy starts changing this host.
pub fn started(record_line: &str) -> Command {
    Command::new(["kai_started", record_line])
}

/// Runs the app's `argv` in `current` for at most `limit`, output to [`SCRIPT_LOG`];
/// with `only_for`, only when `current` points to that release.
pub fn run_logged(argv: &[String], limit: Duration, only_for: Option<&str>) -> Command {
    let mut words = match only_for {
        Some(release) => vec!["kai_run_for".to_owned(), release.to_owned()],
        None => vec!["kai_run".to_owned()],
    };
    words.extend([SCRIPT_LOG.to_owned(), limit.as_secs().max(1).to_string()]);
    words.extend(argv.iter().cloned());
    Command::new(words)
}
