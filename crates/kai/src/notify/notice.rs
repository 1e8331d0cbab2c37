//! The notice itself, built by pure functions from what a command did: the subject
//! line an inbox lists, the text people read (mail body, chat message) and the
//! structured body tools read. No clock, no network, no secrets: only what the
//! reports and the settings say.

use serde_json::{json, Value};

use kai_core::deploy::{AppResult, Report};

/// Who ran the command, and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    pub user: String,
    pub machine: String,
}

/// One notice, ready for every channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// `[kai] prod: jmsadmin 10.59.0→10.60.0, telenormobil 3.2.0→3.3.0 ok`
    pub subject: String,
    /// The body: who, then one paragraph per app.
    pub body: String,
    /// `{"env", "user", "machine", ...}`: the `kai` member of the webhook's JSON.
    pub data: Value,
    /// What the failing steps printed, for the mail only: a mail goes to the
    /// addresses configured, a chat message to everyone in the channel.
    pub output: String,
}

impl Notice {
    /// What a mail says: the body, then what each failing step printed.
    pub fn mail_body(&self) -> String {
        if self.output.is_empty() {
            self.body.clone()
        } else {
            format!("{}\n{}", self.body, self.output)
        }
    }

    /// What a chat shows: the subject line, then the body.
    pub fn chat_text(&self) -> String {
        format!("{}\n{}", self.subject, self.body)
    }

    /// The webhook's JSON: `text` is what Slack, Mattermost and Teams display.
    pub fn webhook_json(&self) -> Value {
        json!({ "text": self.chat_text(), "kai": self.data })
    }
}

/// Apps named in a subject line before the rest are counted ("and 3 more").
const SUBJECT_APPS: usize = 4;

/// The notice for one `kai deploy` command: every app in one notice.
pub fn run_notice(command: &str, env: &str, who: &Who, reports: &[Report]) -> Notice {
    let ok = reports.iter().all(|r| r.result.is_ok());
    let failed = reports.iter().filter(|r| !r.result.is_ok()).count();
    let outcome = if ok { "ok".to_owned() } else { format!("{failed} of {} failed", reports.len()) };
    let mut body = format!("kai {command} in {env} by {} on {}: {outcome}\n", who.user, who.machine);
    for report in reports {
        body.push('\n');
        body.push_str(&app_paragraph(report));
    }
    let mut output = String::new();
    for (r, f) in reports.iter().filter_map(|r| Some((r, r.failure.as_ref()?))).filter(|(_, f)| !f.output.is_empty()) {
        output.push_str(&format!("{} on {}, the end of what {} printed:\n", r.app, f.host, f.step));
        for line in f.output.lines() {
            output.push_str(&format!("  | {line}\n"));
        }
    }
    Notice {
        subject: format!("[kai] {env}: {} {}", subject_apps(reports), if ok { "ok" } else { "FAILED" }),
        body,
        output,
        data: json!({
            "command": command,
            "env": env,
            "user": who.user,
            "machine": who.machine,
            "ok": ok,
            "apps": reports.iter().map(app_json).collect::<Vec<_>>(),
        }),
    }
}

/// The notice `kai notify --test <env>` sends.
pub fn test_notice(env: &str, who: &Who) -> Notice {
    Notice {
        subject: format!("[kai] {env}: test notice"),
        body: format!("kai notify --test {env} by {} on {}: deploys to {env} will be announced here.\n", who.user, who.machine),
        data: json!({
            "command": "test",
            "env": env,
            "user": who.user,
            "machine": who.machine,
            "ok": true,
            "apps": [],
        }),
        output: String::new(),
    }
}

/// `jmsadmin 10.59.0→10.60.0, telenormobil 3.2.0→3.3.0`; long lists end in "and N more".
fn subject_apps(reports: &[Report]) -> String {
    let shown = if reports.len() > SUBJECT_APPS + 1 { SUBJECT_APPS } else { reports.len() };
    let mut parts: Vec<String> = reports[..shown].iter().map(subject_app).collect();
    if shown < reports.len() {
        parts.push(format!("and {} more", reports.len() - shown));
    }
    parts.join(", ")
}

fn subject_app(r: &Report) -> String {
    if r.result == AppResult::UpToDate {
        format!("{} {}", r.app, r.to)
    } else {
        format!("{} {}→{}", r.app, from(r).replace(", ", "/"), r.to)
    }
}

/// `1.0.0`, `1.0.0, 1.1.0` when the hosts differ, `-` on a first install.
fn from(r: &Report) -> &str {
    if r.from.is_empty() {
        "-"
    } else {
        &r.from
    }
}

