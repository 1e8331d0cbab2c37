//! Getting the values of an environment's secrets for one run: from its `[secrets]
//! command` (run here, once per secret, within its deadline) or its age file. A value
//! lives in memory for the run and goes nowhere but the properties written to a host;
//! an error names the secret and where it was asked, never a value.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kai_core::config::{Environment, SecretSource};
use kai_core::template::{Secret, Secrets};
use tokio::io::AsyncReadExt;

use crate::error::CliError;

/// The most of a command's output kai reads as a secret's value.
const MAX_VALUE: u64 = 64 * 1024;

/// Where the identity that reads the secrets files is: `KAI_AGE_IDENTITY`, else
/// `~/.config/kai/identity.txt`.
pub fn identity_path(settings: &crate::settings::Settings) -> Option<PathBuf> {
    if let Some(path) = settings.var("KAI_AGE_IDENTITY") {
        return Some(settings.cwd.join(path));
    }
    let config =
        settings.var("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| settings.var("HOME").map(|h| Path::new(h).join(".config")))?;
    Some(config.join("kai/identity.txt"))
}

/// The plain text of `file` (an age file), read with the identity at `identity`.
pub fn decrypt_file(file: &Path, identity: &Path) -> Result<String, CliError> {
    let hint_keygen = format!("make one with `age-keygen -o {}` and add its public key to secrets/recipients", identity.display());
    let identities = age::IdentityFile::from_file(identity.display().to_string())
        .map_err(|e| CliError::usage(format!("the identity {} cannot be read: {e}", identity.display()), Some(hint_keygen.clone())))?
        .into_identities()
        .map_err(|e| CliError::usage(format!("the identity {} cannot be used: {e}", identity.display()), Some(hint_keygen.clone())))?;
    let input = std::fs::File::open(file).map_err(|e| {
        CliError::usage(
            format!("{}: {e}", file.display()),
            Some("`kai secrets set <env> NAME` makes it (the value read from standard input)".into()),
        )
    })?;
    let decryptor = age::Decryptor::new(std::io::BufReader::new(input))
        .map_err(|e| CliError::usage(format!("{} is not an age file: {e}", file.display()), None))?;
    let mine = public_keys(identity);
    let mut reader = decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| {
        let who = if mine.is_empty() { String::new() } else { format!(" (your recipient: {})", mine.join(", ")) };
        CliError::usage(
            format!("{} cannot be decrypted with the identity {}{who}: {e}", file.display(), identity.display()),
            Some("add your recipient to secrets/recipients, and ask someone who can read the file to run `kai secrets rekey`".into()),
        )
    })?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text)
        .map_err(|e| CliError::usage(format!("{} cannot be read: {e}", file.display()), None))?;
    Ok(text)
}

/// The public keys (recipients) of the plain age identities in the file at `identity`.
fn public_keys(identity: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(identity).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .filter_map(|l| l.parse::<age::x25519::Identity>().ok())
        .map(|i| i.to_public().to_string())
        .collect()
}

