//! The one rule for what a property's value may show: the value of a key named like a
//! secret (`password`, `secret`, `token`, `credential`, `passwd`) is never shown, and
//! neither is the password in the user part of a URL-like value
//! (`jdbc:postgresql://app:hunter2@db/app`) whatever its key. Plans, `kai diff`, the
//! pages of `kai serve`, JSON and saved plans all show values through [`value`].

use std::borrow::Cow;

/// What stands for a secret value.
pub const SECRET: &str = "(secret, not shown)";

/// Whether a property's value is a secret as a whole: its key says so.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_lowercase();
    ["password", "passwd", "secret", "token", "credential"].iter().any(|w| key.contains(w))
}

/// `value` of `key` as it may be shown: [`SECRET`] for a secret key; otherwise with
/// the password of every `scheme://user:password@` in it replaced by `***`.
pub fn value<'v>(key: &str, value: &'v str) -> Cow<'v, str> {
    if is_secret_key(key) {
        return Cow::Borrowed(SECRET);
    }
    userinfo(value)
}

/// `text` with the password of every URL's user part (`//user:password@`) as `***`.
pub fn userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first `/`, `?`, `#` or blank; a user part is
        // what comes before its last `@`.
        let end = after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                let user = &authority[..at];
                match user.split_once(':') {
                    Some((name, _)) => out.push_str(&format!("{name}:***")),
                    None => out.push_str(user),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_key_hides_its_value_and_a_url_its_password_whatever_its_key() {
        assert_eq!(value("db.password", "hunter2"), SECRET);
        assert_eq!(
            value("db.url", "jdbc:postgresql://app:hunter2-prod@db.example.org:5432/app"),
            "jdbc:postgresql://app:***@db.example.org:5432/app"
        );
        assert_eq!(value("mq", "amqp://guest@mq/vhost and https://u:p@x?a=b"), "amqp://guest@mq/vhost and https://u:***@x?a=b");
        assert_eq!(value("site", "https://example.org/a@b"), "https://example.org/a@b", "an @ in the path is no user part");
        assert_eq!(value("plain", "nothing here"), "nothing here");
        assert_eq!(value("odd", "x://a:b:c@h"), "x://a:***@h");
    }
}
