//! Notifications end to end (issue 7): the real `kai` deploys to local hosts and
//! notifies a real SMTP server (aiosmtpd) and a local webhook receiver.

mod notify_support;

use notify_support::{
    closed_port, email_line, machine, notify_both, webhook_line, Answer, Login, SmtpServer, WebhookReceiver, Workspace, SMTP_PASSWORD_VAR,
    SMTP_USER_VAR, USER, WEBHOOK_URL_VAR,
};
use serde_json::{json, Value};

const SMTP_USER: &str = "kai-notifier";
const SMTP_PASSWORD: &str = "pw-Zq81-never-shown";
const WEBHOOK_TOKEN: &str = "T0001-B0002-tok3n-never-shown";

/// A workspace with hello 1.0.0 published and the credentials and URL set.
fn workspace(receiver: &WebhookReceiver) -> Workspace {
    let mut ws = Workspace::new();
    ws.publish("1.0.0", true);
    ws.var(SMTP_USER_VAR, SMTP_USER);
    ws.var(SMTP_PASSWORD_VAR, SMTP_PASSWORD);
    ws.var(WEBHOOK_URL_VAR, &receiver.url(WEBHOOK_TOKEN));
    ws
}

fn smtp_with_login(ws: &Workspace) -> SmtpServer {
    SmtpServer::start(&ws.path("mailbox"), Some(Login { user: SMTP_USER, password: SMTP_PASSWORD }))
}

fn assert_no_secret(run: &notify_support::Run) {
    let output = run.output();
    assert!(!output.contains(SMTP_PASSWORD), "the SMTP password was printed:\n{run}");
    assert!(!output.contains(WEBHOOK_TOKEN), "the webhook URL was printed:\n{run}");
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("expected a string, found {value}"))
}

#[test]
fn a_deploy_sends_one_mail_and_one_webhook() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let ws = workspace(&receiver);
    let smtp = smtp_with_login(&ws);
    ws.set_notify(&notify_both(&smtp.address(), "none"), "");

    let run = ws.kai(&["deploy", "demo", "hello-1.0.0"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!run.stderr.contains("warning"), "{run}");
    assert_no_secret(&run);

    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1, "one mail for the whole command: {mails:?}");
    let mail = &mails[0];
    let subject = "[kai] demo: hello -→1.0.0 ok";
    assert_eq!(mail["subject"], subject);
    assert_eq!(mail["from"], "kai@example.org");
    assert_eq!(mail["to"], "ops@example.org, dev@example.org");
    assert_eq!(mail["mail_from"], "kai@example.org");
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.org", "dev@example.org"]));
    assert_eq!(mail["login"], SMTP_USER, "kai authenticated with the configured credentials");
    assert_eq!(mail["content_type"], "text/plain");
    let body = text(&mail["body"]);
    assert!(body.starts_with(&format!("kai deploy in demo by {USER} on {}: ok\n", machine())), "{body}");
    assert!(body.contains("\nhello - → 1.0.0: deployed on web1, web2 in "), "{body}");
    let raw = text(&mail["raw"]);
    let header = |name: &str| raw.lines().any(|l| l.starts_with(&format!("{name}: ")));
    assert!(header("Date") && header("Message-ID"), "{raw}");
    assert!(!raw.contains(SMTP_PASSWORD));

    let requests = receiver.wait_for(1);
    assert_eq!(requests.len(), 1, "one webhook for the whole command");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/hooks/{WEBHOOK_TOKEN}"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let json = request.json();
    assert_eq!(text(&json["text"]).trim_end(), format!("{subject}\n{}", body.trim_end()), "chat shows the subject, then the body");
    let kai = &json["kai"];
    assert_eq!(kai["command"], "deploy");
    assert_eq!(kai["env"], "demo");
    assert_eq!(kai["user"], USER);
    assert_eq!(kai["machine"], machine());
    assert_eq!(kai["ok"], true);
    let apps = kai["apps"].as_array().expect("apps");
    assert_eq!(apps.len(), 1);
    let app = &apps[0];
    assert_eq!(app["app"], "hello");
    assert_eq!(app["from"], Value::Null, "a first install");
    assert_eq!(app["to"], "1.0.0");
    assert_eq!(app["result"], "deployed");
    assert_eq!(app["hosts"], json!(["web1", "web2"]));
    assert!(app["duration_ms"].is_u64(), "{app}");
    assert_eq!(app["failure"], Value::Null);
}

