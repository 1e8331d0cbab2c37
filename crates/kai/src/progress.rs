//! What a person sees while kai works. On a terminal: one live line per app saying
//! what it does now (`stage 2/3 hosts`, `drain web2 (2 of 3)`, a canary's figures),
//! redrawn in place, with failures and warnings printed above them. Without a terminal
//! (a CI log): a short log, per app a line when staged and a line per server switched,
//! failures in full. With `-v`: one timestamped line per step on stderr
//! (`<time> <env> <app> <host> <step> ok|failed`). Then the final summary.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use kai_core::deploy::{AppResult, Report};
use kai_core::table::count;

pub struct Progress {
    env: String,
    mode: Mode,
    /// The live lines, on a terminal; `None`: plain lines.
    board: Option<Mutex<Board>>,
    /// Per (app, host): when its health check began, then how long it took to pass.
    health: Mutex<HashMap<(String, String), Health>>,
}

/// Which lines plain (not live) progress writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Only failures and warnings (`-q`).
    Quiet,
    /// The short log: staged, each server switched, failures.
    Short,
    /// Every step (`-v`).
    Steps,
}

#[derive(Clone, Copy, Debug)]
enum Health {
    Began(Instant),
    Passed(Duration),
}

/// How progress should look, from the command line and the terminal.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    pub quiet: bool,
    pub verbose: bool,
    /// Standard error is a terminal that can redraw lines.
    pub live_terminal: bool,
    pub color: bool,
}

/// How often the live lines are redrawn while nothing happens (elapsed times move).
const TICK: Duration = Duration::from_millis(250);

impl Progress {
    /// Plain lines, every step (`quiet`: only failures and warnings).
    pub fn new(env: &str, quiet: bool) -> Progress {
        let mode = if quiet { Mode::Quiet } else { Mode::Steps };
        Progress { env: env.to_owned(), mode, board: None, health: Mutex::default() }
    }

