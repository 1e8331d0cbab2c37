//! How kai's commands reach a host, as text: the one format the plan prints and the
//! transports send.
//!
//! A host's steps go in sessions ([`sessions`]): consecutive commands make one
//! *script*, fed to `sh -s` on the host (under `sudo -n -u <user>` when kai logs in
//! as another account). A script starts with kai's helper functions
//! ([`HELPERS`], the same in every script), then the line that
//! enters the app home, then each command's text exactly as the plan prints it,
//! framed by marker lines that carry a fresh random token (so no output can forge
//! one). The helpers are printed once at the end of a plan; the framing is the
//! transport's envelope, the only text a plan does not show. An upload is a session
//! of its own (its standard input is the artifact): the helpers, then the line the
//! plan prints, as the remote command. kai's own steps (a health poll, HAProxy, a
//! wait) send nothing.

use serde::{Deserialize, Serialize};

use crate::outcome::Output;
use crate::shell::command::{quote, Command, Input};
use crate::shell::helpers::HELPERS;
use crate::step::{Action, Step};

/// How kai enters a host for one app: which account runs the commands, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The app home (`~user` or an absolute path); `None`: the login's own home (proxies).
    pub home: Option<String>,
    /// `sudo -n -u <user>` when kai logs in as someone else than the app's user.
    pub sudo: Option<String>,
}

impl Access {
    /// The remote command of a script session; the script comes on its standard input.
    pub fn entry(&self) -> String {
        self.wrap("sh -s")
    }

    /// The line after the helpers in every script: into the app home (`~user` left
    /// for the shell to expand, anything else quoted).
    pub fn enter(&self) -> Option<String> {
        self.home_word().map(|home| format!("kai_enter {home}"))
    }

    /// The app home as a shell word: `~user` left for the shell to expand, anything
    /// else quoted.
    pub fn home_word(&self) -> Option<String> {
        let home = self.home.as_deref()?;
        Some(match home.strip_prefix('~') {
            Some(user) if crate::ident::is_valid(user) => home.to_owned(),
            _ => quote(home),
        })
    }

    /// What a plan shows of an upload: into the home, then `command`, which reads the file.
    pub fn single_shown(&self, command: &Command) -> String {
        match self.enter() {
            Some(enter) => format!("{enter} && {}", command.to_shell()),
            None => command.to_shell(),
        }
    }

    /// The remote command of an upload: the helpers, then [`single_shown`](Self::single_shown).
    pub fn single(&self, command: &Command) -> String {
        self.wrap(&format!("{HELPERS}\n{}", self.single_shown(command)))
    }

