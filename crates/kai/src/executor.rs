//! The executor: runs steps on hosts through a [`Transport`] and reports each one.
//! It decides nothing: the plan says what runs, the rollout state machine says what
//! runs next.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use kai_core::command::Command;
use kai_core::plan::{HostSteps, Step};
use kai_core::step::{download_command, Action};

use crate::balancer::Balancer;
use crate::progress::Progress;
use crate::transport::{Output, Place, Transport};

/// A step that did not succeed, with what a person needs to see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFailure {
    pub host: String,
    pub step: &'static str,
    /// The plan text of the step.
    pub command: String,
    pub reason: String,
    /// The last lines the command printed.
    pub output: String,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} failed: {}", self.host, self.step, self.reason)
    }
}

/// Runs steps for one app on the hosts of one environment.
pub struct Executor<'a, T> {
    pub transport: &'a T,
    /// The environment's load balancer.
    pub balancer: &'a Balancer<'a, T>,
    pub http: &'a reqwest::Client,
    pub progress: &'a Progress,
    pub app: &'a str,
    /// The curl configuration carrying the repository credentials, for hosts that
    /// download themselves; fed on standard input.
    pub download_credentials: Option<&'a str>,
}

const POLL_INTERVAL: Duration = Duration::from_millis(250);

impl<T: Transport> Executor<'_, T> {
    /// Runs `steps` in order on one host; stops at the first failure. One progress
    /// line per run of steps that share a label.
    ///
    /// Consecutive steps the transport does with commands go as one batch (one round
    /// trip over SSH); each still has its own exit status, output check and report.
    pub async fn run_steps(&self, place: &Place, steps: &[Step]) -> Result<(), StepFailure> {
        let result = self.run_each(place, steps).await;
        self.progress.host_done(self.app);
        result
    }

    async fn run_each(&self, place: &Place, steps: &[Step]) -> Result<(), StepFailure> {
        let mut i = 0;
        while i < steps.len() {
            let batch: Vec<Command> = steps[i..].iter().map_while(|s| self.transport.command_for(&s.action)).collect();
            let results = if batch.len() > 1 {
                self.run_batch(place, &steps[i..i + batch.len()], &batch).await.into_iter().map(|r| r.map(drop)).collect()
            } else {
                vec![self.run_step(place, &steps[i]).await]
            };
            for result in results {
                let step = &steps[i];
                let last_of_label = steps.get(i + 1).is_none_or(|next| next.label != step.label);
                if result.is_err() || last_of_label {
                    self.progress.step(self.app, &place.host, step.label, result.is_ok());
                }
                result?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Runs `commands` (those of `steps`) as one batch; a result per step that ran.
    async fn run_batch(&self, place: &Place, steps: &[Step], commands: &[Command]) -> Vec<Result<Output, StepFailure>> {
        let fail = |step: &Step, reason: String, output: String| StepFailure {
            host: place.host.clone(),
            step: step.label,
            command: step.action.to_string(),
            reason,
            output,
        };
        let outputs = match self.transport.run_batch(place, commands).await {
            Ok(outputs) => outputs,
            Err(e) => return vec![Err(fail(&steps[0], e.to_string(), String::new()))],
        };
        steps
            .iter()
            .zip(outputs)
            .map(|(step, output)| {
                if !output.success() {
                    let reason = output.code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit status {c}"));
                    return Err(fail(step, reason, tail(&output)));
                }
                if let Action::Inspect { check, .. } = &step.action {
                    check.verify(&output.stdout).map_err(|reason| fail(step, reason, String::new()))?;
                }
                Ok(output)
            })
            .collect()
    }

    /// Runs `steps`, then `last` (a command whose output the caller wants), in one
    /// round trip when the transport can batch them all; one progress line per label.
    pub async fn run_steps_then(
        &self,
        place: &Place,
        steps: &[Step],
        label: &'static str,
        last_command: &Command,
    ) -> Result<Output, StepFailure> {
        let last = Step::run(label, last_command.clone());
        let commands: Option<Vec<Command>> = steps.iter().map(|s| self.transport.command_for(&s.action)).collect();
        let Some(mut commands) = commands else {
            self.run_steps(place, steps).await?;
            let result = self.run_command(place, last_command).await;
            self.progress.step(self.app, &place.host, last.label, result.is_ok());
            return result.map_err(|(reason, output)| StepFailure {
                host: place.host.clone(),
                step: last.label,
                command: last.action.to_string(),
                reason,
                output,
            });
        };
        commands.push(last_command.clone());
        let mut all = steps.to_vec();
        all.push(last);
        let mut results = self.run_batch(place, &all, &commands).await;
        let ran = results.len();
        for (i, result) in results.iter().enumerate() {
            let last_of_label = all.get(i + 1).is_none_or(|next| next.label != all[i].label);
            if result.is_err() || last_of_label {
                self.progress.step(self.app, &place.host, all[i].label, result.is_ok());
            }
        }
        match results.pop() {
            Some(result) if ran == all.len() => result,
            Some(Err(failure)) => Err(failure),
            _ => Err(StepFailure {
                host: place.host.clone(),
                step: all[0].label,
                command: String::new(),
                reason: "the batch stopped early".into(),
                output: String::new(),
            }),
        }
    }

    /// Runs each host's steps, all hosts at once; one result per host, in order.
    pub async fn run_parallel(&self, places: &[Place], phases: &[HostSteps]) -> Vec<Result<(), StepFailure>> {
        join_all(phases.iter().map(|phase| async move {
            match places.iter().find(|p| p.host == phase.host) {
                Some(place) => self.run_steps(place, &phase.steps).await,
                None => Err(StepFailure {
                    host: phase.host.clone(),
                    step: "plan",
                    command: String::new(),
                    reason: "the host is not part of this deploy".into(),
                    output: String::new(),
                }),
            }
        }))
        .await
    }

    pub async fn run_step(&self, place: &Place, step: &Step) -> Result<(), StepFailure> {
        let fail = |reason: String, output: String| StepFailure {
            host: place.host.clone(),
            step: step.label,
            command: step.action.to_string(),
            reason,
            output,
        };
        let transport = self.transport;
        match &step.action {
            Action::Run(command) => self.run_command(place, command).await.map(drop).map_err(|(r, o)| fail(r, o)),
            Action::Inspect { command, check } => {
                let output = self.run_command(place, command).await.map_err(|(r, o)| fail(r, o))?;
                check.verify(&output.stdout).map_err(|reason| fail(reason, String::new()))
            }
            Action::Upload { local, remote } => {
                transport.upload(place, local, remote).await.map_err(|e| fail(e.to_string(), String::new()))
            }
            Action::Download { url, dest, auth } => {
                let command = download_command(url, dest, self.download_credentials.filter(|_| *auth));
                self.run_command(place, &command).await.map(drop).map_err(|(r, o)| fail(r, o))
            }
            Action::Write { path, contents } => {
                transport.write(place, path, contents.as_bytes()).await.map_err(|e| fail(e.to_string(), String::new()))
            }
            Action::Append { path, line } => transport.append(place, path, line).await.map_err(|e| fail(e.to_string(), String::new())),
            Action::HttpHealth { url, timeout } => self.poll_http(url, *timeout).await.map_err(|r| fail(r, String::new())),
            Action::CommandHealth { command, timeout } => self.poll_command(place, command, *timeout).await.map_err(|(r, o)| fail(r, o)),
            Action::RunOn { host, command } => self.balancer.on_proxy(host, command).await.map(drop).map_err(|r| fail(r, String::new())),
            Action::Haproxy { target, op } => self.balancer.run(target, op).await.map_err(|r| fail(r, String::new())),
            Action::Wait(duration) => {
                tokio::time::sleep(*duration).await;
                Ok(())
            }
        }
    }

    async fn run_command(&self, place: &Place, command: &Command) -> Result<Output, (String, String)> {
        let output = self.transport.run(place, command).await.map_err(|e| (e.to_string(), String::new()))?;
        if output.success() {
            Ok(output)
        } else {
            let reason = match output.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".into(),
            };
            Err((reason, tail(&output)))
        }
    }

    async fn poll_http(&self, url: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = self.http.get(url).timeout(left.clamp(Duration::from_millis(100), Duration::from_secs(5))).send().await;
            let last = match attempt {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("HTTP {}", response.status()),
                Err(e) if e.is_connect() => "connection refused".to_owned(),
                Err(e) if e.is_timeout() => "no answer".to_owned(),
                Err(e) => e.to_string(),
            };
            if Instant::now() + POLL_INTERVAL >= deadline {
                return Err(format!("GET {url} gave no 2xx within {} (last: {last})", humantime::format_duration(timeout)));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn poll_command(&self, place: &Place, command: &Command, timeout: Duration) -> Result<(), (String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.run_command(place, command).await;
            match result {
                Ok(_) => return Ok(()),
                Err((reason, output)) if Instant::now() + POLL_INTERVAL >= deadline => {
                    return Err((format!("not healthy within {} (last: {reason})", humantime::format_duration(timeout)), output))
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }
}

/// The last few lines of what a command printed, stderr first.
fn tail(output: &Output) -> String {
    let text = format!("{}{}", output.stderr, output.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}
