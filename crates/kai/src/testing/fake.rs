//! A transport for tests: no process, no socket. It reads the scripts kai sends the
//! way a host's shell would see them (each command's text, as the plan prints it),
//! records every command per host, and answers from scripted rules: exit 0 unless a
//! rule says otherwise, the probe's output per host, a timeout or a lost connection
//! on the command a rule names.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use kai_core::shell::session;

use crate::transport::{Output, Payload, Place, Transport, TransportError};

/// What a host answers to a command.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Exits with this status, printing this on standard output and standard error.
    Exit { code: i32, stdout: String, stderr: String },
    /// The command does not end within the step's limit.
    Timeout,
    /// The connection breaks while it runs.
    Lost,
}

impl Answer {
    pub fn fail(code: i32, stderr: &str) -> Answer {
        Answer::Exit { code, stdout: String::new(), stderr: stderr.to_owned() }
    }
}

/// One scripted answer: to the `nth` (from 1) command on `host` (any host when `None`)
/// whose text contains `contains`; every such command when `nth` is 0.
struct Rule {
    host: Option<String>,
    contains: String,
    nth: usize,
    answer: Answer,
}

#[derive(Default)]
pub struct FakeTransport {
    rules: Vec<Rule>,
    /// What `kai_probe` prints, per host.
    probes: BTreeMap<String, String>,
    /// Every command run, per host, in order; uploads as their remote command.
    sent: Mutex<Vec<(String, String)>>,
    /// Called with (host, command text) before a command is answered.
    #[allow(clippy::type_complexity)]
    watch: Option<Box<dyn Fn(&str, &str) + Send + Sync>>,
}

impl FakeTransport {
    pub fn new() -> FakeTransport {
        FakeTransport::default()
    }

    /// `kai_probe` on `host` prints `facts`.
    #[must_use]
    pub fn probe(mut self, host: &str, facts: &str) -> FakeTransport {
        self.probes.insert(host.to_owned(), facts.to_owned());
        self
    }

    /// Every command on `host` containing `contains` gets `answer`.
    #[must_use]
    pub fn on(self, host: &str, contains: &str, answer: Answer) -> FakeTransport {
        self.on_nth(host, contains, 0, answer)
    }

    /// The `nth` (from 1) command on `host` containing `contains` gets `answer`.
    #[must_use]
    pub fn on_nth(mut self, host: &str, contains: &str, nth: usize, answer: Answer) -> FakeTransport {
        self.rules.push(Rule { host: Some(host.to_owned()), contains: contains.to_owned(), nth, answer });
        self
    }

    /// Calls `watch` with each command before it is answered.
    #[must_use]
    pub fn watch(mut self, watch: impl Fn(&str, &str) + Send + Sync + 'static) -> FakeTransport {
        self.watch = Some(Box::new(watch));
        self
    }

    /// The commands run on `host`, in order.
    pub fn sent_to(&self, host: &str) -> Vec<String> {
        self.sent.lock().expect("not poisoned").iter().filter(|(h, _)| h == host).map(|(_, c)| c.clone()).collect()
    }

    /// Every (host, command), in the order they ran.
    pub fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().expect("not poisoned").clone()
    }

    fn answer(&self, host: &str, command: &str) -> Answer {
        if let Some(watch) = &self.watch {
            watch(host, command);
        }
        let seen = {
            let mut sent = self.sent.lock().expect("not poisoned");
            sent.push((host.to_owned(), command.to_owned()));
            sent.clone()
        };
        for rule in &self.rules {
            if rule.host.as_deref().is_some_and(|h| h != host) || !command.contains(&rule.contains) {
                continue;
            }
            let count = seen.iter().filter(|(h, c)| h == host && c.contains(&rule.contains)).count();
            if rule.nth == 0 || rule.nth == count {
                return rule.answer.clone();
            }
        }
        let stdout = if command.starts_with("kai_probe") { self.probes.get(host).cloned().unwrap_or_default() } else { String::new() };
        Answer::Exit { code: 0, stdout, stderr: String::new() }
    }
}

impl Transport for FakeTransport {
    async fn send(&self, place: &Place, text: &str, input: Payload<'_>, limit: Duration) -> Result<Output, TransportError> {
        let host = place.host.clone();
        let script = match input {
            Payload::Script { real: bytes, .. } if text.ends_with("sh -s") => String::from_utf8_lossy(bytes).into_owned(),
            _ => {
                // An upload: the line the plan shows is what follows the helpers.
                let shown = text.rsplit_once('\n').map_or(text, |(_, last)| last);
                return match self.answer(&host, shown) {
                    Answer::Exit { code, stdout, stderr } => Ok(Output { code: Some(code), stdout, stderr }),
                    Answer::Timeout => Err(TransportError::Timeout { host, limit, partial: Output::default() }),
                    Answer::Lost => Err(TransportError::ConnectionLost { host, reason: "the fake cut it".into() }),
                };
            }
        };
        let token = token_of(&script).expect("kai's scripts are framed");
        let mut whole = Output { code: Some(0), ..Output::default() };
        for (i, command) in session::commands_in(&script, &token).iter().enumerate() {
            let (code, stdout, stderr) = match self.answer(&host, command) {
                Answer::Exit { code, stdout, stderr } => (code, stdout, stderr),
                Answer::Timeout => {
                    whole.stdout.push_str(&format!("{token} {i}\n"));
                    whole.stderr.push_str(&format!("{token} {i}\nstill stopping...\n"));
                    whole.code = None;
                    return Err(TransportError::Timeout { host, limit, partial: whole });
                }
                Answer::Lost => return Err(TransportError::ConnectionLost { host, reason: "the fake cut it".into() }),
            };
            whole.stdout.push_str(&format!("{token} {i}\n{stdout}\n{token}-end {i} {code}\n"));
            whole.stderr.push_str(&format!("{token} {i}\n{stderr}\n{token}-end {i}\n"));
            if code != 0 {
                break;
            }
        }
        Ok(whole)
    }
}

/// The token of a script's framing.
fn token_of(script: &str) -> Option<String> {
    let line = script.lines().find(|l| l.starts_with("printf '%s %d\\n' "))?;
    Some(line.split_whitespace().nth(3)?.to_owned())
}
