//! A canary judged by the load balancer's own counters: after the canary servers are
//! back in rotation, HAProxy's `show stat` is read at the start and at the end of a
//! window; the canary servers' answers over that window (deltas of the counters, not
//! totals) are compared with the other servers' over the same window. A health check
//! says a server answers; this sees a release that fails one request in twenty or
//! answers three times slower.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::haproxy::{Counters, ServerStat};

mod watch;
pub use watch::{outcome, Answer, Question, Watch};

/// What to do when the window saw too few requests to judge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LowTraffic {
    /// Call it good: a quiet service cannot be judged, and it passed its health check.
    Pass,
    /// Call it bad: put the canary back.
    Fail,
    /// Keep watching, window after window, up to [`Policy::max_windows`]; then fail.
    #[default]
    Wait,
}

/// The thresholds of a verdict, from `[canary]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub window: Duration,
    /// Requests the canary servers (together) and the baseline must have answered.
    pub min_requests: u64,
    /// Bad when the canary's error ratio is above both `error_factor` × the baseline's
    /// and the baseline's + `error_margin` (a fraction: 0.01 is one point).
    pub error_factor: f64,
    pub error_margin: f64,
    /// Bad when the canary's mean response time is above both `slowdown` × the
    /// baseline's and the baseline's + `slowdown_margin_ms`.
    pub slowdown: f64,
    pub slowdown_margin_ms: f64,
    pub on_low_traffic: LowTraffic,
    /// With `wait`: how many windows at most.
    pub max_windows: u32,
}

/// The thresholds are checked finite when the configuration is read: equality is total.
impl Eq for Policy {}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window: Duration::from_secs(60),
            min_requests: 50,
            error_factor: 2.0,
            error_margin: 0.01,
            slowdown: 1.5,
            slowdown_margin_ms: 5.0,
            on_low_traffic: LowTraffic::Wait,
            max_windows: 5,
        }
    }
}

/// What a canary is judged on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judge {
    pub by: JudgeBy,
    /// The canary servers and the others, as HAProxy names them.
    pub canary: Vec<String>,
    pub baseline: Vec<String>,
    /// The same, as host names (for the command).
    pub canary_hosts: Vec<String>,
    pub baseline_hosts: Vec<String>,
    pub policy: Policy,
}

/// What decides a canary's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeBy {
    /// HAProxy's counters, through its runtime API, for this backend.
    Haproxy { admin: crate::haproxy::Admin, backend: String },
    /// A command run here with the canary and baseline hosts in its environment; exit 0 is good.
    Command(crate::shell::command::Command),
}

/// A verdict with nothing counted yet: the servers (by host name) and the window.
pub fn figures_only(judge: &Judge) -> Verdict {
    let figures = |hosts: &[String]| Figures { servers: hosts.to_vec(), ..Figures::default() };
    Verdict {
        verdict: String::new(),
        reason: String::new(),
        canary: figures(&judge.canary_hosts),
        baseline: figures(&judge.baseline_hosts),
        window_ms: u64::try_from(judge.policy.window.as_millis()).unwrap_or(u64::MAX),
    }
}

/// What a group of servers did over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub servers: Vec<String>,
    /// Answers of every class plus connection and response errors.
    pub requests: u64,
    /// 5xx answers, connection errors and response errors.
    pub errors: u64,
    pub error_ratio: f64,
    /// Retries and redispatches (shown; HAProxy retried what would have failed).
    pub retries: u64,
    /// The mean response time over the window, in ms, estimated from HAProxy's moving
    /// average (`rtime`); `None` without answers.
    pub mean_ms: Option<f64>,
    /// A counter went backwards: HAProxy was reloaded during the window and the counts
    /// start again from its reload.
    pub reset: bool,
}

/// The decision on a canary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `good`, `bad` or `low-traffic` (too few requests: the policy decides).
    pub verdict: String,
    /// Why, in one sentence with the figures.
    pub reason: String,
    pub canary: Figures,
    pub baseline: Figures,
    pub window_ms: u64,
}

/// Figures are counts and finite ratios and means (never NaN): equality is total.
impl Eq for Figures {}
impl Eq for Verdict {}

impl Verdict {
    /// `canary web1: 400 requests, 5.0% failed, 10.2 ms; baseline web2, web3: …`
    pub fn figures_text(&self) -> String {
        let side = |f: &Figures| {
            let ms = f.mean_ms.map_or_else(|| "-".to_owned(), |m| format!("{m:.1} ms"));
            let reset = if f.reset { " (counters reset by a reload)" } else { "" };
            format!("{}: {} requests, {:.1}% failed, {ms}{reset}", f.servers.join(", "), f.requests, f.error_ratio * 100.0)
        };
        format!("canary {}; baseline {}", side(&self.canary), side(&self.baseline))
    }