/// The values of `names` (each with the apps that use it) in `environment`; exit 2 (a
/// usage error: nothing was touched) when one cannot be had. `root`: the configuration
/// repository (its `secrets/<env>.age`).
pub async fn resolve(
    environment: &Environment,
    names: &std::collections::BTreeMap<String, Vec<String>>,
    root: &Path,
    settings: &crate::settings::Settings,
) -> Result<Secrets, CliError> {
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
            let file = root.join("secrets").join(format!("{}.age", environment.name));
            let identity = identity_path(settings)
                .ok_or_else(|| CliError::usage("no identity to read the secrets with: neither KAI_AGE_IDENTITY nor HOME is set", None))?;
            let text = decrypt_file(&file, &identity)?;
            let mut held = kai_core::secrets::parse_file(&text).map_err(|e| CliError::usage(format!("{}: {e}", file.display()), None))?;
            for (name, apps) in names {
                let value = held.remove(name).ok_or_else(|| {
                    CliError::usage(
                        format!("the secret {name} ({} in {}) is not in {}", apps.join(", "), environment.name, file.display()),
                        Some(format!("`kai secrets set {} {name}` adds it (the value read from standard input)", environment.name)),
                    )
                })?;
                secrets.insert(name.clone(), value);
            }
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

#[cfg(test)]
mod age_files {
    use super::*;

    fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
        let key = age::x25519::Identity::generate();
        let path = dir.join(name);
        std::fs::write(&path, format!("# created: by a test\n{}\n", age::secrecy::ExposeSecret::expose_secret(&key.to_string())))
            .expect("the identity");
        (path, key.to_public().to_string())
    }

    #[test]
    fn a_file_for_my_recipient_is_read_and_one_for_another_says_which_recipient_i_am() {
        let dir = tempfile::tempdir().expect("a folder");
        let (mine, my_key) = identity(dir.path(), "mine.txt");
        let (_, their_key) = identity(dir.path(), "theirs.txt");
        let encrypt = |to: &str| {
            let recipient: age::x25519::Recipient = to.parse().expect("a recipient");
            age::encrypt(&recipient, b"\"db.password\" = \"hunter2\"\n").expect("encrypted")
        };
        let file = dir.path().join("prod.age");
        std::fs::write(&file, encrypt(&my_key)).expect("the file");
        assert_eq!(decrypt_file(&file, &mine).expect("read"), "\"db.password\" = \"hunter2\"\n");

        std::fs::write(&file, encrypt(&their_key)).expect("the file");
        let err = decrypt_file(&file, &mine).unwrap_err();
        assert!(err.to_string().contains(&format!("your recipient: {my_key}")) && err.hint().is_some_and(|h| h.contains("rekey")), "{err}");
        let err = decrypt_file(&file, &dir.path().join("none.txt")).unwrap_err();
        assert!(err.to_string().contains("none.txt cannot be read") && err.hint().is_some_and(|h| h.contains("age-keygen")), "{err}");
    }
}

/// The public keys of `secrets/recipients` (one `age1…` a line, `#` comments): who can
/// read the secrets files kai writes.
pub fn recipients(root: &Path) -> Result<Vec<age::x25519::Recipient>, CliError> {
    let path = root.join("secrets/recipients");
    let hint = || Some("one public key a line (`age-keygen -y ~/.config/kai/identity.txt` prints yours)".to_owned());
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::usage(format!("{}: {e}", path.display()), hint()))?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.parse().map_err(|e| {
            CliError::usage(
                format!("secrets/recipients line {}: not an age public key ({e}): {}", i + 1, kai_core::table::printable(line)),
                hint(),
            )
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(CliError::usage(format!("{} names no recipient: nobody could read the secrets", path.display()), hint()));
    }
    Ok(keys)
}

/// `text` encrypted for `recipients`, into `file` (a new file beside it, then renamed).
fn write_encrypted(file: &Path, text: &str, recipients: &[age::x25519::Recipient]) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::Failed(anyhow::anyhow!("{}: {e}", file.display()));
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).map_err(|e| failed(&e))?;
    let mut encrypted = Vec::new();
    let mut writer = encryptor.wrap_output(&mut encrypted).map_err(|e| failed(&e))?;
    std::io::Write::write_all(&mut writer, text.as_bytes()).map_err(|e| failed(&e))?;
    writer.finish().map_err(|e| failed(&e))?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    }
    let part = file.with_extension("age.kai-part");
    std::fs::write(&part, encrypted).map_err(|e| failed(&e))?;
    std::fs::rename(&part, file).map_err(|e| failed(&e))
}

/// The secrets `secrets/<env>.age` holds (none when there is no file yet).
pub fn held(root: &Path, env: &str, settings: &crate::settings::Settings) -> Result<Secrets, CliError> {
    let file = root.join("secrets").join(format!("{env}.age"));
    if !file.exists() {
        return Ok(Secrets::new());
    }
    let identity = identity_path(settings).ok_or_else(|| CliError::usage("no identity: neither KAI_AGE_IDENTITY nor HOME is set", None))?;
    let text = decrypt_file(&file, &identity)?;
    kai_core::secrets::parse_file(&text).map_err(|e| CliError::usage(format!("{}: {e}", file.display()), None))
}

/// Sets `name` to `value` in `secrets/<env>.age`, written again for every recipient.
pub fn set(root: &Path, env: &str, name: &str, value: Secret, settings: &crate::settings::Settings) -> Result<(), CliError> {
    let recipients = recipients(root)?;
    let mut secrets = held(root, env, settings)?;
    secrets.insert(name.to_owned(), value);
    write_encrypted(&root.join("secrets").join(format!("{env}.age")), &kai_core::secrets::to_file(&secrets), &recipients)
}

