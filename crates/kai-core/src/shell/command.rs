//! Commands as values: a program, its arguments, environment and working folder.
//! [`Command::to_shell`] is the one place that turns a command into shell text and
//! [`Command::text`] adds its standard input as a here-document; the plan printer and
//! the scripts the transports send both use them, so a dry run prints what runs.

use std::fmt;

/// One remote command. Nothing in it is shell text: every part is quoted on the way out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Command {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working folder, relative to the app home (or absolute); `None` is the app home.
    pub cwd: Option<String>,
    /// What the command reads on its standard input.
    pub stdin: Option<Input>,
}

/// A command's standard input. Its `Debug` form shows a masked text as what it shows,
/// never as what it sends.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    Text(String),
    /// The repository credentials as curl configuration: filled in when the command is
    /// sent, shown as [`CREDENTIALS_SHOWN`] everywhere else.
    RepositoryCredentials,
    /// Text holding secrets: `text` is sent, `shown` (the secrets masked) is printed.
    /// Written down (a saved plan) as the digest of `text` and `shown`, never the text.
    #[serde(serialize_with = "masked_as_digest", skip_deserializing)]
    Masked {
        text: String,
        shown: String,
    },
    /// A [`Masked`](Input::Masked) input as a saved plan holds it: the digest of its
    /// text. Read back only to be compared with the plan made again (a saved plan is
    /// never run as it is); nothing is ever sent for it.
    #[serde(rename = "masked")]
    Digest {
        digest: String,
        shown: String,
    },
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Text(text) => f.debug_tuple("Text").field(text).finish(),
            Input::RepositoryCredentials => f.write_str("RepositoryCredentials"),
            Input::Masked { shown, .. } => f.debug_struct("Masked").field("shown", shown).finish_non_exhaustive(),
            Input::Digest { digest, shown } => f.debug_struct("Digest").field("digest", digest).field("shown", shown).finish(),
        }
    }
}

/// `{"digest": "sha256:…", "shown": …}`: what a saved plan keeps of a masked input.
fn masked_as_digest<S: serde::Serializer>(text: &str, shown: &str, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut state = serializer.serialize_struct("Digest", 2)?;
    state.serialize_field("digest", &crate::digest::of(text))?;
    state.serialize_field("shown", shown)?;
    state.end()
}

/// What a plan shows in place of the repository credentials.
pub const CREDENTIALS_SHOWN: &str = "(repository credentials, not shown)";

impl Command {
    pub fn new<I, S>(argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command { argv: argv.into_iter().map(Into::into).collect(), env: Vec::new(), cwd: None, stdin: None }
    }

    #[must_use]
    pub fn cwd(mut self, cwd: impl Into<String>) -> Command {
        self.cwd = Some(cwd.into());
        self
    }

    /// Adds an environment variable; `name` must be `[A-Za-z_][A-Za-z0-9_]*` (checked here,
    /// since names are not quoted).
    #[must_use]
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Command {
        assert!(is_env_name(name), "invalid environment variable name {name:?}");
        self.env.push((name.to_owned(), value.into()));
        self
    }

    #[must_use]
    pub fn stdin(mut self, text: impl Into<String>) -> Command {
        self.stdin = Some(Input::Text(text.into()));
        self
    }

    #[must_use]
    pub fn stdin_input(mut self, input: Input) -> Command {
        self.stdin = Some(input);
        self
    }

    /// The command as a script line: [`to_shell`](Self::to_shell), then its standard
    /// input as a here-document, with `secret` giving the text of inputs kept out of
    /// plans. With [`shown`] this is what a plan prints; the scripts kai sends are
    /// made with the real text.
    pub fn text(&self, secret: &dyn Fn(&Input) -> String) -> String {
        let mut out = self.to_shell();
        match &self.stdin {
            Some(Input::Text(text)) => out.push_str(&heredoc(text)),
            Some(input) => out.push_str(&heredoc(&secret(input))),
            None => {}
        }
        out
    }

    /// The command as POSIX shell text, every argument quoted; standard input is not
    /// part of it (transports feed it separately).
    pub fn to_shell(&self) -> String {
        let mut out = String::new();
        if let Some(cwd) = &self.cwd {
            out.push_str("cd ");
            out.push_str(&quote(cwd));
            out.push_str(" && ");
        }
        for (name, value) in &self.env {
            out.push_str(name);
            out.push('=');
            out.push_str(&quote(value));
            out.push(' ');
        }
        let words: Vec<String> = self.argv.iter().map(|a| quote(a)).collect();
        out.push_str(&words.join(" "));
        out
    }
}

/// The shell text followed, when there is standard input, by a here-document holding
/// it: exactly what a person could paste into a shell in the app home.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(&shown))
    }
}

