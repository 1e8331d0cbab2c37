//! Text from outside kai: what a host, a balancer, a repository or a command kai ran
//! printed. It may hold anything, escape sequences that move the cursor, recolor the
//! terminal or forge a line among them, so its only way to a person is an escaping
//! `Display`: every control character but the newline is written as a Rust escape
//! (`\u{1b}`). Programs get it as it was (JSON escapes it its own way); code that
//! parses it reads [`HostText::raw`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Text from outside kai, shown only escaped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostText(String);

impl HostText {
    pub fn new(text: impl Into<String>) -> HostText {
        HostText(text.into())
    }

    /// The text as it came, for parsing and comparing; never for showing.
    pub fn raw(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Its lines, each still text from outside.
    pub fn lines(&self) -> impl Iterator<Item = HostText> + '_ {
        self.0.lines().map(HostText::new)
    }

    /// Its last line that is not blank.
    pub fn last_line(&self) -> Option<HostText> {
        self.0.lines().rfind(|l| !l.trim().is_empty()).map(|l| HostText::new(l.trim()))
    }
}

impl From<String> for HostText {
    fn from(text: String) -> HostText {
        HostText(text)
    }
}

impl From<&str> for HostText {
    fn from(text: &str) -> HostText {
        HostText(text.to_owned())
    }
}

/// Every control character but the newline escaped.
impl fmt::Display for HostText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.0.split('\n').enumerate() {
            if line.0 > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&crate::table::printable(line.1))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_played_and_lines_stay_lines() {
        let text = HostText::new("ok\n\u{1b}]0;pwned\u{7}\u{1b}[31mred\r\nend");
        let shown = text.to_string();
        assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
        assert_eq!(shown, "ok\n\\u{1b}]0;pwned\\u{7}\\u{1b}[31mred\\r\nend");
        assert_eq!(text.lines().count(), 3);
        assert_eq!(text.last_line().map(|l| l.to_string()), Some("end".to_owned()));
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""ok\n\u001b]0;pwned\u0007\u001b[31mred\r\nend""#);
    }
}