    pub fn is_good(&self) -> bool {
        self.verdict == "good"
    }

    pub fn is_low_traffic(&self) -> bool {
        self.verdict == "low-traffic"
    }
}

/// Several proxies in front of the same servers: one reading, each server's counters
/// summed over the proxies (and its average response time averaged).
pub fn merge(per_proxy: &[Vec<ServerStat>]) -> Vec<ServerStat> {
    let mut merged: Vec<ServerStat> = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    for stat in per_proxy.iter().flatten() {
        match merged.iter().position(|m| m.server == stat.server) {
            None => {
                merged.push(stat.clone());
                seen.push(1);
            }
            Some(at) => {
                let (m, c) = (&mut merged[at].counters, &stat.counters);
                for i in 0..6 {
                    m.hrsp[i] += c.hrsp[i];
                }
                m.econ += c.econ;
                m.eresp += c.eresp;
                m.wretr += c.wretr;
                m.wredis += c.wredis;
                m.rtime = (m.rtime * seen[at] + c.rtime) / (seen[at] + 1);
                seen[at] += 1;
                if !stat.in_rotation() {
                    merged[at].status.clone_from(&stat.status);
                }
            }
        }
    }
    merged
}

/// The delta of one counter; a counter that went backwards was reset (a reload), and
/// then what it counts now is what it counted since.
fn delta(start: u64, end: u64, reset: &mut bool) -> u64 {
    if end >= start {
        end - start
    } else {
        *reset = true;
        end
    }
}

/// HAProxy's `rtime` is a moving average: each answer moves it by 1/w of the
/// difference, where w is the number of answers the server has given (`lbtot`) up to
/// 1024 (HAProxy 2.4 and later; before that always 1024). After `n` answers of mean `x`
/// it reads `x + (start - x)·keep`, `keep` the product of the `1 - 1/w` of each answer,
/// so `x` follows from the two readings.
fn window_mean(start_avg: u64, end_avg: u64, n: u64, lbtot_start: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let mut keep = 1.0_f64;
    for i in 1..=n.min(1 << 20) {
        let w = (lbtot_start + i).min(1024) as f64;
        keep *= 1.0 - 1.0 / w;
        if keep < 1e-12 {
            break;
        }
    }
    let mean = if keep >= 1.0 { end_avg as f64 } else { (end_avg as f64 - start_avg as f64 * keep) / (1.0 - keep) };
    Some(mean.max(0.0))
}

/// The figures of `servers` between two readings of `show stat` (of one backend).
pub fn figures(start: &[ServerStat], end: &[ServerStat], servers: &[String]) -> Figures {
    let mut figures = Figures { servers: servers.to_vec(), ..Figures::default() };
    let mut weighted_ms = 0.0;
    let mut timed = 0;
    for name in servers {
        let Some(after) = end.iter().find(|s| &s.server == name) else { continue };
        let before = start.iter().find(|s| &s.server == name).map_or_else(Counters::default, |s| s.counters);
        let after = after.counters;
        let mut reset = false;
        let answers: u64 = (0..6).map(|i| delta(before.hrsp[i], after.hrsp[i], &mut reset)).sum();
        let five = delta(before.hrsp[4], after.hrsp[4], &mut reset);
        let (econ, eresp) = (delta(before.econ, after.econ, &mut reset), delta(before.eresp, after.eresp, &mut reset));
        figures.retries += delta(before.wretr, after.wretr, &mut reset) + delta(before.wredis, after.wredis, &mut reset);
        figures.requests += answers + econ + eresp;
        figures.errors += five + econ + eresp;
        figures.reset |= reset;
        // After a reset the moving average starts again: its start reading is nothing.
        let (start_avg, seen) = if reset { (0, 0) } else { (before.rtime, before.lbtot) };
        if let Some(mean) = window_mean(start_avg, after.rtime, answers, seen) {
            weighted_ms += mean * answers as f64;
            timed += answers;
        }
    }
    figures.error_ratio = if figures.requests == 0 { 0.0 } else { figures.errors as f64 / figures.requests as f64 };
    figures.mean_ms = (timed > 0).then(|| weighted_ms / timed as f64);
    figures
}

