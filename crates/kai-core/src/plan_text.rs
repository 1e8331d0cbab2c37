//! The plan as text: what `kai plan` and `kai deploy --dry-run` print. It reads the
//! same [`AppPlan`] the executor runs, so what it shows is what runs.

use std::fmt::{self, Write};

use crate::plan::{AppPlan, HostSteps, Role, Step};

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
            phases.iter().try_for_each(|p| write_steps(f, &p.host, &p.steps, width))
        };
        section(f, "lock (every host at once)", &self.lock)?;
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
                    write_steps(f, &server.host, &server.roll, width)?;
                    writeln!(f, "    {:width$}  if {} fails, undo:", "", server.host)?;
                    write_steps(f, &server.host, &server.undo, width + 4)?;
                }
            }
        }
        section(f, "standby (switched, left disabled and stopped)", &self.standby)?;
        writeln!(f, "\n  finish: record one line in .kai/history.jsonl on every changed host, then")?;
        section(f, "prune old releases", &self.finish)?;
        section(f, "unlock", &self.unlock)?;
        section(f, "if staging fails: clean up, then unlock", &self.abort)
    }
}

impl AppPlan {
    fn write_header(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.action {
            crate::history::Action::Rollback => {
                writeln!(f, "{} back to {} in {} (a rollback: nothing is staged)", self.app, self.version, self.env)?
            }
            _ => writeln!(f, "{} {} in {}", self.app, self.version, self.env)?,
        }
        let width = self.targets.iter().map(|t| t.host.len()).max().unwrap_or(0);
        for t in &self.targets {
            let role = match t.role {
                Role::Active => "active ",
                Role::Standby => "standby",
            };
            let from = t.from.as_deref().unwrap_or("(none)");
            let change = if t.change { format!("{from} -> {}", self.version) } else { format!("{from} (up to date)") };
            writeln!(f, "  {:width$}  {role}  {change:24}  home {}", t.host, t.home)?;
        }
        Ok(())
    }
}

fn on_failure(plan: &AppPlan) -> &'static str {
    match plan.on_failure {
        crate::config::OnFailure::Rollback => "undo that server, then every server already switched",
        crate::config::OnFailure::Halt => "undo that server only",
    }
}

fn write_steps(f: &mut fmt::Formatter<'_>, host: &str, steps: &[Step], width: usize) -> fmt::Result {
    for step in steps {
        let text = step.action.to_string();
        let mut lines = text.lines();
        writeln!(f, "    {host:>width$}$ {}", lines.next().unwrap_or(""))?;
        for line in lines {
            let mut indent = String::new();
            write!(indent, "    {:width$}  ", "")?;
            writeln!(f, "{indent}{line}")?;
        }
    }
    Ok(())
}
