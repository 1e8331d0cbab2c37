//! Judging a canary wave as a [`Wait`]: by HAProxy's counters over a window, or by a
//! command after the window. The machine asks for the counters, for the command's run,
//! to show a line, or for time; a stop arrives as [`Wait::stop`] and makes the verdict
//! bad (a canary nobody finished judging is not trusted). The verdict, as JSON, is the
//! judge step's output ([`outcome`]): the deploy machine puts it in the report and the
//! history.

use std::collections::VecDeque;
use std::time::Duration;

use super::{figures_only, merge, Judge, JudgeBy, LowTraffic, Verdict};
use crate::haproxy::ServerStat;
use crate::untrusted::HostText;
use crate::wait::{Ask, Wait};

/// How often the figures so far are shown.
const SHOW_EVERY: Duration = Duration::from_secs(5);
/// How often kai looks whether the canary servers are back in rotation.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What the watch needs from the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// HAProxy's `show stat` of the judged backend, on every proxy.
    Stats,
    /// Run the `judge_command` (with the canary and baseline hosts in its environment),
    /// within this time.
    Command { within: Duration },
    /// Show this line to the person (the figures so far).
    Show(String),
}

/// What the world said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Each proxy's servers, or why they could not be read.
    Stats(Result<Vec<Vec<ServerStat>>, String>),
    /// The command's exit code (none when killed) and what it printed; or why it could
    /// not be run to its end.
    Said(Result<(Option<i32>, String), String>),
    Shown,
}

/// One canary wave's judging.
#[derive(Clone, Debug)]
pub struct Watch {
    judge: Judge,
    limit: Duration,
    /// HAProxy: until when the canary may take to come back in rotation.
    deadline: Duration,
    state: State,
    /// The counters at the start of the window.
    start: Vec<ServerStat>,
    began: Duration,
    windows: u32,
    shown: Duration,
    stopping: bool,
    shows: VecDeque<String>,
}

#[derive(Clone, Debug)]
enum State {
    /// HAProxy: look whether the canary servers are in rotation at this instant.
    Rotation(Duration),
    /// `Stats` was asked, for this.
    Reading(Read),
    /// HAProxy: inside the window.
    Window,
    /// A command: waiting out the window until this instant.
    Pause(Duration),
    /// A command: asked to run it.
    Running,
    Done(Result<Verdict, String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Rotation,
    Start,
    SoFar,
    End,
    Stopped,
}

impl Watch {
    /// Judges `judge`'s canary from `now`; `limit` bounds it all (the judge step's limit).
    pub fn new(judge: &Judge, limit: Duration, now: Duration) -> Watch {
        let mut shows = VecDeque::new();
        let state = match &judge.by {
            JudgeBy::Haproxy { .. } => State::Rotation(now),
            JudgeBy::Command(_) => {
                shows.push_back(format!(
                    "canary {}: waiting {} before the judge_command",
                    judge.canary_hosts.join(","),
                    humantime::format_duration(judge.policy.window)
                ));
                State::Pause(now + judge.policy.window)
            }
        };
        Watch {
            judge: judge.clone(),
            limit,
            deadline: now + limit,
            state,
            start: Vec::new(),
            began: now,
            windows: 1,
            shown: now,
            stopping: false,
            shows,
        }
    }

    fn window_end(&self) -> Duration {
        self.began + self.judge.policy.window * self.windows
    }

    fn verdict(&self, end: &[ServerStat], now: Duration) -> Verdict {
        let judge = &self.judge;
        super::judge(&self.start, end, &judge.canary, &judge.baseline, &judge.policy, now.saturating_sub(self.began))
    }

    /// A canary stopped before its window ended: bad, with what was seen so far.
    fn stopped(mut verdict: Verdict) -> Verdict {
        verdict.verdict = "bad".into();
        verdict.reason = if verdict.canary.requests + verdict.baseline.requests > 0 {
            format!("stopped before the window ended, so the canary goes back ({})", verdict.figures_text())
        } else {
            "stopped before the window ended, so the canary goes back".into()
        };
        verdict
    }