/// ```text
/// telenormobil 3.2.0 → 3.3.0: failed, put back on app03 put back in 12.3s
///   failed on app03 at health: exit status 1
/// ```
fn app_paragraph(r: &Report) -> String {
    let change = if r.result == AppResult::UpToDate { r.to.clone() } else { format!("{} → {}", from(r), r.to) };
    let hosts = if r.hosts.is_empty() { "no host".to_owned() } else { r.hosts_cell().replace(',', ", ") };
    let mut out = format!("{} {change}: {} on {hosts} in {:.1}s\n", r.app, r.result.word(), r.duration.as_secs_f64());
    if let AppResult::Locked(owner) = &r.result {
        out.push_str(&format!("  locked by {owner}\n"));
    }
    if let Some(local) = &r.local {
        out.push_str(&format!("  {}\n", local.describe()));
    }
    if let Some(from) = &r.promoted_from {
        out.push_str(&format!("  promoted from {from}\n"));
    }
    if let Some(v) = &r.canary {
        out.push_str(&format!("  canary {}: {}\n", v.verdict, v.reason));
    }
    if let Some(f) = &r.failure {
        out.push_str(&format!("  failed on {} at {}: {}\n", f.host, f.step, f.reason));
    }
    if let Some(message) = &r.message {
        out.push_str(&format!("  {message}\n"));
    }
    out
}