/// Every `secrets/*.age` encrypted again for the recipients of `secrets/recipients`; the
/// environments done.
pub fn rekey(root: &Path, settings: &crate::settings::Settings) -> Result<Vec<String>, CliError> {
    let recipients = recipients(root)?;
    let mut envs: Vec<String> = std::fs::read_dir(root.join("secrets"))
        .map_err(|e| CliError::usage(format!("{}: {e}", root.join("secrets").display()), None))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".age").map(str::to_owned))
        .collect();
    envs.sort();
    // Everything is read first: a file the identity cannot read stops the rekey before
    // any file is written.
    let mut texts = Vec::new();
    for env in &envs {
        texts.push(kai_core::secrets::to_file(&held(root, env, settings)?));
    }
    for (env, text) in envs.iter().zip(texts) {
        write_encrypted(&root.join("secrets").join(format!("{env}.age")), &text, &recipients)?;
    }
    Ok(envs)
}

/// A secret's value from standard input: not echoed when it is a terminal; a final
/// newline dropped.
pub fn read_value(settings: &crate::settings::Settings) -> Result<Secret, CliError> {
    let mut text = String::new();
    let terminal = settings.stdin_is_terminal;
    if terminal {
        eprint!("value (not shown; Enter ends it): ");
        let _ = std::process::Command::new("stty").arg("-echo").stdin(Stdio::inherit()).status();
        let read = std::io::stdin().read_line(&mut text);
        let _ = std::process::Command::new("stty").arg("echo").stdin(Stdio::inherit()).status();
        eprintln!();
        read.map_err(|e| CliError::usage(format!("the value could not be read: {e}"), None))?;
    } else {
        std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), MAX_VALUE + 1), &mut text)
            .map_err(|e| CliError::usage(format!("the value could not be read from standard input: {e}"), None))?;
        if text.len() as u64 > MAX_VALUE {
            return Err(CliError::usage(format!("a secret's value is at most {} KiB", MAX_VALUE / 1024), None));
        }
    }
    Ok(kai_core::secrets::value_of_output(&text))
}

/// A private folder for a decrypted copy (mode 0700, under `$XDG_RUNTIME_DIR` or the
/// system's temporary folder), removed with everything in it when dropped.
struct Private(PathBuf);

impl Private {
    fn new(settings: &crate::settings::Settings) -> Result<Private, CliError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = settings.var("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| CliError::Failed(anyhow::anyhow!("no random bytes: {e}")))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("kai-secrets-{name}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", dir.display())))?;
        Ok(Private(dir))
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `kai secrets edit`: the decrypted file in `$VISUAL`/`$EDITOR` (else `vi`), in a
/// private folder removed after; written again only when what was saved reads as a
/// secrets file (and differs).
pub fn edit(root: &Path, env: &str, settings: &crate::settings::Settings) -> Result<bool, CliError> {
    let recipients = recipients(root)?;
    let secrets = held(root, env, settings)?;
    let private = Private::new(settings)?;
    let copy = private.0.join(format!("{env}.toml"));
    let text = kai_core::secrets::to_file(&secrets);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", copy.display())))?;
        file.write_all(text.as_bytes()).map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", copy.display())))?;
    }
    let editor = settings.var("VISUAL").or_else(|| settings.var("EDITOR")).unwrap_or("vi");
    let words = kai_core::shell::command::split_command_line(editor)
        .map_err(|e| CliError::usage(format!("the editor {editor:?} cannot be read as a command: {e}"), None))?;
    let (program, args) = words.split_first().ok_or_else(|| CliError::usage("the editor is empty", None))?;
    let status = std::process::Command::new(program)
        .args(args)
        .arg(&copy)
        .status()
        .map_err(|e| CliError::usage(format!("the editor {program} could not start: {e}"), Some("set VISUAL or EDITOR".into())))?;
    if !status.success() {
        return Err(CliError::usage(format!("the editor {program} ended with {status}: nothing was changed"), None));
    }
    let edited = std::fs::read_to_string(&copy).map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", copy.display())))?;
    let parsed = kai_core::secrets::parse_file(&edited).map_err(|e| {
        CliError::usage(format!("the edited secrets are refused, nothing was changed: {e}"), Some("run `kai secrets edit` again".into()))
    })?;
    if parsed == secrets {
        return Ok(false);
    }
    write_encrypted(&root.join("secrets").join(format!("{env}.age")), &kai_core::secrets::to_file(&parsed), &recipients)?;
    Ok(true)
}