/// Judges the canary servers against the baseline over one window.
pub fn judge(
    start: &[ServerStat],
    end: &[ServerStat],
    canary: &[String],
    baseline: &[String],
    policy: &Policy,
    window: Duration,
) -> Verdict {
    let (c, b) = (figures(start, end, canary), figures(start, end, baseline));
    let percent = |r: f64| format!("{:.1}%", r * 100.0);
    let ms = |m: Option<f64>| m.map_or_else(|| "-".to_owned(), |m| format!("{m:.1} ms"));
    let verdict = |word: &str, reason: String, c: Figures, b: Figures| Verdict {
        verdict: word.into(),
        reason,
        canary: c,
        baseline: b,
        window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
    };
    if c.requests < policy.min_requests || b.requests < policy.min_requests {
        let reason = format!(
            "too little traffic to judge: the canary answered {} and the baseline {} requests in {}, {} needed",
            c.requests,
            b.requests,
            humantime::format_duration(window),
            policy.min_requests
        );
        return verdict("low-traffic", reason, c, b);
    }
    let error_limit = (b.error_ratio * policy.error_factor).max(b.error_ratio + policy.error_margin);
    if c.error_ratio > error_limit {
        let reason = format!(
            "the canary failed {} of its requests ({} of {}), the baseline {} ({} of {}); the limit was {}",
            percent(c.error_ratio),
            c.errors,
            c.requests,
            percent(b.error_ratio),
            b.errors,
            b.requests,
            percent(error_limit)
        );
        return verdict("bad", reason, c, b);
    }
    if let (Some(cm), Some(bm)) = (c.mean_ms, b.mean_ms) {
        let limit = (bm * policy.slowdown).max(bm + policy.slowdown_margin_ms);
        if cm > limit {
            let reason = format!(
                "the canary answered in {} on average, the baseline in {}; the limit was {}",
                ms(Some(cm)),
                ms(Some(bm)),
                ms(Some(limit))
            );
            return verdict("bad", reason, c, b);
        }
    }
    let reason = format!(
        "the canary failed {} ({} of {}) in {}, the baseline {} ({} of {}) in {}",
        percent(c.error_ratio),
        c.errors,
        c.requests,
        ms(c.mean_ms),
        percent(b.error_ratio),
        b.errors,
        b.requests,
        ms(b.mean_ms)
    );
    verdict("good", reason, c, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haproxy::parse_stat;

    const HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime";

    /// A `show stat` line of server `name` of backend `hello` in HAProxy 2.6's layout.
    fn line(name: &str, two: u64, five: u64, eresp: u64, rtime: u64) -> String {
        format!(
            "hello,{name},0,0,0,1,,{t},0,0,,0,,0,{eresp},0,0,UP,1,1,0,0,0,5,0,,1,2,1,,{t},,2,0,,3,L7OK,200,1,0,{two},0,0,{five},0,,,,{t},0,0,0,0,0,0,0,,,0,0,{rtime},{rtime}",
            t = two + five
        )
    }

    fn stat(lines: &[String]) -> Vec<ServerStat> {
        parse_stat(&format!("{HEADER}\n{}\nhello,BACKEND,0,0,0,0,,0,0,0,0,0,,0,0,0,0,UP,3\n", lines.join("\n")))
            .expect("a show stat answer")
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn policy() -> Policy {
        Policy { min_requests: 50, ..Policy::default() }
    }

    const WINDOW: Duration = Duration::from_secs(10);

    /// `show stat hello 4 -1` of a real HAProxy 2.6.12 (Debian 12) balancing two servers:
    /// after 46 requests (6 of them 404s), after 60 more, and after a restart and 10 more.
    const RECORDED: [&str; 3] = [
        include_str!("../../testdata/haproxy-2.6-show-stat-1.csv"),
        include_str!("../../testdata/haproxy-2.6-show-stat-2.csv"),
        include_str!("../../testdata/haproxy-2.6-show-stat-3.csv"),
    ];

    #[test]
    fn recorded_readings_of_a_real_haproxy_give_the_window_and_a_reset_after_a_restart() {
        let [first, second, restarted] = RECORDED.map(|csv| parse_stat(csv).expect("a recorded show stat"));
        assert_eq!(first[0].counters.hrsp[3], 3, "404s are 4xx: {:?}", first[0].counters);
        let v = judge(&first, &second, &names(&["web1"]), &names(&["web2"]), &Policy { min_requests: 10, ..policy() }, WINDOW);
        assert_eq!((v.canary.requests, v.canary.errors, v.baseline.requests), (30, 0, 30), "{v:?}");
        assert!(!v.canary.reset && v.is_good(), "{v:?}");
        let v = judge(&second, &restarted, &names(&["web1"]), &names(&["web2"]), &Policy { min_requests: 1, ..policy() }, WINDOW);
        assert!(v.canary.reset && v.baseline.reset, "the restart set every counter back: {v:?}");
        assert_eq!((v.canary.requests, v.baseline.requests), (5, 5));
    }

    #[test]
    fn a_good_canary_is_good() {
        let start = stat(&[line("web1", 5000, 1, 0, 10), line("web2", 5000, 1, 0, 10), line("web3", 5000, 1, 0, 10)]);
        let end = stat(&[line("web1", 5400, 1, 0, 10), line("web2", 5400, 2, 0, 10), line("web3", 5400, 1, 0, 10)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2", "web3"]), &policy(), WINDOW);
        assert!(v.is_good(), "{v:?}");
        assert_eq!((v.canary.requests, v.canary.errors, v.baseline.requests, v.baseline.errors), (400, 0, 801, 1));
        let mean = v.canary.mean_ms.expect("a mean");
        assert!((mean - 10.0).abs() < 0.01, "{mean}");
    }

    #[test]
    fn one_failure_in_twenty_is_bad() {
        let start = stat(&[line("web1", 5000, 0, 0, 10), line("web2", 5000, 0, 0, 10)]);
        let end = stat(&[line("web1", 5380, 20, 0, 10), line("web2", 5400, 0, 0, 10)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        assert_eq!(v.verdict, "bad", "{v:?}");
        assert!(v.reason.contains("failed 5.0% of its requests (20 of 400)"), "{}", v.reason);
    }

    #[test]
    fn response_errors_count_like_5xx_and_a_baseline_with_errors_raises_the_bar() {
        let start = stat(&[line("web1", 0, 0, 0, 0), line("web2", 0, 0, 0, 0)]);
        // The baseline fails 2 %: the canary may fail up to 4 % (twice as much).
        let end = stat(&[line("web1", 970, 0, 30, 0), line("web2", 980, 20, 0, 0)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        assert!(v.is_good(), "3 % against 2 %: {v:?}");
        let end = stat(&[line("web1", 950, 0, 50, 0), line("web2", 980, 20, 0, 0)]);
        assert_eq!(judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW).verdict, "bad");
    }

    #[test]
    fn three_times_slower_is_bad_even_behind_an_old_moving_average() {
        // rtime moves by 1/1024 per answer: after 400 answers at 30 ms it reads ~16.
        let keep = (1.0 - 1.0 / 1024.0_f64).powf(400.0);
        let after = (30.0 + (10.0 - 30.0) * keep).round() as u64;
        let start = stat(&[line("web1", 5000, 0, 0, 10), line("web2", 5000, 0, 0, 10)]);
        let end = stat(&[line("web1", 5400, 0, 0, after), line("web2", 5400, 0, 0, 10)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        assert_eq!(v.verdict, "bad", "{v:?}");
        let mean = v.canary.mean_ms.expect("a mean");
        assert!((mean - 30.0).abs() < 2.0, "the window's mean is recovered: {mean}");
        assert!(v.reason.contains("the baseline in 10.0 ms"), "{}", v.reason);
    }

    #[test]
    fn a_server_with_few_answers_so_far_has_an_average_of_them_all() {
        // 20 answers at 10 ms before the window (lbtot 20), then 200 at 40 ms: HAProxy
        // averages over all 220 (its window is not full), reading ~37.
        let start = stat(&[line("web1", 20, 0, 0, 10), line("web2", 5000, 0, 0, 10)]);
        let end = stat(&[line("web1", 220, 0, 0, 37), line("web2", 5200, 0, 0, 10)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        let mean = v.canary.mean_ms.expect("a mean");
        assert!((mean - 39.7).abs() < 1.0, "{mean}");
        assert_eq!(v.verdict, "bad");
    }

    #[test]
    fn slower_by_a_few_milliseconds_is_not_bad() {
        let start = stat(&[line("web1", 0, 0, 0, 0), line("web2", 0, 0, 0, 0)]);
        let end = stat(&[line("web1", 400, 0, 0, 2), line("web2", 400, 0, 0, 1)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        assert!(v.is_good(), "2 ms against 1 ms is within the 5 ms margin: {v:?}");
    }

    #[test]
    fn too_few_requests_is_low_traffic() {
        let start = stat(&[line("web1", 100, 0, 0, 10), line("web2", 100, 0, 0, 10)]);
        let end = stat(&[line("web1", 120, 0, 0, 10), line("web2", 300, 0, 0, 10)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        assert!(v.is_low_traffic(), "{v:?}");
        assert!(v.reason.contains("the canary answered 20 and the baseline 200 requests"), "{}", v.reason);
    }

    #[test]
    fn counters_reset_by_a_reload_count_from_the_reload() {
        // HAProxy reloaded mid-window: every counter starts again from zero.
        let start = stat(&[line("web1", 5000, 0, 0, 10), line("web2", 5000, 0, 0, 10)]);
        let end = stat(&[line("web1", 190, 10, 0, 10), line("web2", 200, 0, 0, 10)]);
        let v = judge(&start, &end, &names(&["web1"]), &names(&["web2"]), &policy(), WINDOW);
        assert!(v.canary.reset && v.baseline.reset, "{v:?}");
        assert_eq!((v.canary.requests, v.canary.errors, v.baseline.requests), (200, 10, 200));
        assert_eq!(v.verdict, "bad", "5 % after the reload is still 5 %");
    }
}
