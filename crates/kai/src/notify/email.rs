//! The email channel: one plain-text message over SMTP with lettre, through
//! STARTTLS, implicit TLS, or plain towards a loopback server (the configuration
//! allows `none` only there). Credentials come from the variables the
//! configuration names.

use kai_core::config::{EmailNotify, SmtpTls};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::notice::Notice;
use super::{redact, NotifyError, TIMEOUT};
use crate::settings::Settings;

/// Longest a whole SMTP conversation may take.
const CONVERSATION: std::time::Duration = TIMEOUT.saturating_mul(2);

/// Sends `notice` to every recipient; `Ok` says where it went.
pub async fn send(config: &EmailNotify, notice: &Notice, settings: &Settings) -> Result<String, NotifyError> {
    let credentials = credentials(config, settings)?;
    let message = message(config, notice)?;
    let (host, port) = server(&config.smtp)?;
    let mut builder = match config.tls {
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
    }
    .map_err(|e| smtp_error(config, &e, None))?
    .port(port)
    .timeout(Some(TIMEOUT))
    .hello_name(ClientId::Domain(settings.machine.clone()));
    let secret = credentials.as_ref().map(|(_, password)| password.clone());
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user, password));
    }
    let transport = builder.build();
    // lettre's timeout bounds connecting; this bounds the whole conversation.
    match tokio::time::timeout(CONVERSATION, transport.send(message)).await {
        Ok(Ok(_)) => Ok(format!("sent to {} via {}", config.to.join(", "), config.smtp)),
        Ok(Err(e)) => Err(smtp_error(config, &e, secret.as_deref())),
        Err(_) => Err(NotifyError::Timeout { server: config.smtp.clone(), seconds: CONVERSATION.as_secs() }),
    }
}

/// The user name and password, when the configuration names their variables.
fn credentials(config: &EmailNotify, settings: &Settings) -> Result<Option<(String, String)>, NotifyError> {
    let (Some(user_var), Some(password_var)) = (&config.username_env, &config.password_env) else { return Ok(None) };
    let var = |name: &str| settings.var(name).map(str::to_owned).ok_or_else(|| NotifyError::MissingVar { name: name.to_owned() });
    Ok(Some((var(user_var)?, var(password_var)?)))
}

fn message(config: &EmailNotify, notice: &Notice) -> Result<Message, NotifyError> {
    let mailbox = |key: &'static str, value: &str| {
        value.parse::<Mailbox>().map_err(|e| NotifyError::Address { key, value: value.to_owned(), reason: e.to_string() })
    };
    let mut builder = Message::builder()
        .from(mailbox("from", &config.from)?)
        .subject(&notice.subject)
        .message_id(None)
        .user_agent(format!("kai {}", env!("CARGO_PKG_VERSION")));
    for to in &config.to {
        builder = builder.to(mailbox("to", to)?);
    }
    builder.header(ContentType::TEXT_PLAIN).body(notice.mail_body()).map_err(|e| NotifyError::Message(e.to_string()))
}

/// `smtp.example.org:587` → (`smtp.example.org`, 587); `[::1]:25` → (`::1`, 25).
pub fn server(smtp: &str) -> Result<(&str, u16), NotifyError> {
    let invalid = || NotifyError::Server { smtp: smtp.to_owned() };
    let (host, port) = smtp.rsplit_once(':').ok_or_else(invalid)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| invalid())?;
    if host.is_empty() || port == 0 {
        return Err(invalid());
    }
    Ok((host, port))
}

/// lettre's error with its causes, without the password should a server echo it.
fn smtp_error(config: &EmailNotify, error: &lettre::transport::smtp::Error, password: Option<&str>) -> NotifyError {
    if error.is_timeout() {
        return NotifyError::Timeout { server: config.smtp.clone(), seconds: TIMEOUT.as_secs() };
    }
    let reason = super::error_chain(error);
    NotifyError::Smtp { server: config.smtp.clone(), reason: redact(&reason, password) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::notice::{test_notice, Who};

    #[test]
    fn the_server_is_host_and_port() {
        assert_eq!(server("smtp.example.org:587").ok(), Some(("smtp.example.org", 587)));
        assert_eq!(server("127.0.0.1:2525").ok(), Some(("127.0.0.1", 2525)));
        assert_eq!(server("[::1]:25").ok(), Some(("::1", 25)));
        assert!(server("smtp.example.org").is_err());
        assert!(server(":25").is_err());
        assert!(server("smtp.example.org:0").is_err());
    }

    #[test]
    fn the_message_has_the_configured_headers_and_a_utf8_body() {
        let config = EmailNotify {
            smtp: "127.0.0.1:25".into(),
            tls: SmtpTls::None,
            from: "kai@example.org".into(),
            to: vec!["ops@example.org".into(), "Dev Team <dev@example.org>".into()],
            username_env: None,
            password_env: None,
        };
        let notice = test_notice("demo", &Who { user: "ø".into(), machine: "m".into() });
        let text = String::from_utf8(message(&config, &notice).map(|m| m.formatted()).unwrap_or_default()).unwrap_or_default();
        assert!(text.contains("From: kai@example.org\r\n"), "{text}");
        assert!(text.contains("To: ops@example.org, \"Dev Team\" <dev@example.org>\r\n"), "{text}");
        assert!(text.contains("Subject: [kai] demo: test notice\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
    }

    #[test]
    fn a_bad_address_is_named() {
        let config = EmailNotify {
            smtp: "127.0.0.1:25".into(),
            tls: SmtpTls::None,
            from: "not an address@".into(),
            to: vec!["ops@example.org".into()],
            username_env: None,
            password_env: None,
        };
        let notice = test_notice("demo", &Who { user: "u".into(), machine: "m".into() });
        let error = message(&config, &notice).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("from \"not an address@\" is not an email address"), "{error}");
    }
}