    fn read(&mut self, read: Read, stats: Vec<Vec<ServerStat>>, now: Duration) {
        let judge = &self.judge;
        self.state = match read {
            Read::Rotation => {
                let up = stats.iter().all(|proxy| judge.canary.iter().all(|c| proxy.iter().any(|s| &s.server == c && s.in_rotation())));
                if up {
                    State::Reading(Read::Start)
                } else if now >= self.deadline {
                    State::Done(Err(format!("the canary {} never came back in rotation to be judged", judge.canary.join(", "))))
                } else {
                    State::Rotation(now + LOOK_EVERY)
                }
            }
            Read::Start => {
                self.start = merge(&stats);
                (self.began, self.shown) = (now, now);
                State::Window
            }
            Read::SoFar => {
                self.shown = now;
                let so_far = self.verdict(&merge(&stats), now);
                let (elapsed, window) = (now.saturating_sub(self.began), self.judge.policy.window * self.windows);
                self.shows.push_back(format!("{} ({}s/{}s)", so_far.figures_text(), elapsed.as_secs(), window.as_secs()));
                State::Window
            }
            Read::Stopped => State::Done(Ok(Self::stopped(self.verdict(&merge(&stats), now)))),
            Read::End => self.at_end(self.verdict(&merge(&stats), now)),
        };
    }

    /// The window's verdict, with too little traffic decided by the policy.
    fn at_end(&mut self, mut verdict: Verdict) -> State {
        if !verdict.is_low_traffic() {
            return State::Done(Ok(verdict));
        }
        let (policy, windows) = (&self.judge.policy, self.windows);
        match policy.on_low_traffic {
            LowTraffic::Pass => {
                verdict.verdict = "good".into();
                verdict.reason = format!("passed for lack of traffic (on_low_traffic = \"pass\"): {}", verdict.reason);
            }
            LowTraffic::Fail => {
                verdict.verdict = "bad".into();
                verdict.reason = format!("{} (on_low_traffic = \"fail\")", verdict.reason);
            }
            LowTraffic::Wait if windows >= policy.max_windows => {
                verdict.verdict = "bad".into();
                verdict.reason = format!("{} after {windows} windows (on_low_traffic = \"wait\", max_windows = {windows})", verdict.reason);
            }
            LowTraffic::Wait => {
                self.shows
                    .push_back(format!("too little traffic so far ({} canary requests); watching another window", verdict.canary.requests));
                self.windows += 1;
                return State::Window;
            }
        }
        State::Done(Ok(verdict))
    }

    /// The command's verdict: exit 0 is good; its last line (escaped, cut) is the reason.
    fn said(&self, said: Result<(Option<i32>, String), String>) -> Result<Verdict, String> {
        let JudgeBy::Command(command) = &self.judge.by else { return Err("a judge_command answer for an HAProxy canary".into()) };
        let program = command.argv.first().map_or("", String::as_str);
        let (code, output) = said?;
        let last = HostText::new(output).last_line().map(|l| crate::table::cut(&l.to_string(), 512)).unwrap_or_default();
        let said = if last.is_empty() { String::new() } else { format!(": {last}") };
        let (word, reason) = match code {
            Some(0) => ("good", format!("judge_command {program} said good{said}")),
            Some(code) => ("bad", format!("judge_command {program} exited {code}{said}")),
            None => ("bad", format!("judge_command {program} was killed{said}")),
        };
        Ok(Verdict { verdict: word.into(), reason, ..figures_only(&self.judge) })
    }
}

impl Wait for Watch {
    type Question = Question;
    type Answer = Answer;
    type Output = Result<Verdict, String>;

    fn poll(&mut self, now: Duration) -> Ask<Question, Self::Output> {
        if let Some(line) = self.shows.front() {
            return Ask::Now(Question::Show(line.clone()));
        }
        match self.state.clone() {
            State::Done(output) => Ask::Done(output),
            State::Reading(_) => Ask::Now(Question::Stats),
            State::Running => {
                Ask::Now(Question::Command { within: self.limit.saturating_sub(self.judge.policy.window).max(Duration::from_secs(1)) })
            }
            State::Rotation(_) | State::Pause(_) if self.stopping => {
                self.state = State::Done(Ok(Self::stopped(figures_only(&self.judge))));
                self.poll(now)
            }
            State::Rotation(at) | State::Pause(at) if now < at => Ask::Sleep(at),
            State::Rotation(_) => {
                self.state = State::Reading(Read::Rotation);
                Ask::Now(Question::Stats)
            }
            State::Pause(_) => {
                self.state = State::Running;
                self.poll(now)
            }
            State::Window => {
                let end = self.window_end();
                let next_show = self.shown + SHOW_EVERY;
                let read = if self.stopping {
                    Read::Stopped
                } else if now >= end {
                    Read::End
                } else if now >= next_show {
                    Read::SoFar
                } else {
                    return Ask::Sleep(end.min(next_show));
                };
                self.state = State::Reading(read);
                Ask::Now(Question::Stats)
            }
        }
    }