/// How a plan shows an input it must not print.
pub fn shown(input: &Input) -> String {
    match input {
        Input::Text(text) => text.clone(),
        Input::RepositoryCredentials => CREDENTIALS_SHOWN.to_owned(),
        Input::Masked { shown, .. } | Input::Digest { shown, .. } => shown.clone(),
    }
}

/// ` <<'KAI'` + newline + `text` + newline + `KAI`: `text` as a here-document, with a
/// delimiter that none of its lines equals.
pub fn heredoc(text: &str) -> String {
    let delimiter = heredoc_delimiter(text);
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!(" <<'{delimiter}'\n{text}{newline}{delimiter}")
}

fn heredoc_delimiter(text: &str) -> String {
    let mut delimiter = String::from("KAI");
    while text.lines().any(|l| l == delimiter) {
        delimiter.push('_');
    }
    delimiter
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Quotes one word for a POSIX shell: left alone when it holds only characters no
/// shell treats specially, otherwise in single quotes (a `'` becomes `'\''`).
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '%' | '+' | ','));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Splits a configured command line (`bin/start.sh --port 8080 'a b'`) into words the
/// way a shell would, but refuses anything a shell would expand or interpret
/// (`;`, `|`, `&`, redirections, `$`, backquotes, globs): a start command is a program
/// with arguments, never a script. A kai placeholder (`{host}`, `{app}`: lowercase
/// letters and `_` in braces) is kept as it is: kai replaces it, no shell sees it.
pub fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(c @ ('$' | '`')) => return Err(format!("{c:?} inside double quotes would be expanded by a shell; use single quotes")),
                        Some(c) => w.push(c),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a trailing backslash".into()),
            },
            '{' if placeholder(chars.clone()).is_some() => {
                let name = placeholder(chars.clone()).unwrap_or_default();
                chars.nth(name.len());
                word.get_or_insert_with(String::new).push_str(&format!("{{{name}}}"));
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' | ']' | '{' | '}' | '#' | '~' | '\n' | '\r' => {
                return Err(format!(
                    "{c:?} is shell syntax; a command here is a program with arguments (put shell logic in a script inside the release, or quote the character)"
                ))
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words)
}

/// After a `{`: the placeholder's name when `rest` is `name}…` (lowercase and `_`).
fn placeholder(rest: std::str::Chars<'_>) -> Option<String> {
    let mut name = String::new();
    for c in rest {
        match c {
            '}' if !name.is_empty() => return Some(name),
            'a'..='z' | '_' => name.push(c),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("releases/1.0.0"), "releases/1.0.0");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("1.0;touch x"), "'1.0;touch x'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(id)"), "'$(id)'");
        assert_eq!(quote("k=v"), "'k=v'");
        assert_eq!(quote("~"), "'~'");
    }

    #[test]
    fn renders_cwd_env_and_stdin() {
        let c = Command::new(["bin/start.sh", "--name", "a b"]).cwd("current").env("KAI_VERSION", "1.0").stdin("x\n");
        assert_eq!(c.to_shell(), "cd current && KAI_VERSION=1.0 bin/start.sh --name 'a b'");
        assert_eq!(c.to_string(), "cd current && KAI_VERSION=1.0 bin/start.sh --name 'a b' <<'KAI'\nx\nKAI");
    }

    #[test]
    fn heredoc_delimiter_never_appears_in_the_text() {
        let c = Command::new(["cat"]).stdin("KAI\nKAI_\n");
        assert!(c.to_string().ends_with("<<'KAI__'\nKAI\nKAI_\nKAI__"));
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(split_command_line("bin/start.sh").unwrap(), ["bin/start.sh"]);
        assert_eq!(split_command_line("  bin/ctl  start 'a b' \"c d\" e\\ f ").unwrap(), ["bin/ctl", "start", "a b", "c d", "e f"]);
        assert_eq!(split_command_line("x ''").unwrap(), ["x", ""]);
        assert_eq!(split_command_line("x 'a;b'").unwrap(), ["x", "a;b"]);
        assert_eq!(split_command_line("lb-drain {host} --backend={app}").unwrap(), ["lb-drain", "{host}", "--backend={app}"]);
    }

    #[test]
    fn refuses_shell_syntax() {
        for bad in [
            "",
            "   ",
            "a; rm -rf /",
            "a && b",
            "a | b",
            "a > f",
            "$(id)",
            "`id`",
            "a *",
            "x \"$HOME\"",
            "'open",
            "\"open",
            "a\\",
            "a {b,c}",
            "a {}",
            "a {B}",
            "a }",
        ] {
            assert!(split_command_line(bad).is_err(), "{bad:?}");
        }
    }
}