#[test]
fn a_failed_deploy_is_announced_with_host_step_and_reason() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let ws = workspace(&receiver);
    let smtp = smtp_with_login(&ws);
    ws.set_notify(&notify_both(&smtp.address(), "none"), "");
    ws.publish("1.1.0", false);
    let first = ws.kai(&["deploy", "demo", "hello-1.0.0"]);
    assert_eq!(first.code, 0, "{first}");

    let run = ws.kai(&["deploy", "demo", "hello-1.1.0"]);
    assert_eq!(run.code, 1, "{run}");
    assert_no_secret(&run);

    let mails = smtp.wait_for(2);
    assert_eq!(mails.len(), 2, "one mail per command");
    let mail = &mails[1];
    assert_eq!(mail["subject"], "[kai] demo: hello 1.0.0→1.1.0 FAILED");
    let body = text(&mail["body"]);
    assert!(body.contains("1 of 1 failed"), "{body}");
    assert!(body.contains("hello 1.0.0 → 1.1.0: failed, put back on web1 put back"), "{body}");
    assert!(body.contains("  failed on web1 at start: "), "{body}");
    assert!(body.contains("hello on web1, the end of what start printed:\n"), "the mail carries the output: {body}");
    assert!(body.contains("  | port 18080 already in use\n"), "the mail carries the output: {body}");

    let requests = receiver.wait_for(2);
    assert!(!text(&requests[1].json()["text"]).contains("already in use"), "a chat message does not carry the output");
    let kai = &requests[1].json()["kai"];
    assert_eq!(kai["ok"], false);
    let app = &kai["apps"][0];
    assert_eq!(app["from"], "1.0.0");
    assert_eq!(app["result"], "rolled-back");
    assert_eq!(app["failure"]["host"], "web1");
    assert_eq!(app["failure"]["step"], "start");
    assert!(!text(&app["failure"]["reason"]).is_empty());
}

#[test]
fn a_deploy_that_changes_nothing_sends_nothing() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let ws = workspace(&receiver);
    let smtp = smtp_with_login(&ws);
    ws.set_notify(&notify_both(&smtp.address(), "none"), "");
    assert_eq!(ws.kai(&["deploy", "demo", "hello-1.0.0"]).code, 0);
    assert_eq!(smtp.wait_for(1).len(), 1);
    assert_eq!(receiver.wait_for(1).len(), 1);

    let again = ws.kai(&["deploy", "demo", "hello-1.0.0"]);
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stdout.contains("up to date"), "{again}");
    let rollback = ws.kai(&["rollback", "demo", "hello"]);
    assert_eq!(rollback.code, 2, "nothing to roll back to: {rollback}");
    // A notice about the rollback attempt or the no-op would have arrived by the time
    // a later real deploy's notice does; only that one comes.
    ws.publish("1.1.0", true);
    assert_eq!(ws.kai(&["deploy", "demo", "hello-1.1.0"]).code, 0);
    let mails = smtp.wait_for(2);
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[1]["subject"], "[kai] demo: hello 1.0.0→1.1.0 ok");
    assert_eq!(receiver.wait_for(2).len(), 2);
}

#[test]
fn the_deploy_succeeds_with_a_warning_when_the_smtp_server_is_down() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let down = format!("127.0.0.1:{}", closed_port());
    let ws = workspace(&receiver);
    ws.set_notify(&notify_both(&down, "none"), "");

    let run = ws.kai(&["deploy", "demo", "hello-1.0.0"]);
    assert_eq!(run.code, 0, "a notice that cannot be sent does not fail the deploy:\n{run}");
    assert!(run.stderr.contains(&format!("warning: notification by email failed: {down}: ")), "{run}");
    assert_no_secret(&run);
    assert_eq!(receiver.wait_for(1).len(), 1, "the webhook still went out");
}

