//! Standard output: what a command prints for people, or its one JSON document.
//! Progress, warnings and errors go to standard error ([`crate::terminal`]).

use crate::error::CliError;

/// Writes to standard output; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `value` as one pretty JSON document and a newline.
pub fn emit_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.into()))?;
    emit(&format!("{text}\n"));
    Ok(())
}
