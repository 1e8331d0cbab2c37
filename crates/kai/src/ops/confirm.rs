//! The one confirmation: before a change to a protected environment (or breaking a
//! lock), the person reads what is about to happen and types a name to go on. Without
//! a terminal to ask on (and without `--yes`), kai refuses before it touches anything.

use kai_core::table::Tone;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use kai_core::config::{App, Config};
use kai_core::facts::HostFacts;
use kai_core::plan::{placements, Placement, Role};

use crate::error::CliError;
use crate::settings::Settings;
use crate::transport::{Place, Transport};

/// What to ask.
pub struct Prompt<'a> {
    /// The first line: `prod is protected. About to deploy:`.
    pub heading: String,
    /// What is about to happen, one indented line each.
    pub lines: &'a [String],
    /// Said after the lines, when there is something to beware of.
    pub warning: Option<&'a str>,
    /// How the prompt names what to type, and the answer that goes on.
    pub type_what: String,
    pub expected: &'a str,
    /// What a wrong answer leaves untouched: `nothing was changed`.
    pub nothing: &'a str,
}

/// Refuses with `refusal` when there is no terminal to ask on.
pub fn can_ask(settings: &Settings, refusal: impl FnOnce() -> CliError) -> Result<(), CliError> {
    if settings.stdin_is_terminal {
        Ok(())
    } else {
        Err(refusal())
    }
}

/// A protected environment asks on a terminal; without one (and without `--yes`) kai
/// refuses before it touches anything.
pub fn can_ask_protected(env: &str, what: &str, settings: &Settings) -> Result<(), CliError> {
    can_ask(settings, || {
        CliError::usage(
            format!("{env} is protected and there is no terminal to confirm on; nothing was changed"),
            Some(format!("pass --yes to {what} without confirmation")),
        )
    })
}

/// Shows the prompt on standard error and reads the answer from standard input.
pub fn ask(prompt: &Prompt<'_>) -> Result<(), CliError> {
    let mut err = std::io::stderr().lock();
    let color = crate::color::stderr();
    let _ = writeln!(err, "{}", Tone::Warn.paint(&prompt.heading, color));
    for line in prompt.lines {
        // What changes stands out: the version arrow's target, and a downgrade.
        let line = match line.split_once(" -> ") {
            Some((from, to)) if color => {
                let (to, downgrade) = to.split_once("  (a DOWNGRADE)").map_or((to, false), |(to, _)| (to, true));
                let downgrade = if downgrade { format!("  {}", Tone::Bad.paint("(a DOWNGRADE)", true)) } else { String::new() };
                format!("{from} -> {}{downgrade}", Tone::Good.paint(to, true))
            }
            _ => line.clone(),
        };
        let _ = writeln!(err, "  {line}");
    }
    if let Some(warning) = prompt.warning {
        let _ = writeln!(err, "{warning}");
    }
    let _ = write!(err, "Type {} to go on: ", prompt.type_what);
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| CliError::Failed(e.into()))?;
    if answer.trim() == prompt.expected {
        Ok(())
    } else {
        Err(CliError::usage(format!("confirmation {:?} does not match {}; {}", answer.trim(), prompt.expected, prompt.nothing), None))
    }
}

/// On a protected environment, the user types its name to go on: `what` is about to
/// happen, as `lines` show.
pub fn ask_protected(env: &str, what: &str, lines: &[String]) -> Result<(), CliError> {
    ask(&Prompt {
        heading: format!("{env} is protected. About to {what}:"),
        lines,
        warning: None,
        type_what: format!("the environment name ({env})"),
        expected: env,
        nothing: "nothing was changed",
    })
}