#[test]
fn a_refused_login_is_a_warning_that_shows_no_password() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let ws = workspace(&receiver);
    let smtp = SmtpServer::start(&ws.path("mailbox"), Some(Login { user: SMTP_USER, password: "the-right-one" }));
    ws.set_notify(&notify_both(&smtp.address(), "none"), "");

    let run = ws.kai(&["deploy", "demo", "hello-1.0.0"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("warning: notification by email failed: "), "{run}");
    assert!(run.stderr.contains("535"), "the server's refusal is shown:\n{run}");
    assert_no_secret(&run);
    assert!(smtp.messages().is_empty());
}

#[test]
fn notify_test_sends_a_test_notice_through_every_channel() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let ws = workspace(&receiver);
    let smtp = smtp_with_login(&ws);
    ws.set_notify(&notify_both(&smtp.address(), "none"), "");

    let run = ws.kai(&["notify", "--test", "demo"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains(&format!("email: sent to ops@example.org, dev@example.org via {}", smtp.address())), "{run}");
    assert!(run.stdout.contains(&format!("webhook: posted to 127.0.0.1:{}", receiver.port)), "{run}");
    assert_no_secret(&run);

    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["subject"], "[kai] demo: test notice");
    assert!(text(&mails[0]["body"]).contains(&format!("by {USER} on {}", machine())));
    let requests = receiver.wait_for(1);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["kai"]["command"], "test");
    assert!(text(&requests[0].json()["text"]).starts_with("[kai] demo: test notice\n"));
}

#[test]
fn notify_test_fails_with_the_reason_and_never_the_webhook_url() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::ForbiddenEchoingThePath);
    let ws = workspace(&receiver);
    ws.set_notify(&format!("[notify]\n{}\n", webhook_line()), "");

    let run = ws.kai(&["notify", "--test", "demo"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "error: notification by webhook failed: 127.0.0.1:{} answered 403 Forbidden: invalid_token for ***",
            receiver.port
        )),
        "{run}"
    );
    assert_no_secret(&run);
}

#[test]
fn notify_test_names_a_missing_variable_and_refuses_starttls_a_server_lacks() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let mut ws = Workspace::new();
    ws.var(SMTP_USER_VAR, SMTP_USER);
    ws.var(SMTP_PASSWORD_VAR, SMTP_PASSWORD);
    let smtp = SmtpServer::start(&ws.path("mailbox"), None);
    ws.set_notify(&format!("[notify]\n{}\n{}\n", email_line(&smtp.address(), "starttls"), webhook_line()), "");

    let run = ws.kai(&["notify", "--test", "demo"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains(&format!("error: notification by webhook failed: the environment variable {WEBHOOK_URL_VAR} is not set")),
        "{run}"
    );
    assert!(run.stderr.contains(&format!("error: notification by email failed: {}: ", smtp.address())), "{run}");
    assert_no_secret(&run);
    assert!(smtp.messages().is_empty(), "nothing is sent without the STARTTLS the configuration asks for");
    assert!(receiver.requests().is_empty());
}

#[test]
fn notify_test_without_any_channel_is_a_usage_error() {
    let ws = Workspace::new();
    let run = ws.kai(&["notify", "--test", "demo"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("error: no notification channel is configured for demo"), "{run}");
}

#[test]
fn an_environments_notify_replaces_the_one_in_kai_toml() {
    notify_support::require_smtp();
    let receiver = WebhookReceiver::start(Answer::Ok);
    let ws = workspace(&receiver);
    let smtp = smtp_with_login(&ws);
    let global = format!("[notify]\n{}\n", email_line(&smtp.address(), "none"));
    let for_demo = format!("[notify]\n{}\n", webhook_line());
    ws.set_notify(&global, &for_demo);

    let run = ws.kai(&["deploy", "demo", "hello-1.0.0"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(receiver.wait_for(1).len(), 1, "demo's own [notify] has the webhook");
    assert!(smtp.messages().is_empty(), "kai.toml's email does not apply to demo");
}
