//! Configuration errors: each names the file, line and key, and says what was expected.

use std::fmt;
use std::path::PathBuf;

/// One problem in the configuration repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Relative to the configuration root, e.g. `apps/jmsadmin.toml`.
    pub file: PathBuf,
    /// 1-based; `None` when the problem is the file itself (e.g. its name).
    pub line: Option<usize>,
    /// Dotted, e.g. `env.prod.servers`.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    /// A problem with `file` as a whole; add a line, key and hint with the `with_*` methods.
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.into(), line: None, key: None, message: message.into(), hint: None }
    }

    #[must_use]
    pub fn with_line(mut self, line: usize) -> ConfigError {
        self.line = Some(line);
        self
    }

    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> ConfigError {
        self.key = Some(key.into());
        self
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> ConfigError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// All the problems of one load (`kai check` reports them all).
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
