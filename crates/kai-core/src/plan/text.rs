//! The plan as text: what `kai plan` and `kai deploy --dry-run` print. It reads the
//! same [`AppPlan`] the executor runs, and shows each host's steps grouped as they
//! are sent ([`crate::shell::session`]): every script opens with the line that enters the
//! app home, every command is the text sent; kai's own steps are marked `[kai]`.

use std::fmt::{self, Write};

use crate::plan::{AppPlan, HostSteps, Role, Step};
use crate::shell::session::{sessions, Access, Session};

impl fmt::Display for AppPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_header(f)?;
        if self.is_noop() {
            return writeln!(f, "  nothing to do: {} already runs on every host", self.version);
        }
        let width = self.targets.iter().map(|t| t.host.len()).max().unwrap_or(0);
        let section = |f: &mut fmt::Formatter<'_>, title: &str, phases: &[HostSteps]| -> fmt::Result {
            if phases.is_empty() {
                return Ok(());
            }
            writeln!(f, "\n  {title}")?;
            phases.iter().try_for_each(|p| write_steps(f, &p.host, self.access(&p.host), &p.steps, width))
        };
        section(f, "lock, then read each host again (the first host alone, then the others at once)", &self.lock)?;
        section(f, "stage (every host at once; nothing running changes)", &self.stage)?;
        if !self.roll.is_empty() {
            let pace =
                if self.waves.iter().all(|w| w.len() == 1) { "one server at a time" } else { "in waves, the servers of a wave at once" };
            writeln!(f, "\n  roll ({pace}; on failure: {})", on_failure(self))?;
            for (n, wave) in self.waves.iter().enumerate() {
                if wave.len() > 1 || self.waves.iter().any(|w| w.len() > 1) {
                    let hosts: Vec<&str> = wave.iter().map(|&i| self.roll[i].host.as_str()).collect();
                    writeln!(f, "    wave {}: {}", n + 1, hosts.join(", "))?;
                }
                for server in wave.iter().map(|&i| &self.roll[i]) {
                    let access = self.access(&server.host);
                    write_steps(f, &server.host, access, &server.roll, width)?;
                    writeln!(f, "    {:width$}  if {} fails, undo:", "", server.host)?;
                    write_steps(f, &server.host, access, &server.undo, width + 4)?;
                }
            }
        }
        section(f, "standby (switched, left disabled and stopped)", &self.standby)?;
        writeln!(f, "\n  finish: a result line in .kai/history.jsonl on every host switched, then")?;
        section(f, "prune old releases", &self.finish)?;
        section(f, "unlock", &self.unlock)?;
        section(f, "if staging fails: clean up, then unlock", &self.abort)
    }
}