fn app_json(r: &Report) -> Value {
    json!({
        "app": r.app,
        "from": (!r.from.is_empty() && r.from != "-").then_some(&r.from),
        "to": r.to,
        "result": r.result.key(),
        "ok": r.result.is_ok(),
        "hosts": r.hosts,
        "duration_ms": u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
        "failure": r.failure.as_ref().map(|f| json!({ "host": f.host, "step": f.step, "reason": f.reason })),
        "message": r.message,
        "local": r.local,
        "promoted_from": r.promoted_from,
        "canary": r.canary,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use kai_core::outcome::{Reason, StepFailure};
    use kai_core::step::StepKind;

    fn who() -> Who {
        Who { user: "alice".into(), machine: "build01".into() }
    }

    fn report(app: &str, from: &str, to: &str, result: AppResult) -> Report {
        Report {
            app: app.into(),
            from: from.into(),
            to: to.into(),
            hosts: vec!["app01".into(), "app02".into()],
            result,
            duration: Duration::from_millis(12_340),
            failure: None,
            message: None,
            notes: Vec::new(),
            local: None,
            promoted_from: None,
            canary: None,
            outcomes: Default::default(),
            lock_kept: false,
        }
    }

    fn health_failure() -> StepFailure {
        StepFailure {
            host: "app02".into(),
            step: StepKind::Health,
            command: "curl http://10.1.0.12:8080/ready".into(),
            reason: Reason::Kai("no 2xx answer within 60s".into()),
            output: "connection refused".into(),
        }
    }

    #[test]
    fn the_subject_lists_every_app_and_says_ok() {
        let reports =
            [report("jmsadmin", "10.59.0", "10.60.0", AppResult::Deployed), report("telenormobil", "3.2.0", "3.3.0", AppResult::Deployed)];
        let notice = run_notice("deploy", "prod", &who(), &reports);
        assert_eq!(notice.subject, "[kai] prod: jmsadmin 10.59.0→10.60.0, telenormobil 3.2.0→3.3.0 ok");
    }

    #[test]
    fn one_failed_app_makes_the_subject_say_failed_and_the_body_says_where() {
        let mut failed = report("telenormobil", "3.2.0", "3.3.0", AppResult::RolledBack);
        failed.failure = Some(health_failure());
        failed.outcomes =
            [("app01".to_owned(), kai_core::history::Outcome::RolledBack), ("app02".to_owned(), kai_core::history::Outcome::RolledBack)]
                .into();
        let reports = [report("jmsadmin", "10.59.0", "10.60.0", AppResult::Deployed), failed];
        let notice = run_notice("deploy", "prod", &who(), &reports);
        assert_eq!(notice.subject, "[kai] prod: jmsadmin 10.59.0→10.60.0, telenormobil 3.2.0→3.3.0 FAILED");
        assert_eq!(
            notice.body,
            "kai deploy in prod by alice on build01: 1 of 2 failed\n\
             \n\
             jmsadmin 10.59.0 → 10.60.0: deployed on app01, app02 in 12.3s\n\
             \n\
             telenormobil 3.2.0 → 3.3.0: failed, put back on app01, app02 put back in 12.3s\n\
             \x20 failed on app02 at health: no 2xx answer within 60s\n"
        );
    }

    #[test]
    fn first_installs_up_to_date_apps_and_mixed_versions_read_well() {
        let reports = [
            report("hello", "-", "1.0.0", AppResult::Deployed),
            report("ssod-grensesnitt", "2.0.0", "2.0.0", AppResult::UpToDate),
            report("jmsadmin", "10.58.0, 10.59.0", "10.60.0", AppResult::Deployed),
        ];
        let notice = run_notice("deploy", "test", &who(), &reports);
        assert_eq!(notice.subject, "[kai] test: hello -→1.0.0, ssod-grensesnitt 2.0.0, jmsadmin 10.58.0/10.59.0→10.60.0 ok");
        assert!(notice.body.contains("\nssod-grensesnitt 2.0.0: up to date on app01, app02 in 12.3s\n"), "{}", notice.body);
        assert!(notice.body.contains("\njmsadmin 10.58.0, 10.59.0 → 10.60.0: deployed"), "{}", notice.body);
    }

    #[test]
    fn a_long_list_of_apps_is_cut_short_in_the_subject_only() {
        let reports: Vec<Report> = (1..=7).map(|i| report(&format!("app{i}"), "1.0", "1.1", AppResult::Deployed)).collect();
        let notice = run_notice("deploy", "prod", &who(), &reports);
        assert_eq!(notice.subject, "[kai] prod: app1 1.0→1.1, app2 1.0→1.1, app3 1.0→1.1, app4 1.0→1.1, and 3 more ok");
        assert!(notice.body.contains("app7 1.0 → 1.1: deployed"));
        let five: Vec<Report> = reports[..5].to_vec();
        assert!(run_notice("deploy", "prod", &who(), &five).subject.contains("app5 1.0→1.1 ok"));
    }

    #[test]
    fn an_app_that_could_not_be_had_says_why() {
        let mut unavailable = report("hello", "", "9.9.9", AppResult::Failed);
        unavailable.hosts.clear();
        unavailable.message = Some("no checksum for hello-9.9.9.tar.gz; nothing was touched".into());
        let notice = run_notice("deploy", "demo", &who(), &[unavailable]);
        assert_eq!(notice.subject, "[kai] demo: hello -→9.9.9 FAILED");
        assert!(notice
            .body
            .ends_with("hello - → 9.9.9: failed on no host in 12.3s\n  no checksum for hello-9.9.9.tar.gz; nothing was touched\n"));
    }

    #[test]
    fn the_structured_body_carries_every_fact() {
        let mut failed = report("telenormobil", "3.2.0", "3.3.0", AppResult::RolledBack);
        failed.failure = Some(health_failure());
        failed.outcomes =
            [("app01".to_owned(), kai_core::history::Outcome::RolledBack), ("app02".to_owned(), kai_core::history::Outcome::RolledBack)]
                .into();
        let mut first = report("hello", "-", "1.0.0+local.0123abcd", AppResult::Deployed);
        let sum = format!("sha256:0123abcd{}", "0".repeat(56));
        let local = kai_core::local_build::LocalBuild {
            checksum: sum.clone(),
            user: "alice".into(),
            machine: "build01".into(),
            file: "/home/alice/hello/target/hello-1.0.0.tar.gz".into(),
        };
        first.local = Some(local);
        let notice = run_notice("deploy", "prod", &who(), &[first, failed]);
        let json = notice.webhook_json();
        assert_eq!(json["text"], notice.chat_text());
        assert!(json["text"].as_str().unwrap_or_default().starts_with("[kai] prod: hello -→1.0.0+local.0123abcd"));
        assert!(
            notice
                .chat_text()
                .contains(&format!("  local build {sum} of /home/alice/hello/target/hello-1.0.0.tar.gz, by alice on build01\n")),
            "{}",
            notice.chat_text()
        );
        assert_eq!(
            json["kai"],
            json!({
                "command": "deploy", "env": "prod", "user": "alice", "machine": "build01", "ok": false,
                "apps": [
                    { "app": "hello", "from": null, "to": "1.0.0+local.0123abcd", "result": "deployed", "ok": true,
                      "hosts": ["app01", "app02"], "duration_ms": 12340, "failure": null, "message": null,
                      "local": { "checksum": sum, "user": "alice", "machine": "build01",
                                 "file": "/home/alice/hello/target/hello-1.0.0.tar.gz" }, "promoted_from": null, "canary": null },
                    { "app": "telenormobil", "from": "3.2.0", "to": "3.3.0", "result": "rolled-back", "ok": false,
                      "hosts": ["app01", "app02"], "duration_ms": 12340,
                      "failure": { "host": "app02", "step": "health", "reason": "no 2xx answer within 60s" },
                      "message": null, "local": null, "promoted_from": null, "canary": null },
                ],
            })
        );
    }

    #[test]
    fn the_failing_commands_output_goes_to_the_mail_only() {
        let mut failed = report("hello", "1.0.0", "1.1.0", AppResult::Halted);
        failed.failure = Some(health_failure());
        let notice = run_notice("deploy", "prod", &who(), &[failed]);
        assert!(!notice.chat_text().contains("connection refused"));
        assert!(!notice.webhook_json().to_string().contains("connection refused"));
        assert!(
            notice.mail_body().ends_with("\nhello on app02, the end of what health printed:\n  | connection refused\n"),
            "{}",
            notice.mail_body()
        );
    }

    #[test]
    fn the_test_notice_names_the_environment_and_who() {
        let notice = test_notice("demo", &who());
        assert_eq!(notice.subject, "[kai] demo: test notice");
        assert!(notice.body.contains("by alice on build01"));
        assert_eq!(notice.data["command"], "test");
        assert_eq!(notice.data["apps"], json!([]));
    }
}
