//! The executor: runs one host's steps through a [`Transport`] and says how each went.
//! It decides nothing: the deploy machine says what runs, the plan says how. Steps go
//! as the sessions of `kai_core::shell::session` group them: consecutive commands in one
//! script (one round trip), an upload alone, kai's own steps here.

use std::time::Duration;

use kai_core::deploy::TaskResult;
use kai_core::outcome::{Output, Reason, StepFailure};
use kai_core::shell::command::{Command, Input as CommandInput};
use kai_core::shell::session::{self, Access, Session};
use kai_core::step::{Action, Step, StepKind};
use kai_core::untrusted::HostText;
use kai_core::wait::{Check, Stable, Unhealthy};

use crate::balancer::Balancer;
use crate::drive::drive;
use crate::transport::{Payload, Place, Transport, TransportError};

/// Runs steps for one app on the hosts of one environment.
pub struct Executor<'a, T> {
    pub transport: &'a T,
    /// The environment's load balancer.
    pub balancer: &'a Balancer<'a, T>,
    pub http: &'a reqwest::Client,
    /// The curl configuration carrying the repository credentials, for hosts that
    /// download themselves; fed on standard input.
    pub download_credentials: Option<&'a str>,
    /// Told after each step that failed, and after the last of each run of steps of
    /// one kind: (host, step, ok).
    pub on_step: &'a (dyn Fn(&str, &Step, bool) + Send + Sync),
    /// Told before each batch of steps sent at once: (host, what it does: `drain`,
    /// `stop, switch, start`).
    pub on_begin: &'a (dyn Fn(&str, &str) + Send + Sync),
    /// Told what a long step (a canary's judging) sees so far.
    pub on_detail: &'a (dyn Fn(&str) + Send + Sync),
    /// Whether a stop was asked for (a canary being judged then goes back).
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

/// Told nothing.
fn silent_step(_: &str, _: &Step, _: bool) {}
fn silent_begin(_: &str, _: &str) {}
fn silent_detail(_: &str) {}

impl<'a, T> Executor<'a, T> {
    /// An executor for kai's own steps outside a deploy (an unlock, a hold, a health
    /// question): it tells each step's end to `on_step` and nothing else, downloads
    /// nothing and is never stopped early. A deploy's executor sets every field.
    pub fn plain(balancer: &'a Balancer<'a, T>, http: &'a reqwest::Client, on_step: &'a (dyn Fn(&str, &Step, bool) + Send + Sync)) -> Self {
        Executor {
            transport: balancer.transport,
            balancer,
            http,
            download_credentials: None,
            on_step,
            on_begin: &silent_begin,
            on_detail: &silent_detail,
            stop: &crate::drive::never,
        }
    }

    /// [`plain`](Self::plain), telling nothing at all.
    pub fn silent(balancer: &'a Balancer<'a, T>, http: &'a reqwest::Client) -> Self {
        Executor::plain(balancer, http, &silent_step)
    }
}

const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long past the sum of its steps' limits kai waits for a script's end.
const SCRIPT_SLACK: Duration = Duration::from_secs(30);

/// What a batch of steps does, in the words of its kinds, each once: `stop, switch, start`.
fn session_words(session: &Session<'_>) -> String {
    let mut words: Vec<&str> = Vec::new();
    let steps: Vec<&Step> = match session {
        Session::Script(steps) => steps.to_vec(),
        Session::Upload(step) | Session::Kai(step) => vec![step],
    };
    // kai's own bookkeeping (the record that a deploy started, the guard) is not what a
    // person waits on: named only when nothing else is.
    let bookkeeping = |step: &&Step| matches!(step.kind, StepKind::Started | StepKind::Guard);
    let told: Vec<&Step> = if steps.iter().all(bookkeeping) { steps } else { steps.into_iter().filter(|s| !bookkeeping(s)).collect() };
    for step in told {
        if !words.contains(&step.kind.word()) {
            words.push(step.kind.word());
        }
    }
    words.join(", ")
}

