//! Errors as a person meets them: what went wrong, a hint, and the exit code
//! (docs/commands.md: 1 a deploy or check failed, 2 usage or configuration, 3 locked).

use kai_core::config::ConfigErrors;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A wrong name, version or flag: nothing was touched.
    #[error("{message}")]
    Usage { message: String, hint: Option<String> },
    /// The configuration repository has problems (all of them are listed).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// Anything else that stopped kai before it could report per app.
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> CliError {
        CliError::Usage { message: message.into(), hint }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } | CliError::Config(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            CliError::Usage { hint, .. } => hint.as_deref(),
            CliError::Config(_) => None,
            CliError::Failed(_) => None,
        }
    }
}