/// What the confirmation shows of one app: the version its hosts run now (read from
/// them, without locking; from `ahead` when it read them) and the one they get, its
/// active and standby hosts.
pub async fn preview<T: Transport>(
    ahead: Option<&crate::fleet::ReadAhead>,
    transport: &T,
    config: &Config,
    env: &str,
    app: &App,
    only: &[String],
    target: impl FnOnce(&BTreeMap<String, HostFacts>) -> String,
) -> Vec<String> {
    let placements = match placements(config, env, app, only) {
        Ok(placements) => placements,
        Err(e) => return vec![format!("{}: {e}", app.name)],
    };
    let places: Vec<Place> = placements.iter().map(Place::from).collect();
    let mut facts = BTreeMap::new();
    let mut unread = None;
    for (place, read) in places.iter().zip(crate::fleet::probe_ahead(ahead, transport, app, &places).await) {
        match read {
            Ok(found) => {
                facts.insert(place.host.clone(), found);
            }
            Err(failure) => unread = unread.or(Some(failure)),
        }
    }
    let (current, new) = match unread {
        None => (current_versions(&facts), target(&facts)),
        Some(failure) => (format!("? ({} could not be read: {})", failure.host, failure.reason), target(&BTreeMap::new())),
    };
    preview_lines(&app.name, &placements, &current, &new, true)
}

/// `downgrades`: whether a version lower than the hosts' is pointed out (a deploy's
/// preview; a rollback goes lower on purpose).
pub fn preview_lines(app: &str, placements: &[Placement], current: &str, new: &str, downgrades: bool) -> Vec<String> {
    let hosts = |role: Role| placements.iter().filter(|p| p.role == role).map(|p| p.host.as_str()).collect::<Vec<_>>().join(", ");
    // A version lower than one the hosts run, in Maven order: rarely meant, so said.
    let lower = |v: &str| {
        let v = v.trim();
        v.starts_with(|c: char| c.is_ascii_digit())
            && kai_core::version::MavenVersion::parse(new) < kai_core::version::MavenVersion::parse(v)
    };
    let downgrade = if downgrades && current.split(", ").any(lower) { "  (a DOWNGRADE)" } else { "" };
    let mut lines = vec![format!("{app}  {current} -> {new}{downgrade}"), format!("  hosts:   {}", hosts(Role::Active))];
    let standby = hosts(Role::Standby);
    if !standby.is_empty() {
        lines.push(format!("  standby: {standby}"));
    }
    lines
}

/// The versions `current` points to on the hosts: one, several (they differ), or none.
pub fn current_versions(facts: &BTreeMap<String, HostFacts>) -> String {
    let mut versions: Vec<&str> = facts.values().filter_map(|f| f.current.as_deref()).collect();
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        "(none)".into()
    } else {
        versions.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(host: &str, role: Role) -> Placement {
        let access = kai_core::shell::session::Access { home: Some("~hello".into()), sudo: None };
        Placement { host: host.into(), role, home: "~".into(), user: "hello".into(), login: "hello".into(), access }
    }

    #[test]
    fn a_preview_shows_the_change_the_hosts_and_the_standby() {
        let placements = [placement("web1", Role::Active), placement("web2", Role::Active), placement("web3", Role::Standby)];
        assert_eq!(
            preview_lines("hello", &placements, "1.0.0", "1.1.0", true),
            ["hello  1.0.0 -> 1.1.0", "  hosts:   web1, web2", "  standby: web3"]
        );
        assert_eq!(preview_lines("hello", &placements[..1], "(none)", "1.1.0", true), ["hello  (none) -> 1.1.0", "  hosts:   web1"]);
        assert_eq!(
            preview_lines("hello", &placements[..1], "1.10.0, 1.2.0", "1.9.0", true)[0],
            "hello  1.10.0, 1.2.0 -> 1.9.0  (a DOWNGRADE)"
        );
    }

    #[test]
    fn current_versions_are_listed_once_each() {
        let at = |v: Option<&str>| HostFacts { current: v.map(Into::into), ..HostFacts::default() };
        let facts: BTreeMap<String, HostFacts> =
            [("a", at(Some("1.1.0"))), ("b", at(Some("1.0.0"))), ("c", at(Some("1.1.0"))), ("d", at(None))]
                .into_iter()
                .map(|(h, f)| (h.to_owned(), f))
                .collect();
        assert_eq!(current_versions(&facts), "1.0.0, 1.1.0");
        assert_eq!(current_versions(&BTreeMap::new()), "(none)");
    }
}
