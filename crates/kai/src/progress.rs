//! What a person sees while kai works: one timestamped line per step on stderr
//! (`<time> <env> <app> <host> <step> ok|failed`), warnings, and the final summary.

use std::io::Write;
use std::time::SystemTime;

use crate::deploy::{AppReport, AppResult};

pub struct Progress {
    env: String,
    quiet: bool,
}

impl Progress {
    pub fn new(env: &str, quiet: bool) -> Progress {
        Progress { env: env.to_owned(), quiet }
    }

    pub fn step(&self, app: &str, host: &str, step: &str, ok: bool) {
        if self.quiet && ok {
            return;
        }
        let word = if ok { "ok" } else { "failed" };
        self.line(&format!("{} {} {app} {host} {step} {word}", now(), self.env));
    }

    pub fn note(&self, text: &str) {
        if !self.quiet {
            self.line(&format!("{} {} {text}", now(), self.env));
        }
    }

    pub fn warn(&self, text: &str) {
        self.line(&format!("{} {} warning: {text}", now(), self.env));
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The table printed after a deploy: one row per app, then the details of failures.
pub fn summary(env: &str, reports: &[AppReport]) -> String {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            let change = if r.result == AppResult::UpToDate { r.to.clone() } else { format!("{} -> {}", r.from, r.to) };
            [r.app.clone(), change, r.hosts.join(","), r.result.word().to_owned(), format!("{:.1}s", r.duration.as_secs_f64())]
        })
        .collect();
    let header = ["app", "version", "hosts", "result", "time"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!("\n{env}:\n");
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
        out.push_str(&format!("  {}\n", cells.join("  ").trim_end()));
    }
    for r in reports {
        out.push_str(&details(r));
    }
    out
}

fn details(r: &AppReport) -> String {
    let mut out = String::new();
    if let AppResult::Locked(owner) = &r.result {
        out.push_str(&format!(
            "\n{}: locked by {owner}\n  hint: wait for that deploy, or `kai unlock <env> {}` if it is dead\n",
            r.app, r.app
        ));
    }
    if let Some(f) = &r.failure {
        out.push_str(&format!(
            "\n{}: {} failed on {}: {}\n  $ {}\n",
            r.app,
            f.step,
            f.host,
            f.reason,
            f.command.lines().next().unwrap_or("")
        ));
        for line in f.output.lines() {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    if let Some(message) = &r.message {
        out.push_str(&format!("{}{}: {message}\n", if r.failure.is_some() { "" } else { "\n" }, r.app));
    }
    out
}
