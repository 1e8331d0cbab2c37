//! What happened to each app of a run, as a person reads it (the summary table and
//! the details of failures) and as the rest of kai passes it on (`--json`, notices).

pub use kai_core::deploy::AppResult;
use kai_core::deploy::Report;
use kai_core::table::{Table, Tone};

/// The table printed after a deploy: one row per app, then the details of failures.
pub fn summary(env: &str, reports: &[Report], color: bool) -> String {
    // What a host said (a version, a reason) reaches the terminal escaped: the table does it.
    let mut table = Table::new(&["app", "version", "hosts", "result", "time"]);
    for r in reports {
        let change = if r.result == AppResult::UpToDate { r.to.clone() } else { format!("{} -> {}", r.from, r.to) };
        let plain = |text: String| (text, Tone::Plain);
        table.row_toned([
            plain(r.app.clone()),
            plain(change),
            plain(r.hosts_cell()),
            (r.result.word().to_owned(), tone(&r.result)),
            plain(format!("{:.1}s", r.duration.as_secs_f64())),
        ]);
    }
    let mut out = format!("\n{env}:\n");
    for line in table.render_in(color).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    for r in reports {
        out.push_str(&details(env, r));
    }
    out.push_str(&next_commands(env, reports));
    out
}

/// After a failure or a stop: the commands that show what happened and bring the hosts
/// where they should be, each once, with what it does.
fn next_commands(env: &str, reports: &[Report]) -> String {
    let mut next: Vec<(String, String)> = Vec::new();
    let mut add = |command: String, does: String| {
        if !next.iter().any(|(c, _)| *c == command) {
            next.push((command, does));
        }
    };
    // A version kai read from the hosts goes into a command only when it is one.
    let version = |v: &str| kai_core::ident::is_valid(v).then(|| v.to_owned());
    for r in reports.iter().filter(|r| !r.result.is_ok()) {
        let app = &r.app;
        match r.result {
            AppResult::Locked(_) | AppResult::Refused => continue,
            AppResult::Interrupted => {
                if let (Some(to), None) = (version(&r.to), &r.local) {
                    add(
                        format!("kai deploy {env} {app}@{to}"),
                        "finishes what was stopped (servers already switched are up to date)".into(),
                    );
                }
                if let Some(from) = version(&r.from) {
                    add(format!("kai deploy {env} {app}@{from}"), format!("or puts the servers switched back on {from}"));
                }
            }
            AppResult::Halted => {
                if let Some(from) = version(&r.from) {
                    add(format!("kai deploy {env} {app}@{from}"), format!("puts the servers left on the new release back on {from}"));
                }
            }
            AppResult::RollbackFailed => {
                add(
                    format!("kai unlock {env} {app}"),
                    "once the host in an unknown state is looked after (the lock is kept until then)".into(),
                );
            }
            _ => {}
        }
        add(format!("kai status {env} {app}"), "where each host stands now".into());
        add(format!("kai history {env} {app}"), "what happened, host by host".into());
    }
    if next.is_empty() {
        return String::new();
    }
    let width = next.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut out = String::from(
        "
next:
",
    );
    for (command, does) in next {
        out.push_str(&format!(
            "  {command:width$}  {does}
"
        ));
    }
    out
}

/// How a result reads: done, stopped, or failed.
pub fn tone(result: &AppResult) -> Tone {
    match result {
        AppResult::Deployed | AppResult::Reverted | AppResult::UpToDate => Tone::Good,
        AppResult::Locked(_) | AppResult::Interrupted | AppResult::Refused => Tone::Warn,
        _ => Tone::Bad,
    }
}

fn details(env: &str, r: &Report) -> String {
    let mut out = String::new();
    let promoted = r.promoted_from.iter().map(|from| format!("{} was promoted from {from}: the version and artifact its hosts run", r.to));
    let canary = r.canary.iter().map(|v| format!("canary {}: {}", v.verdict, v.reason));
    let notes = r.local.iter().map(|l| format!("{} is a {}", r.to, l.describe())).chain(promoted).chain(canary);
    for note in notes.chain(r.notes.iter().cloned()) {
        out.push_str(&format!("\n{}: note: {note}", r.app));
    }
    if !r.notes.is_empty() || r.local.is_some() || r.promoted_from.is_some() || r.canary.is_some() {
        out.push('\n');
    }
    if let AppResult::Locked(owner) = &r.result {
        out.push_str(&format!("\n{}: locked by {owner}\n", r.app));
        let hint = r.message.clone().unwrap_or_else(|| {
            format!(
                "wait for that deploy to end; `kai lock {env} {}` shows it, `kai unlock {env} {}` breaks it if it is dead",
                r.app, r.app
            )
        });
        out.push_str(&format!("  hint: {hint}\n"));
        return out;
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

/// 128 + the signal when a stop was asked for; else 0 when every app is deployed or up
/// to date; 1 when one failed; else 2 when a saved plan was refused; else 3 when the
/// only trouble is a lock held by someone else.
pub fn exit_code(reports: &[Report]) -> u8 {
    let fine = |r: &Report| r.result.is_ok();
    if crate::interrupt::requested() {
        crate::interrupt::exit_code()
    } else if reports.iter().all(fine) {
        0
    } else if reports.iter().any(|r| !fine(r) && !matches!(r.result, AppResult::Locked(_) | AppResult::Refused | AppResult::Interrupted)) {
        1
    } else if reports.iter().any(|r| r.result == AppResult::Refused) {
        2
    } else if reports.iter().any(|r| matches!(r.result, AppResult::Locked(_))) {
        3
    } else {
        1
    }
}