    /// Live lines on a terminal unless `-q` or `-v` asks otherwise; the short log
    /// elsewhere (every step with `-v`).
    pub fn with_look(env: &str, look: Look) -> Progress {
        let live = look.live_terminal && !look.quiet && !look.verbose;
        let board = live.then(|| Mutex::new(Board { apps: Vec::new(), drawn: 0, color: look.color, told_interrupt: false }));
        let mode = match (look.quiet, look.verbose) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Steps,
            (false, false) => Mode::Short,
        };
        Progress { env: env.to_owned(), mode, board, health: Mutex::default() }
    }

    /// Plain lines of this kind are written (never while the live lines are shown).
    fn writes(&self, mode: Mode) -> bool {
        self.board.is_none() && self.mode == mode
    }

    pub fn step(&self, app: &str, host: &str, step: &str, ok: bool) {
        if ok && step == "health" {
            let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(Health::Began(at)) = health.get(&(app.to_owned(), host.to_owned())).copied() {
                health.insert((app.to_owned(), host.to_owned()), Health::Passed(at.elapsed()));
            }
        }
        if ok && !self.writes(Mode::Steps) {
            return;
        }
        let word = if ok { "ok" } else { "failed" };
        self.line(&format!("{} {} {app} {host} {step} {word}", now(), self.env));
    }

    /// `host` of `app` begins `what` (`drain`, `stop, switch, start`, `health`).
    pub fn begin(&self, app: &str, host: &str, what: &str) {
        if what == "health" {
            let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            health.insert((app.to_owned(), host.to_owned()), Health::Began(Instant::now()));
        }
        self.update(|board| {
            let line = board.line_of(app);
            if line.wave.is_some() {
                line.doing = what.to_owned();
                line.detail.clear();
            }
        });
    }

    /// A line of the short log or of every step (`-q` writes none).
    pub fn note(&self, text: &str) {
        if self.writes(Mode::Steps) || self.writes(Mode::Short) {
            self.line(&format!("{} {} {text}", now(), self.env));
        }
    }

    /// A line a person should see even with live lines on the terminal (above them):
    /// what holds an app up (a deploy lock it waits for). Not with `-q`.
    pub fn tell(&self, text: &str) {
        if self.mode != Mode::Quiet {
            self.line(&format!("{} {} {text}", now(), self.env));
        }
    }

    /// The apps about to run, in the order their lines are shown.
    pub fn expect(&self, apps: &[&str]) {
        self.update(|board| {
            for app in apps {
                board.line_of(app);
            }
        });
    }

    /// `app` enters `phase`, which has `hosts` hosts to go through (0: not counted).
    pub fn phase(&self, app: &str, phase: &'static str, hosts: usize) {
        self.update(|board| {
            let line = board.line_of(app);
            line.started.get_or_insert_with(Instant::now);
            line.phase = phase;
            line.detail.clear();
            line.doing.clear();
            line.wave = None;
            line.done = 0;
            line.total = hosts;
        });
    }

    /// `app` switches `hosts` now (`phase`: `roll` or `roll back`), the `first`-th of
    /// `of` servers (counting from 1).
    pub fn wave(&self, app: &str, phase: &'static str, hosts: &[&str], first: usize, of: usize) {
        self.update(|board| {
            let line = board.line_of(app);
            let last = first + hosts.len().saturating_sub(1);
            let ordinal = if last > first { format!("{first}-{last} of {of}") } else { format!("{first} of {of}") };
            line.wave = Some(format!("{} ({ordinal})", hosts.join(", ")));
            line.started.get_or_insert_with(Instant::now);
            line.done = 0;
            line.total = hosts.len();
            line.phase = phase;
            line.doing = phase.to_owned();
            line.detail.clear();
        });
    }

    /// Every host of `app` is staged (the short log's line).
    pub fn staged(&self, app: &str, hosts: &[&str], took: Duration) {
        if self.writes(Mode::Short) {
            self.note(&format!("{app} staged on {} ({:.1}s)", hosts.join(", "), took.as_secs_f64()));
        }
    }

    /// `host` of `app` is through its turn of `phase` (`roll`, `roll back`, `standby`):
    /// the short log's line per server (a failure is told by its step, in full).
    pub fn switched(&self, app: &str, host: &str, phase: &str, ok: bool) {
        if !ok || !self.writes(Mode::Short) {
            return;
        }
        let health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&(app.to_owned(), host.to_owned()));
        let healthy = match health {
            Some(Health::Passed(took)) => format!(", healthy after {:.1}s", took.as_secs_f64()),
            _ => String::new(),
        };
        let what = match phase {
            "roll back" => format!("put back{healthy}"),
            "standby" => "switched, left disabled and stopped (standby)".to_owned(),
            _ => format!("switched{healthy}"),
        };
        self.note(&format!("{app} {host} {what}"));
    }

    /// What `app` is waiting on right now (a canary's figures so far): on the live
    /// line, else a timestamped line of its own.
    pub fn detail(&self, app: &str, text: &str) {
        if self.board.is_none() {
            self.note(&format!("{app} {text}"));
            return;
        }
        self.update(|board| board.line_of(app).detail = text.to_owned());
    }

    /// One host of `app` is through the steps of the current phase.
    pub fn host_done(&self, app: &str) {
        self.update(|board| board.line_of(app).done += 1);
    }

    /// `app` has ended: its line shows the result for good (with its hosts when it
    /// went through them; a deploy refused by a lock or an artifact went through none).
    pub fn finish(&self, report: &Report) {
        self.update(|board| {
            let line = board.line_of(&report.app);
            let went = !matches!(report.result, AppResult::Locked(_) | AppResult::Refused);
            line.total = if went { report.hosts.len() } else { 0 };
            line.done = line.total;
            line.wave = None;
            line.ended = Some((report.result.word(), mood(&report.result), report.duration));
        });
    }

    /// Runs `work`, redrawing the live lines every [`TICK`] meanwhile.
    pub async fn while_running<F: std::future::Future>(&self, work: F) -> F::Output {
        if self.board.is_none() {
            return work.await;
        }
        tokio::pin!(work);
        let mut tick = tokio::time::interval(TICK);
        crate::terminal::set_live(true);
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                _ = tick.tick() => self.update(|_| ()),
            }
        };
        self.update(|_| ());
        crate::terminal::set_live(false);
        output
    }

    /// Changes the live lines and redraws them; nothing without a terminal.
    fn update(&self, change: impl FnOnce(&mut Board)) {
        let Some(board) = &self.board else { return };
        let mut board = board.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut board);
        let interrupted = crate::interrupt::requested() && !board.told_interrupt;
        board.told_interrupt |= interrupted;
        let notice = crate::interrupt::notice();
        let text = board.redraw(interrupted.then_some(notice.as_str()));
        crate::terminal::write_stderr(&text);
    }

    fn line(&self, text: &str) {
        match &self.board {
            None => crate::terminal::write_stderr(&format!("{text}\n")),
            Some(board) => {
                let mut board = board.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let text = board.redraw(Some(text));
                crate::terminal::write_stderr(&text);
            }
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The live lines: one per app, redrawn in place with plain ANSI (cursor up, erase line).
struct Board {
    apps: Vec<AppLine>,
    /// How many lines the last redraw left on the screen, the cursor below them.
    drawn: usize,
    color: bool,
    /// The Ctrl-C notice is printed (once, above the lines).
    told_interrupt: bool,
}

struct AppLine {
    app: String,
    phase: &'static str,
    done: usize,
    total: usize,
    started: Option<Instant>,
    ended: Option<(&'static str, Mood, Duration)>,
    /// Shown after the phase while it lasts (cut to fit the terminal).
    detail: String,
    /// In a roll: the servers switched now and which of how many (`web2 (2 of 3)`).
    wave: Option<String>,
    /// In a roll: what those servers do now (`drain`, `stop, switch, start`).
    doing: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mood {
    Good,
    Bad,
    Stopped,
}

fn mood(result: &AppResult) -> Mood {
    match result {
        AppResult::Deployed | AppResult::Reverted | AppResult::UpToDate => Mood::Good,
        AppResult::Locked(_) | AppResult::Interrupted => Mood::Stopped,
        _ => Mood::Bad,
    }
}

/// The longest app name a live line shows in full: lines must not wrap, or redrawing
/// in place goes wrong.
const NAME_WIDTH: usize = 32;

impl Board {
    fn line_of(&mut self, app: &str) -> &mut AppLine {
        let at = match self.apps.iter().position(|l| l.app == app) {
            Some(at) => at,
            None => {
                self.apps.push(AppLine {
                    app: app.to_owned(),
                    phase: "waiting",
                    done: 0,
                    total: 0,
                    started: None,
                    ended: None,
                    detail: String::new(),
                    wave: None,
                    doing: String::new(),
                });
                self.apps.len() - 1
            }
        };
        &mut self.apps[at]
    }

    /// The bytes that bring the screen up to date: back to the first live line, `above`
    /// (if any) printed for good, then every live line again.
    fn redraw(&mut self, above: Option<&str>) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for line in above.into_iter().flat_map(str::lines) {
            out.push_str(&format!("\r\x1b[K{line}\n"));
        }
        let width = self.apps.iter().map(|l| l.app.chars().count()).max().unwrap_or(0).min(NAME_WIDTH);
        for line in &self.apps {
            out.push_str(&format!("\r\x1b[K{}\n", line.render(width, self.color)));
        }
        self.drawn = self.apps.len();
        out
    }
}

impl AppLine {
    fn render(&self, width: usize, color: bool) -> String {
        let name: String = if self.app.chars().count() > width {
            self.app.chars().take(width.saturating_sub(1)).chain(std::iter::once('…')).collect()
        } else {
            self.app.clone()
        };
        let hosts = |done: usize| match self.total {
            0 => String::new(),
            total => format!("{}/{}", done.min(total), count(total, "host")),
        };
        match (self.ended, self.started) {
            (Some((word, mood, took)), _) => {
                let word = paint(word, mood, color);
                match self.total {
                    0 => format!("  {name:width$}  {word}  {:.1}s", took.as_secs_f64()),
                    _ => format!("  {name:width$}  {word}  {}  {:.1}s", hosts(self.total), took.as_secs_f64()),
                }
            }
            (None, Some(started)) => {
                let elapsed = started.elapsed().as_secs_f64();
                let line = match &self.wave {
                    Some(wave) => format!("  {name:width$}  {} {wave}  {elapsed:.1}s", self.doing),
                    None => format!("  {name:width$}  {:10} {:11}  {elapsed:.1}s", self.phase, hosts(self.done)),
                };
                if self.detail.is_empty() {
                    line
                } else {
                    // Never wider than the terminal: a wrapped line breaks redrawing in place.
                    let room = crate::terminal::width().saturating_sub(line.chars().count() + 3);
                    let detail: String = self.detail.chars().take(room).collect();
                    format!("{line}  {detail}")
                }
            }
            (None, None) => format!("  {name:width$}  {}", self.phase),
        }
    }
}

fn paint(word: &str, mood: Mood, color: bool) -> String {
    if !color {
        return word.to_owned();
    }
    let code = match mood {
        Mood::Good => "32",
        Mood::Bad => "31",
        Mood::Stopped => "33",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(color: bool) -> Board {
        Board { apps: Vec::new(), drawn: 0, color, told_interrupt: false }
    }

    #[test]
    fn the_first_redraw_moves_nothing_and_later_ones_go_back_over_every_line() {
        let mut b = board(false);
        b.line_of("hello");
        b.line_of("ssod-grensesnitt");
        let first = b.redraw(None);
        assert!(!first.contains("\x1b[2A"), "{first:?}");
        assert_eq!(first.matches("\r\x1b[K").count(), 2);
        assert!(first.contains("hello             waiting\n"), "{first:?}");
        let second = b.redraw(Some("a failure"));
        assert!(second.starts_with("\x1b[2A\r\x1b[Ka failure\n"), "{second:?}");
        assert_eq!(second.matches('\n').count(), 3);
    }

    #[test]
    fn a_line_shows_phase_hosts_and_elapsed_then_the_result() {
        let mut b = board(false);
        let line = b.line_of("hello");
        line.started = Some(Instant::now());
        line.phase = "stage";
        line.total = 3;
        line.done = 2;
        assert!(line.render(5, false).starts_with("  hello  stage      2/3 hosts    0.0s"), "{:?}", line.render(5, false));
        line.ended = Some(("deployed", Mood::Good, Duration::from_millis(12_340)));
        assert_eq!(line.render(5, false), "  hello  deployed  3/3 hosts  12.3s");
        assert_eq!(line.render(5, true), "  hello  \x1b[32mdeployed\x1b[0m  3/3 hosts  12.3s");
        line.ended = None;
        line.phase = "artifact";
        line.total = 0;
        assert!(line.render(5, false).starts_with("  hello  artifact                0.0s"), "{:?}", line.render(5, false));
    }

    #[test]
    fn long_names_are_cut_so_lines_do_not_wrap() {
        let mut b = board(false);
        let name = "a".repeat(100);
        b.line_of(&name);
        let text = b.redraw(None);
        assert!(text.lines().all(|l| l.chars().count() < 60), "{text:?}");
    }
}