    fn answer(&mut self, answer: Answer, now: Duration) {
        match (answer, self.state.clone()) {
            (Answer::Shown, _) => {
                self.shows.pop_front();
            }
            (Answer::Stats(Err(e)), State::Reading(_)) => self.state = State::Done(Err(e)),
            (Answer::Stats(Ok(stats)), State::Reading(read)) => self.read(read, stats, now),
            (Answer::Said(said), State::Running) => self.state = State::Done(self.said(said)),
            // An answer to a question not asked changes nothing.
            (Answer::Stats(_) | Answer::Said(_), _) => {}
        }
    }

    fn stop(&mut self, _now: Duration) {
        self.stopping = true;
    }
}

/// The judge step's result: `Ok(verdict as JSON)` when good, `Err((why, verdict as
/// JSON))` when bad, `Err((why, ""))` when it could not be judged.
pub fn outcome(judge: &Judge, verdict: Result<Verdict, String>) -> Result<String, (String, String)> {
    let verdict = verdict.map_err(|why| (why, String::new()))?;
    let json = serde_json::to_string(&verdict).unwrap_or_default();
    if verdict.is_good() {
        Ok(json)
    } else {
        Err((format!("canary {}: {}", judge.canary_hosts.join(", "), verdict.reason), json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::Policy;
    use crate::haproxy::Admin;
    use crate::haproxy::Counters;
    use crate::shell::command::Command;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn judge(by: JudgeBy, policy: Policy) -> Judge {
        Judge {
            by,
            canary: vec!["web1".into()],
            baseline: vec!["web2".into()],
            canary_hosts: vec!["web1.example".into()],
            baseline_hosts: vec!["web2.example".into()],
            policy,
        }
    }

    fn haproxy(policy: Policy) -> Judge {
        judge(JudgeBy::Haproxy { admin: Admin::Tcp { addresses: vec!["127.0.0.1:9999".into()] }, backend: "b".into() }, policy)
    }

    fn policy(on_low_traffic: LowTraffic) -> Policy {
        Policy { window: secs(60), min_requests: 10, on_low_traffic, max_windows: 2, ..Policy::default() }
    }

    /// One proxy's servers: (name, status, 2xx, 5xx).
    fn stats(servers: &[(&str, &str, u64, u64)]) -> Vec<Vec<ServerStat>> {
        let one = |&(name, status, ok, bad): &(&str, &str, u64, u64)| ServerStat {
            backend: "b".into(),
            server: name.into(),
            status: status.into(),
            scur: 0,
            qcur: 0,
            counters: Counters { hrsp: [0, ok, 0, 0, bad, 0], rtime: 10, lbtot: ok + bad, ..Counters::default() },
        };
        vec![servers.iter().map(one).collect()]
    }

    /// Plays the watch: answers `Stats` from `read(at)`, shows are collected, the
    /// command is answered by `said`; a stop comes at `stop_at`.
    struct World<'a> {
        read: &'a dyn Fn(Duration) -> Result<Vec<Vec<ServerStat>>, String>,
        said: Result<(Option<i32>, String), String>,
        stop_at: Option<Duration>,
    }

    fn play(watch: &mut Watch, start: Duration, world: &World<'_>) -> (Result<Verdict, String>, Vec<String>, Duration) {
        let mut now = start;
        let mut shown = Vec::new();
        for _ in 0..10_000 {
            if world.stop_at.is_some_and(|at| now >= start + at) {
                watch.stop(now);
            }
            match watch.poll(now) {
                Ask::Now(Question::Stats) => watch.answer(Answer::Stats((world.read)(now - start)), now),
                Ask::Now(Question::Command { within }) => {
                    assert!(within >= secs(1));
                    watch.answer(Answer::Said(world.said.clone()), now);
                }
                Ask::Now(Question::Show(line)) => {
                    shown.push(line);
                    watch.answer(Answer::Shown, now);
                }
                Ask::Sleep(until) => {
                    assert!(until > now);
                    now = match world.stop_at.map(|at| start + at) {
                        Some(stop) if stop > now && stop < until => stop,
                        _ => until,
                    };
                }
                Ask::Done(verdict) => return (verdict, shown, now - start),
            }
        }
        panic!("the watch never ended");
    }

    /// Counters growing with time: the canary answers `bad` 5xx of every 100 requests a second.
    fn traffic(per_second: u64, canary_bad_percent: u64) -> impl Fn(Duration) -> Result<Vec<Vec<ServerStat>>, String> {
        move |t| {
            let n = t.as_secs() * per_second;
            let bad = n * canary_bad_percent / 100;
            Ok(stats(&[("web1", "UP", n - bad, bad), ("web2", "UP", n, 0)]))
        }
    }

    #[test]
    fn a_healthy_canary_is_good_after_one_window_with_the_figures_shown_on_the_way() {
        let start = Duration::ZERO;
        let judge = haproxy(policy(LowTraffic::Wait));
        let mut watch = Watch::new(&judge, secs(600), start);
        let (verdict, shown, ended) =
            play(&mut watch, start, &World { read: &traffic(10, 0), said: Ok((Some(0), String::new())), stop_at: None });
        let verdict = verdict.unwrap();
        assert!(verdict.is_good(), "{verdict:?}");
        assert_eq!(ended, secs(60));
        assert_eq!(verdict.window_ms, 60_000);
        assert_eq!(shown.len(), 11, "a line every 5 s of the window: {shown:?}");
        assert!(shown[0].ends_with("(5s/60s)"), "{}", shown[0]);
        assert!(outcome(&judge, Ok(verdict)).is_ok());
    }

    #[test]
    fn a_canary_failing_five_percent_is_bad_and_says_so() {
        let start = Duration::ZERO;
        let judge = haproxy(policy(LowTraffic::Wait));
        let mut watch = Watch::new(&judge, secs(600), start);
        let (verdict, _, _) = play(&mut watch, start, &World { read: &traffic(20, 5), said: Ok((Some(0), String::new())), stop_at: None });
        let verdict = verdict.unwrap();
        assert_eq!(verdict.verdict, "bad");
        let (why, json) = outcome(&judge, Ok(verdict.clone())).unwrap_err();
        assert!(why.starts_with("canary web1.example: the canary failed 5.0%"), "{why}");
        assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), verdict);
    }

    #[test]
    fn judging_waits_for_the_canary_to_be_back_in_rotation() {
        let start = Duration::ZERO;
        let judge = haproxy(policy(LowTraffic::Wait));
        let mut watch = Watch::new(&judge, secs(600), start);
        let read = |t: Duration| {
            let status = if t < secs(3) { "MAINT" } else { "UP" };
            let n = t.as_secs() * 10;
            Ok(stats(&[("web1", status, n, 0), ("web2", "UP", n, 0)]))
        };
        let (verdict, _, ended) = play(&mut watch, start, &World { read: &read, said: Ok((Some(0), String::new())), stop_at: None });
        assert!(verdict.unwrap().is_good());
        assert_eq!(ended, secs(63), "the window starts when the canary is back");
        let mut never = Watch::new(&judge, secs(10), start);
        let down = |_| Ok(stats(&[("web1", "MAINT", 0, 0), ("web2", "UP", 0, 0)]));
        let (verdict, _, ended) = play(&mut never, start, &World { read: &down, said: Ok((Some(0), String::new())), stop_at: None });
        assert_eq!(verdict, Err("the canary web1 never came back in rotation to be judged".into()));
        assert_eq!(ended, secs(10));
    }

    #[test]
    fn low_traffic_passes_fails_or_waits_as_the_policy_says() {
        let start = Duration::ZERO;
        let quiet = traffic(0, 0);
        let world = World { read: &quiet, said: Ok((Some(0), String::new())), stop_at: None };
        let run = |low| {
            let mut watch = Watch::new(&haproxy(policy(low)), secs(600), start);
            play(&mut watch, start, &world)
        };
        let (pass, _, ended) = run(LowTraffic::Pass);
        assert!(pass.as_ref().unwrap().is_good() && pass.unwrap().reason.starts_with("passed for lack of traffic"));
        assert_eq!(ended, secs(60));
        let (fail, _, _) = run(LowTraffic::Fail);
        assert!(fail.unwrap().reason.ends_with("(on_low_traffic = \"fail\")"));
        let (wait, shown, ended) = run(LowTraffic::Wait);
        assert_eq!(ended, secs(120), "max_windows = 2");
        let wait = wait.unwrap();
        assert_eq!(wait.verdict, "bad");
        assert!(wait.reason.ends_with("after 2 windows (on_low_traffic = \"wait\", max_windows = 2)"), "{}", wait.reason);
        assert!(shown.iter().any(|l| l.starts_with("too little traffic so far (0 canary requests)")), "{shown:?}");
        assert!(shown.last().unwrap().ends_with("(115s/120s)"), "the second window counts on: {shown:?}");
    }

    #[test]
    fn a_stop_in_the_window_makes_the_verdict_bad_with_the_figures_so_far() {
        let start = Duration::ZERO;
        let mut watch = Watch::new(&haproxy(policy(LowTraffic::Wait)), secs(600), start);
        let world = World { read: &traffic(10, 0), said: Ok((Some(0), String::new())), stop_at: Some(secs(12)) };
        let (verdict, _, ended) = play(&mut watch, start, &world);
        let verdict = verdict.unwrap();
        assert_eq!(ended, secs(12), "a stop ends the window at once");
        assert_eq!(verdict.verdict, "bad");
        assert!(
            verdict.reason.starts_with("stopped before the window ended, so the canary goes back (canary web1: 120 requests"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn a_failed_read_ends_the_judging() {
        let start = Duration::ZERO;
        let mut watch = Watch::new(&haproxy(policy(LowTraffic::Wait)), secs(600), start);
        let read = |t: Duration| if t < secs(20) { traffic(10, 0)(t) } else { Err("HAProxy at 127.0.0.1:9999: connection refused".into()) };
        let (verdict, _, ended) = play(&mut watch, start, &World { read: &read, said: Ok((Some(0), String::new())), stop_at: None });
        assert_eq!(verdict, Err("HAProxy at 127.0.0.1:9999: connection refused".into()));
        assert_eq!(ended, secs(20));
    }

    fn command_judge() -> Judge {
        judge(JudgeBy::Command(Command::new(["./judge.sh", "--strict"])), Policy { window: secs(30), ..Policy::default() })
    }

    #[test]
    fn a_judge_command_runs_after_the_window_and_its_exit_code_decides() {
        let start = Duration::ZERO;
        let judge = command_judge();
        let never = |_| Err::<Vec<Vec<ServerStat>>, _>("no stats for a command".to_owned());
        let mut good = Watch::new(&judge, secs(600), start);
        let world = World { read: &never, said: Ok((Some(0), "all fine\n".into())), stop_at: None };
        let (verdict, shown, ended) = play(&mut good, start, &world);
        assert_eq!(shown, ["canary web1.example: waiting 30s before the judge_command"]);
        assert_eq!(ended, secs(30));
        let verdict = verdict.unwrap();
        assert_eq!((verdict.verdict.as_str(), verdict.reason.as_str()), ("good", "judge_command ./judge.sh said good: all fine"));
        assert_eq!(verdict.canary.servers, ["web1.example"]);
        let mut bad = Watch::new(&judge, secs(600), start);
        let world = World { read: &never, said: Ok((Some(3), "5xx: 7%\x1b[2J\n".into())), stop_at: None };
        let verdict = play(&mut bad, start, &world).0.unwrap();
        assert_eq!(verdict.verdict, "bad");
        assert_eq!(verdict.reason, "judge_command ./judge.sh exited 3: 5xx: 7%\\u{1b}[2J", "what a command says is escaped");
        let mut killed = Watch::new(&judge, secs(600), start);
        let world = World { read: &never, said: Ok((None, String::new())), stop_at: None };
        assert_eq!(play(&mut killed, start, &world).0.unwrap().reason, "judge_command ./judge.sh was killed");
        let mut lost = Watch::new(&judge, secs(600), start);
        let world = World { read: &never, said: Err("judge_command ./judge.sh did not finish within 9m 30s".into()), stop_at: None };
        assert_eq!(play(&mut lost, start, &world).0, Err("judge_command ./judge.sh did not finish within 9m 30s".into()));
    }

    #[test]
    fn a_stop_before_the_judge_command_is_a_bad_verdict_without_running_it() {
        let start = Duration::ZERO;
        let never = |_| Err::<Vec<Vec<ServerStat>>, _>("no stats for a command".to_owned());
        let mut watch = Watch::new(&command_judge(), secs(600), start);
        let world = World { read: &never, said: Err("the command must not run".into()), stop_at: Some(secs(7)) };
        let (verdict, _, ended) = play(&mut watch, start, &world);
        assert_eq!(ended, secs(7));
        let verdict = verdict.unwrap();
        assert_eq!(verdict.reason, "stopped before the window ended, so the canary goes back");
        assert_eq!(verdict.window_ms, 30_000);
    }
}
