//! Getting the values of an environment's secrets for one run: from its `[secrets]
//! command` (run here, once per secret, within its deadline) or its age file. A value
//! lives in memory for the run and goes nowhere but the properties written to a host;
//! an error names the secret and where it was asked, never a value.

use std::process::Stdio;
use std::time::Duration;

use kai_core::config::{Environment, SecretSource};
use kai_core::template::{Secret, Secrets};
use tokio::io::AsyncReadExt;

use crate::error::CliError;

/// The most of a command's output kai reads as a secret's value.
const MAX_VALUE: u64 = 64 * 1024;

/// The values of `names` (each with the apps that use it) in `environment`; exit 2 (a
/// usage error: nothing was touched) when one cannot be had.
pub async fn resolve(environment: &Environment, names: &std::collections::BTreeMap<String, Vec<String>>) -> Result<Secrets, CliError> {
    let mut secrets = Secrets::new();
    match &environment.secret_source {
        SecretSource::Command { argv, timeout } => {
            for (name, apps) in names {
                let words = kai_core::secrets::command_words(argv, &environment.name, name);
                let value = run(&words, *timeout).await.map_err(|why| {
                    CliError::usage(
                        format!(
                            "the secret {name} ({} in {}) could not be had: `{}` {why}",
                            apps.join(", "),
                            environment.name,
                            words.join(" ")
                        ),
                        Some(format!("try the command yourself, or see [secrets] in environments/{}.toml", environment.name)),
                    )
                })?;
                secrets.insert(name.clone(), value);
            }
        }
        SecretSource::File if names.is_empty() => {}
        SecretSource::File => {
            let (name, apps) = names.iter().next().expect("not empty");
            return Err(CliError::usage(
                format!(
                    "{} in {} uses {{secret:{name}}}, and reading secrets/{}.age is not built yet",
                    apps.join(", "),
                    environment.name,
                    environment.name
                ),
                Some(format!("set [secrets] command = \"...\" in environments/{}.toml", environment.name)),
            ));
        }
    }
    Ok(secrets)
}

/// Runs `words` here (no shell), its standard input empty, for at most `timeout`; its
/// standard output as the value, or why not (exit status and its last line on standard
/// error, escaped).
async fn run(words: &[String], timeout: Duration) -> Result<Secret, String> {
    let (program, args) = words.split_first().ok_or("is empty")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("has no output".into());
    };
    let work = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut out_pipe, mut err_pipe) = ((&mut stdout).take(MAX_VALUE + 1), (&mut stderr).take(MAX_VALUE));
        let _ = tokio::join!(out_pipe.read_to_end(&mut out), err_pipe.read_to_end(&mut err));
        (child.wait().await, out, err)
    };
    let (status, out, err) =
        tokio::time::timeout(timeout, work).await.map_err(|_| format!("gave no value within {}", humantime::format_duration(timeout)))?;
    let status = status.map_err(|e| e.to_string())?;
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        let said = err.lines().rfind(|l| !l.trim().is_empty()).map(|l| format!(": {}", kai_core::table::printable(l))).unwrap_or_default();
        let code = status.code().map_or_else(|| "a signal".to_owned(), |c| format!("exit status {c}"));
        return Err(format!("ended with {code}{said}"));
    }
    if out.len() as u64 > MAX_VALUE {
        return Err(format!("printed more than {} KiB", MAX_VALUE / 1024));
    }
    let text = String::from_utf8(out).map_err(|_| "printed something that is not UTF-8 text".to_owned())?;
    Ok(kai_core::secrets::value_of_output(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), line.into()]
    }

    #[tokio::test]
    async fn a_command_gives_its_output_or_says_why_not_within_its_deadline() {
        let second = Duration::from_secs(1);
        assert_eq!(run(&words("printf 's3cret\\n'"), second).await.unwrap().expose(), "s3cret");
        let err = run(&words("echo no such entry >&2; exit 1"), second).await.unwrap_err();
        assert_eq!(err, "ended with exit status 1: no such entry");
        let started = std::time::Instant::now();
        let err = run(&words("sleep 5"), Duration::from_millis(200)).await.unwrap_err();
        assert!(err.contains("no value within 200ms") && started.elapsed() < Duration::from_secs(3), "{err}");
        assert!(run(&["/no/such/program".into()], second).await.unwrap_err().starts_with("could not start"));
        let err = run(&words("printf '\\033[2J' >&2; exit 3"), second).await.unwrap_err();
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }
}