impl AppPlan {
    /// The plan in a few lines: per host where it goes from and to, then each phase
    /// with the hosts it touches and the kinds of steps it runs. The commands
    /// themselves are in the full text ([`Display`](fmt::Display)).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, f: &mut String) -> fmt::Result {
        struct Header<'a>(&'a AppPlan);
        impl fmt::Display for Header<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_header(f)
            }
        }
        write!(f, "{}", Header(self))?;
        if self.is_noop() {
            return writeln!(f, "  nothing to do: {} already runs on every host", self.version);
        }
        let phase = |f: &mut String, title: &str, phases: &[HostSteps]| -> fmt::Result {
            if phases.is_empty() {
                return Ok(());
            }
            let hosts: Vec<&str> = phases.iter().map(|p| p.host.as_str()).collect();
            writeln!(f, "  {title:8} {}: {}", hosts.join(", "), kinds(phases.iter().flat_map(|p| &p.steps)))
        };
        phase(f, "stage", &self.stage)?;
        for (n, wave) in self.waves.iter().enumerate() {
            let servers: Vec<_> = wave.iter().map(|&i| &self.roll[i]).collect();
            let hosts: Vec<&str> = servers.iter().map(|s| s.host.as_str()).collect();
            let title = if n == 0 { "roll" } else { "then" };
            writeln!(f, "  {title:8} {}: {}", hosts.join(", "), kinds(servers.iter().flat_map(|s| &s.roll)))?;
        }
        if !self.roll.is_empty() {
            writeln!(f, "  {:8} on failure: {}", "", on_failure(self))?;
        }
        phase(f, "standby", &self.standby)?;
        phase(f, "finish", &self.finish)?;
        Ok(())
    }

    fn write_header(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            crate::history::Kind::Rollback => {
                writeln!(f, "{} back to {} in {} (a rollback: nothing is staged)", self.app, self.version, self.env)?
            }
            _ => writeln!(f, "{} {} in {}", self.app, self.version, self.env)?,
        }
        if let Some(local) = &self.local {
            writeln!(f, "  a {}", local.describe())?;
        }
        if let Some(from) = &self.promoted_from {
            writeln!(f, "  promoted from {from}: the version and artifact its active hosts run")?;
        }
        let width = self.targets.iter().map(|t| t.host.len()).max().unwrap_or(0);
        for t in &self.targets {
            let role = match t.role {
                Role::Active => "active ",
                Role::Standby => "standby",
            };
            let from = t.from.as_deref().unwrap_or("(none)");
            let change = match (t.change, t.in_place(&self.version)) {
                (true, true) => format!("{from}, restarted"),
                (true, false) if self.downgrades(t) => format!("{from} -> {} (a downgrade)", self.version),
                (true, false) => format!("{from} -> {}", self.version),
                (false, _) => format!("{from} (up to date)"),
            };
            writeln!(f, "  {:width$}  {role}  {change:24}  home {}  (scripts go to `{}`)", t.host, t.home, t.access.entry())?;
            for why in &t.why {
                writeln!(f, "  {:width$}    {why}", "")?;
            }
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }

    /// A deploy (not a rollback) to a version lower, in Maven order, than the one the
    /// host runs: said wherever the change is shown, since it is rarely meant.
    pub fn downgrades(&self, target: &crate::plan::Target) -> bool {
        use crate::version::MavenVersion;
        self.action == crate::history::Kind::Deploy
            && target.from.as_deref().is_some_and(|from| MavenVersion::parse(&self.version) < MavenVersion::parse(from))
    }

    fn access(&self, host: &str) -> &Access {
        static NONE: Access = Access { home: None, sudo: None };
        self.target(host).map_or(&NONE, |t| &t.access)
    }
}

/// The kinds of `steps`, each once, in order: "drain, stop, switch, start, health"
/// (kai's own bookkeeping, the "started" history line, left out).
fn kinds<'s>(steps: impl IntoIterator<Item = &'s Step>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for step in steps.into_iter().filter(|s| s.kind != crate::step::StepKind::Started) {
        if !seen.contains(&step.kind.word()) {
            seen.push(step.kind.word());
        }
    }
    seen.join(", ")
}

fn on_failure(plan: &AppPlan) -> &'static str {
    match plan.on_failure {
        crate::config::OnFailure::Rollback => "undo that server, then every server already switched",
        crate::config::OnFailure::Halt => "undo that server only",
    }
}

/// A host's steps as they are sent: each script's first line enters the app home.
fn write_steps(f: &mut fmt::Formatter<'_>, host: &str, access: &Access, steps: &[Step], width: usize) -> fmt::Result {
    for session in sessions(steps) {
        match session {
            Session::Script(steps) => {
                if let Some(enter) = access.enter() {
                    write_text(f, host, &enter, width)?;
                }
                for step in steps {
                    write_text(f, host, &step.action.to_string(), width)?;
                }
            }
            Session::Upload(step) => {
                let crate::step::Action::Upload { local, command } = &step.action else { continue };
                let text = format!("{} < {}", access.single_shown(command), crate::shell::command::quote(&local.display().to_string()));
                write_text(f, host, &text, width)?;
            }
            Session::Kai(step) => write_text(f, host, &step.action.to_string(), width)?,
        }
    }
    Ok(())
}

fn write_text(f: &mut fmt::Formatter<'_>, host: &str, text: &str, width: usize) -> fmt::Result {
    let mut lines = text.lines();
    writeln!(f, "    {host:>width$}$ {}", lines.next().unwrap_or(""))?;
    for line in lines {
        let mut indent = String::new();
        write!(indent, "    {:width$}  ", "")?;
        writeln!(f, "{indent}{line}")?;
    }
    Ok(())
}