    /// A command run on its own, as [`single`](Self::single), that prints `marker` (a
    /// line on standard output) once it is in the home, before `command` runs: without
    /// that line, the host could not run it (no home, sudo refused), whatever the exit
    /// status says. `marker` is a word of letters, digits and `-`.
    pub fn single_marked(&self, command: &Command, marker: &str) -> String {
        debug_assert!(marker.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{marker}");
        let enter = self.enter().map(|enter| format!("{enter} && ")).unwrap_or_default();
        self.wrap(&format!("{HELPERS}\n{enter}printf '%s\\n' {marker} && {}", command.to_shell()))
    }

    fn wrap(&self, text: &str) -> String {
        match &self.sudo {
            Some(user) if text == "sh -s" => format!("sudo -n -u {} -- sh -s", quote(user)),
            Some(user) => format!("sudo -n -u {} -- sh -c {}", quote(user), quote(text)),
            None => text.to_owned(),
        }
    }
}

/// The steps of one host grouped as they are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Session<'s> {
    /// Consecutive commands, one script.
    Script(Vec<&'s Step>),
    /// A command fed a local file.
    Upload(&'s Step),
    /// Something kai does itself (its commands, if any, go as scripts of their own).
    Kai(&'s Step),
}

/// Groups `steps` into sessions, in order.
pub fn sessions(steps: &[Step]) -> Vec<Session<'_>> {
    let mut out: Vec<Session<'_>> = Vec::new();
    for step in steps {
        match (&step.action, out.last_mut()) {
            (Action::Run(_) | Action::Inspect { .. }, Some(Session::Script(script))) => script.push(step),
            (Action::Run(_) | Action::Inspect { .. }, _) => out.push(Session::Script(vec![step])),
            (Action::Upload { .. }, _) => out.push(Session::Upload(step)),
            _ => out.push(Session::Kai(step)),
        }
    }
    out
}

/// The script that runs `commands` on a host entered with `access`: what a transport
/// feeds to [`Access::entry`]. `secret` gives the text of inputs a plan does not show.
pub fn script(access: &Access, commands: &[&Command], token: &str, secret: &dyn Fn(&Input) -> String) -> String {
    let mut script = format!("{HELPERS}\n");
    if let Some(enter) = access.enter() {
        script.push_str(&enter);
        script.push('\n');
    }
    for (i, command) in commands.iter().enumerate() {
        script.push_str(&format!("printf '%s %d\\n' {token} {i}; printf '%s %d\\n' {token} {i} >&2\n(\n"));
        script.push_str(&command.text(secret));
        script.push_str(&format!(
            "\n) </dev/null\nrc=$?; printf '\\n%s-end %d %d\\n' {token} {i} \"$rc\"; printf '\\n%s-end %d\\n' {token} {i} >&2; [ \"$rc\" -eq 0 ] || exit 0\n"
        ));
    }
    script
}

/// The text of each command in a script made by [`script`], with its framing taken
/// away: what a plan shows of it (after the line that enters the home).
pub fn commands_in(script: &str, token: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut rest = script;
    for i in 0.. {
        let begin = format!("printf '%s %d\\n' {token} {i}; printf '%s %d\\n' {token} {i} >&2\n(\n");
        let Some(at) = rest.find(&begin) else { break };
        rest = &rest[at + begin.len()..];
        let end = format!("\n) </dev/null\nrc=$?; printf '\\n%s-end %d %d\\n' {token} {i}");
        let Some(stop) = rest.find(&end) else { break };
        commands.push(rest[..stop].to_owned());
        rest = &rest[stop..];
    }
    commands
}

/// The outputs of the commands of a script that ran, in order; the script's own exit
/// status and standard error explain a script that could not start.
pub fn parse_outputs(token: &str, whole: &Output) -> Result<Vec<Output>, String> {
    let outs = sections(token, &whole.stdout)?;
    let errs = sections(token, &whole.stderr)?;
    if outs.is_empty() && !whole.success() {
        return Err(could_not_run("kai's script", whole));
    }
    if errs.len() != outs.len() {
        return Err(format!("the script printed {} stdout sections but {} stderr sections", outs.len(), errs.len()));
    }
    Ok(outs.into_iter().zip(errs).map(|((code, stdout), (_, stderr))| Output { code, stdout, stderr }).collect())
}

/// Why the host could not run `what` (a script, a command), from how it ended: its
/// status and the last line it printed on standard error.
pub fn could_not_run(what: &str, whole: &Output) -> String {
    let said = whole.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no message");
    let status = whole.code.map_or("killed by a signal".to_owned(), |code| format!("exit status {code}"));
    format!("the host could not run {what} ({status}): {said}")
}

/// What a script that was cut off (past its deadline, a connection lost) had printed:
/// the outputs of the commands that ended, and what the one still running had printed.
pub fn partial_outputs(token: &str, whole: &Output) -> (Vec<Output>, String) {
    let ended = |text: &str| -> (Vec<(Option<i32>, String)>, String) {
        let mut done = Vec::new();
        let mut rest = match text.find(&format!("{token} 0\n")) {
            Some(at) => &text[at..],
            None => return (done, String::new()),
        };
        loop {
            let begin = format!("{token} {}\n", done.len());
            let Some(body) = rest.strip_prefix(&begin) else { return (done, String::new()) };
            let end = format!("\n{token}-end {}", done.len());
            let Some(at) = body.find(&end) else { return (done, body.to_owned()) };
            let tail = &body[at + end.len()..];
            let Some(line_end) = tail.find('\n') else { return (done, body[..at].to_owned()) };
            done.push((tail[..line_end].trim().parse::<i32>().ok(), body[..at].to_owned()));
            rest = &tail[line_end + 1..];
        }
    };
    let (outs, running_out) = ended(&whole.stdout);
    let (errs, running_err) = ended(&whole.stderr);
    let outputs = outs.into_iter().zip(errs).map(|((code, stdout), (_, stderr))| Output { code, stdout, stderr }).collect();
    (outputs, format!("{running_err}{running_out}"))
}

/// Each command's text on one stream, with its exit status when the stream says it.
/// Anything printed before the first marker (a login shell's greeting) is skipped.
fn sections(token: &str, text: &str) -> Result<Vec<(Option<i32>, String)>, String> {
    let mut sections = Vec::new();
    let first = format!("{token} 0\n");
    let mut rest = match text.find(&first) {
        Some(at) => &text[at..],
        None => return Ok(sections),
    };
    while !rest.is_empty() {
        let begin = format!("{token} {}\n", sections.len());
        rest =
            rest.strip_prefix(&begin).ok_or_else(|| format!("the script's output lost its framing before command {}", sections.len()))?;
        let end = format!("\n{token}-end {}", sections.len());
        let at = rest.find(&end).ok_or_else(|| format!("command {} of the script did not finish", sections.len()))?;
        let body = rest[..at].to_owned();
        let tail = &rest[at + end.len()..];
        let line_end = tail.find('\n').ok_or("a script end marker without its newline")?;
        let code = tail[..line_end].trim().parse::<i32>().ok().filter(|c| *c < 128);
        sections.push((code, body));
        rest = &tail[line_end + 1..];
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::command::shown;
    use crate::step::StepKind;

    fn user_home() -> Access {
        Access { home: Some("~hello".into()), sudo: None }
    }

    #[test]
    fn entering_a_host_as_the_app_user_or_through_sudo() {
        assert_eq!(user_home().entry(), "sh -s");
        assert_eq!(user_home().enter().unwrap(), "kai_enter ~hello");
        let sudo = Access { home: Some("/srv/my app".into()), sudo: Some("hello".into()) };
        assert_eq!(sudo.entry(), "sudo -n -u hello -- sh -s");
        assert_eq!(sudo.enter().unwrap(), "kai_enter '/srv/my app'");
        let upload = Command::new(["kai_receive", "x", "sha256sum", "ab"]);
        assert_eq!(sudo.single_shown(&upload), "kai_enter '/srv/my app' && kai_receive x sha256sum ab");
        assert!(sudo.single(&upload).starts_with("sudo -n -u hello -- sh -c 'kai_enter() {"));
        assert!(sudo.single(&upload).ends_with(r"kai_enter '\''/srv/my app'\'' && kai_receive x sha256sum ab'"));
        assert_eq!(Access { home: Some("~$(id)".into()), sudo: None }.enter().unwrap(), "kai_enter '~$(id)'");
    }

    #[test]
    fn commands_go_in_one_script_uploads_and_kai_steps_alone() {
        let run = |argv: &[&str]| Step::run(StepKind::Prepare, Command::new(argv.iter().copied()));
        let upload = Step::new(StepKind::Fetch, Action::Upload { local: "/a".into(), command: Command::new(["true"]) });
        let wait = Step::new(StepKind::Drain, Action::Wait(std::time::Duration::from_secs(1)));
        let steps = [run(&["a"]), run(&["b"]), upload.clone(), run(&["c"]), wait.clone(), run(&["d"])];
        let grouped = sessions(&steps);
        assert_eq!(
            grouped,
            [
                Session::Script(vec![&steps[0], &steps[1]]),
                Session::Upload(&upload),
                Session::Script(vec![&steps[3]]),
                Session::Kai(&wait),
                Session::Script(vec![&steps[5]])
            ]
        );
    }

    #[test]
    fn the_commands_of_a_script_are_their_plan_text() {
        let commands = [Command::new(["mkdir", "-p", "a b"]), Command::new(["cat"]).stdin("x\n) </dev/null\nKAI\n")];
        let refs: Vec<&Command> = commands.iter().collect();
        let text = script(&user_home(), &refs, "T0K", &shown);
        assert!(text.starts_with(&format!("{HELPERS}\nkai_enter ~hello\n")), "{text}");
        let shown_text: Vec<String> = commands.iter().map(ToString::to_string).collect();
        assert_eq!(commands_in(&text, "T0K"), shown_text);
    }

    #[test]
    fn parses_outputs_and_refuses_garbage() {
        let whole = Output {
            code: Some(0),
            stdout: "greeting\nT 0\nout\nT-end 0 0\nT 1\n\nT-end 1 3\n".into(),
            stderr: "T 0\n\nT-end 0\nT 1\nno\nT-end 1\n".into(),
        };
        let outputs = parse_outputs("T", &whole).unwrap();
        assert_eq!(outputs.len(), 2);
        assert_eq!((outputs[0].code, outputs[0].stdout.as_str()), (Some(0), "out"));
        assert_eq!((outputs[1].code, outputs[1].stderr.as_str()), (Some(3), "no"));
        let broken = Output { code: Some(0), stdout: "T 0\nno end".into(), stderr: "T 0\n\nT-end 0\n".into() };
        assert!(parse_outputs("T", &broken).is_err());
        let refused = Output { code: Some(1), stdout: String::new(), stderr: "sh: cd: can't cd to ~x\n".into() };
        assert!(parse_outputs("T", &refused).unwrap_err().contains("can't cd"));
        assert_eq!(parse_outputs("T", &Output { code: Some(0), ..Output::default() }).unwrap(), []);
    }

    #[test]
    fn a_cut_script_tells_which_commands_ended_and_what_the_running_one_said() {
        let cut = Output {
            code: None,
            stdout: "T 0\nok\nT-end 0 0\nT 1\nstopping...".into(),
            stderr: "T 0\n\nT-end 0\nT 1\nstill here\n".into(),
        };
        let (ended, running) = partial_outputs("T", &cut);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].stdout, "ok");
        assert_eq!(running, "still here\nstopping...");
    }
}
