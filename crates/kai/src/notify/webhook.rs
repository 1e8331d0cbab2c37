//! The webhook channel: one JSON POST that Slack, Mattermost and Microsoft Teams
//! incoming webhooks display (`text`), with the structured notice beside it (`kai`).
//! The URL comes from the variable the configuration names and is a secret (it
//! carries the token): only its host ever appears in a message.

use kai_core::config::WebhookNotify;
use reqwest::header::CONTENT_TYPE;
use reqwest::Url;

use super::notice::Notice;
use super::{redact, NotifyError, TIMEOUT};
use crate::settings::Settings;

/// Longest piece of a refusing server's answer quoted in the error.
const ANSWER_QUOTE: usize = 200;

/// Posts `notice`; `Ok` says where it went (the host only).
pub async fn send(config: &WebhookNotify, notice: &Notice, settings: &Settings) -> Result<String, NotifyError> {
    let raw = settings.var(&config.url_env).ok_or_else(|| NotifyError::MissingVar { name: config.url_env.clone() })?;
    let url = Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| NotifyError::WebhookUrl { var: config.url_env.clone() })?;
    let host = shown_host(&url);
    let secrets = secrets(raw, &url);
    let body = serde_json::to_vec(&notice.webhook_json()).map_err(|e| NotifyError::Message(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| NotifyError::Webhook { host: host.clone(), reason: describe(&e, &secrets) })?;
    let response = client.post(url).header(CONTENT_TYPE, "application/json").body(body).send().await.map_err(|e| {
        if e.is_timeout() {
            NotifyError::Timeout { server: host.clone(), seconds: TIMEOUT.as_secs() }
        } else {
            NotifyError::Webhook { host: host.clone(), reason: describe(&e, &secrets) }
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(format!("posted to {host}"));
    }
    let answer = crate::bounded::body(response, crate::bounded::SMALL, "the answer").await.unwrap_or_else(|e| e);
    Err(NotifyError::WebhookStatus {
        host,
        status: status.to_string(),
        answer: quote(&redact(&answer, secrets.iter().map(String::as_str))),
    })
}

/// `hooks.slack.com`, or `127.0.0.1:8080` when the URL names a port.
pub fn shown_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The whole URL, and the path and query that carry its token.
fn secrets(raw: &str, url: &Url) -> Vec<String> {
    let mut secrets = vec![raw.to_owned(), url.as_str().to_owned()];
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    if path.len() > 1 {
        secrets.push(path);
    }
    secrets.extend(url.password().map(str::to_owned));
    secrets
}

/// reqwest's causes (its own text names the URL), without any secret.
fn describe(error: &reqwest::Error, secrets: &[String]) -> String {
    let reason = match std::error::Error::source(error) {
        Some(cause) => super::error_chain(cause),
        None => error.to_string(),
    };
    redact(&reason, secrets.iter().map(String::as_str))
}

/// The start of a server's answer, on one line.
fn quote(answer: &str) -> String {
    let line = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return String::new();
    }
    let cut: String = line.chars().take(ANSWER_QUOTE).collect();
    format!(": {cut}{}", if cut.len() < line.len() { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_of_the_url_is_shown() {
        let url = Url::parse("https://hooks.slack.com/services/T000/B000/XXXXSECRET").ok();
        assert_eq!(url.as_ref().map(shown_host).as_deref(), Some("hooks.slack.com"));
        let url = Url::parse("http://127.0.0.1:8065/hooks/abc123token").ok();
        assert_eq!(url.as_ref().map(shown_host).as_deref(), Some("127.0.0.1:8065"));
    }

    #[test]
    fn the_token_in_the_path_or_query_is_a_secret() {
        let raw = "https://example.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456?sig=SECRET";
        let Ok(url) = Url::parse(raw) else { panic!("a valid URL") };
        let secrets = secrets(raw, &url);
        let text = redact("refused /webhookb2/abc@def/IncomingWebhook/123/456?sig=SECRET", secrets.iter().map(String::as_str));
        assert_eq!(text, "refused ***");
    }

    #[test]
    fn an_answer_is_quoted_short_and_on_one_line() {
        assert_eq!(quote(""), "");
        assert_eq!(quote("no_service\n"), ": no_service");
        let long = "x".repeat(500);
        assert_eq!(quote(&long).chars().count(), 2 + ANSWER_QUOTE + 1);
    }
}