impl<T: Transport> Executor<'_, T> {
    /// Runs `steps` in order on one host, entered as `place` says; stops at the first
    /// failure. The result holds each step's output and the failure, if any.
    pub async fn run_task(&self, place: &Place, steps: &[Step]) -> TaskResult {
        let access = &place.access;
        let mut result = TaskResult::default();
        for session in session::sessions(steps) {
            (self.on_begin)(&place.host, &session_words(&session));
            let ran = match session {
                Session::Script(steps) => self.run_script(place, access, &steps).await,
                Session::Upload(step) => vec![self.run_upload(place, access, step).await],
                Session::Kai(step) => vec![self.run_kai(place, step).await],
            };
            for (output, failure) in ran {
                let (i, ok) = (result.outputs.len(), failure.is_none());
                let last_of_kind = steps.get(i + 1).is_none_or(|next| next.kind != steps[i].kind);
                if !ok || last_of_kind {
                    (self.on_step)(&place.host, &steps[i], ok);
                }
                result.outputs.push(output);
                if let Some(failure) = failure {
                    result.failure = Some(failure);
                    return result;
                }
            }
        }
        result
    }

    fn failure(place: &Place, step: &Step, reason: Reason, output: impl Into<HostText>) -> StepFailure {
        StepFailure { host: place.host.clone(), step: step.kind, command: step.action.to_string(), reason, output: output.into() }
    }

    /// The real text of inputs a plan does not show.
    fn secret(&self, input: &CommandInput) -> String {
        match input {
            CommandInput::Text(text) => text.clone(),
            CommandInput::RepositoryCredentials => self.download_credentials.unwrap_or_default().to_owned(),
            CommandInput::Masked { text, .. } => text.clone(),
            CommandInput::Digest { .. } => unreachable!("a saved plan's digest is never sent: a saved plan is made again before it runs"),
        }
    }

    /// One script for `steps`: a result per step that ran.
    async fn run_script(&self, place: &Place, access: &Access, steps: &[&Step]) -> Vec<(Output, Option<StepFailure>)> {
        let commands: Vec<&Command> = steps.iter().filter_map(|s| s.scripted()).collect();
        let token = crate::transport::token();
        let text = session::script(access, &commands, &token, &|i| self.secret(i));
        let shown = session::script(access, &commands, &token, &kai_core::shell::command::shown);
        let limit = steps.iter().map(|s| s.limit).sum::<Duration>() + SCRIPT_SLACK;
        let sent = self.transport.send(place, &access.entry(), Payload::Script { real: text.as_bytes(), shown: &shown }, limit).await;
        // A script cut off still says which commands ended; the one running gets the blame.
        let (outputs, cut) = match sent {
            Ok(whole) => match session::parse_outputs(&token, &whole) {
                Ok(outputs) => (outputs, None),
                Err(e) => (Vec::new(), Some((Reason::ConnectionLost(e), String::new()))),
            },
            Err(TransportError::Timeout { limit, partial, .. }) => {
                let (ended, running) = session::partial_outputs(&token, &partial);
                (ended, Some((Reason::TimedOut(limit), running)))
            }
            Err(e) => (Vec::new(), Some((e.reason(), String::new()))),
        };
        let mut results = Vec::new();
        for (step, output) in steps.iter().zip(outputs) {
            let failure = match (&step.action, output.code) {
                (_, Some(0)) => match &step.action {
                    Action::Inspect { check, .. } => {
                        check.verify(&output.stdout).err().map(|why| Self::failure(place, step, Reason::Refused(why), String::new()))
                    }
                    _ => None,
                },
                (_, Some(124)) => Some(Self::failure(place, step, Reason::TimedOut(step.limit), output.tail())),
                (_, Some(code)) => Some(Self::failure(place, step, Reason::Exit(code), output.tail())),
                (_, None) => Some(Self::failure(place, step, Reason::Signal, output.tail())),
            };
            let stop = failure.is_some();
            results.push((output, failure));
            if stop {
                return results;
            }
        }
        if results.len() < steps.len() {
            let step = steps[results.len()];
            let (reason, said) = cut.unwrap_or((Reason::ConnectionLost("the script ended before this step".into()), String::new()));
            let tail = Output { stdout: said, ..Output::default() }.tail();
            results.push((Output::default(), Some(Self::failure(place, step, reason, tail))));
        }
        results
    }

    async fn run_upload(&self, place: &Place, access: &Access, step: &Step) -> (Output, Option<StepFailure>) {
        let Action::Upload { local, command } = &step.action else { unreachable!("an upload session holds an upload") };
        let sent = self.transport.send(place, &access.single(command), Payload::File(local), step.limit).await;
        match sent {
            Ok(output) if output.success() => (output, None),
            Ok(output) => {
                let reason = output.code.map_or(Reason::Signal, Reason::Exit);
                let tail = output.tail();
                (output, Some(Self::failure(place, step, reason, tail)))
            }
            Err(e) => (Output::default(), Some(Self::failure(place, step, e.reason(), String::new()))),
        }
    }

    /// A step kai does itself.
    async fn run_kai(&self, place: &Place, step: &Step) -> (Output, Option<StepFailure>) {
        let done = match &step.action {
            Action::Judge(judge) => crate::drive::judge::run(self.balancer, judge, step.limit, self.on_detail, self.stop)
                .await
                .map_err(|(r, o)| (Reason::Kai(r), HostText::from(o))),
            _ => self.run_kai_quiet(place, step).await.map(|()| String::new()),
        };
        match done {
            Ok(stdout) => (Output { code: Some(0), stdout, ..Output::default() }, None),
            Err((reason, output)) => (Output::default(), Some(Self::failure(place, step, reason, output))),
        }
    }

    /// A step kai does itself that prints nothing.
    async fn run_kai_quiet(&self, place: &Place, step: &Step) -> Result<(), (Reason, HostText)> {
        match &step.action {
            Action::HttpHealth { url, timeout, stable } => {
                self.poll_http(url, *timeout, *stable).await.map_err(|r| (Reason::Kai(r), HostText::default()))
            }
            Action::CommandHealth { command, timeout, stable } => self.poll_command(place, command, *timeout, *stable).await,
            Action::RunOn { host, command } => {
                self.balancer.on_proxy(host, command, step.limit).await.map(drop).map_err(|r| (Reason::Kai(r), HostText::default()))
            }
            Action::Haproxy { target, op } => self.balancer.run(target, op).await.map_err(|r| (Reason::Kai(r), HostText::default())),
            Action::Httpd { target, op } => self.balancer.run_httpd(target, op).await.map_err(|r| (Reason::Kai(r), HostText::default())),
            Action::Wait(duration) => {
                crate::drive::pause(*duration).await;
                Ok(())
            }
            Action::Run(_) | Action::Inspect { .. } | Action::Upload { .. } | Action::Judge(_) => {
                unreachable!("commands go in sessions of their own, a judge in run_kai")
            }
        }
    }

    /// One command in a script of its own; `Ok` when it exits 0.
    async fn run_one(&self, place: &Place, command: &Command, limit: Duration) -> Result<Output, (Reason, HostText)> {
        let output = crate::transport::send_command(self.transport, place, command, limit).await.map_err(|e| (e, HostText::default()))?;
        match output.code {
            Some(0) => Ok(output),
            Some(code) => Err((Reason::Exit(code), output.tail())),
            None => Err((Reason::Signal, output.tail())),
        }
    }

    /// Until 2xx, then 2xx at every look for `stable`.
    async fn poll_http(&self, url: &str, timeout: Duration, stable: Duration) -> Result<(), String> {
        let mut wait = Stable::new(Duration::ZERO, timeout, stable, POLL_INTERVAL);
        let http = self.http;
        let checked = drive(&mut wait, &crate::drive::never, async |check: Check| {
            let attempt = http.get(url).timeout(check.within.clamp(Duration::from_millis(100), Duration::from_secs(5))).send().await;
            match attempt {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("HTTP {}", response.status())),
                Err(e) if e.is_connect() => Err("connection refused".to_owned()),
                Err(e) if e.is_timeout() => Err("no answer".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        checked.map_err(|unhealthy| match unhealthy {
            Unhealthy::Fell { after, last } => format!(
                "GET {url} answered 2xx, then failed {:.1}s later ({last}): the release did not stay healthy for {}",
                after.as_secs_f64(),
                humantime::format_duration(stable)
            ),
            Unhealthy::Never { last } => format!("GET {url} gave no 2xx within {} (last: {last})", humantime::format_duration(timeout)),
        })
    }

    /// Until the command exits 0, then exit 0 at every run for `stable`.
    async fn poll_command(&self, place: &Place, command: &Command, timeout: Duration, stable: Duration) -> Result<(), (Reason, HostText)> {
        let mut wait = Stable::new(Duration::ZERO, timeout, stable, POLL_INTERVAL);
        let checked = drive(&mut wait, &crate::drive::never, async |check: Check| {
            self.run_one(place, command, check.within.max(Duration::from_secs(1)) + SCRIPT_SLACK).await.map(drop)
        })
        .await;
        checked.map_err(|unhealthy| match unhealthy {
            Unhealthy::Fell { after, last: (reason, output) } => {
                let why = format!(
                    "passed, then failed {:.1}s later ({reason}): not healthy for {}",
                    after.as_secs_f64(),
                    humantime::format_duration(stable)
                );
                (Reason::Kai(why), output)
            }
            Unhealthy::Never { last: (reason, output) } => {
                (Reason::Kai(format!("not healthy within {} (last: {reason})", humantime::format_duration(timeout))), output)
            }
        })
    }
}
