//! Secrets that never sit in the repository: which ones an environment's apps use
//! (`{secret:NAME}` in their properties), the plain text of a secrets file (TOML, as it
//! is inside `secrets/<env>.age`), and the words of a `[secrets] command`. Decrypting,
//! running the command and writing files are the binary's; everything here is text.

use std::collections::BTreeMap;

use crate::config::App;
use crate::template::{is_secret_name, Secret, Secrets};

/// The names of the secrets `apps` use in `env`, each with the apps that use it.
pub fn needed<'a>(env: &str, apps: impl IntoIterator<Item = &'a App>) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for app in apps {
        for name in app.secret_names(env) {
            names.entry(name).or_default().push(app.name.clone());
        }
    }
    names
}

/// Reads the plain text of a secrets file: `"db.password" = "…"` lines (a dotted key
/// written without quotes, `db.password = "…"`, is the same name). An error names the
/// key and the line, never a value.
pub fn parse_file(text: &str) -> Result<Secrets, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // toml's message quotes the line it failed on, which may hold a value: only its
        // position is kept.
        match e.span() {
            Some(span) => format!("not a secrets file: TOML error at line {}", text[..span.start].lines().count().max(1)),
            None => "not a secrets file: not TOML".to_owned(),
        }
    })?;
    let mut secrets = Secrets::new();
    flatten("", &table, &mut secrets)?;
    Ok(secrets)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Secrets) -> Result<(), String> {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::String(text) if is_secret_name(&name) => {
                out.insert(name, Secret::new(text.clone()));
            }
            toml::Value::String(_) => {
                return Err(format!("{name:?} is not a secret's name (dotted words of letters, digits, `_` and `-`)"));
            }
            toml::Value::Table(inner) => flatten(&name, inner, out)?,
            _ => return Err(format!("{name}: a secret's value is a string (\"...\")")),
        }
    }
    Ok(())
}

/// The plain text of a secrets file holding `secrets`, one `"name" = "value"` line
/// each, sorted: what `kai secrets set` and `edit` encrypt.
pub fn to_file(secrets: &Secrets) -> String {
    let mut text = String::from("# kai secrets: \"name\" = \"value\", one a line; used as {secret:name} in properties\n");
    for (name, secret) in secrets {
        let value = toml::Value::String(secret.expose().to_owned());
        text.push_str(&format!("{} = {value}\n", toml::Value::String(name.clone())));
    }
    text
}

/// The words of a `[secrets] command` for one secret: `{env}` and `{name}` replaced in
/// each word (never shell text: the words are the program and its arguments).
pub fn command_words(argv: &[String], env: &str, name: &str) -> Vec<String> {
    argv.iter().map(|w| w.replace("{env}", env).replace("{name}", name)).collect()
}

/// A command's standard output as a secret's value: a final newline trimmed (one `\n`
/// or `\r\n`), nothing else.
pub fn value_of_output(stdout: &str) -> Secret {
    let value = stdout.strip_suffix('\n').map_or(stdout, |v| v.strip_suffix('\r').unwrap_or(v));
    Secret::new(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_file_is_read_back_as_it_was_written_and_dotted_keys_are_names() {
        let secrets: Secrets = [("db.password", "p\"a=ss\nword\\"), ("smtp-relay.token", ""), ("x", "ünï")]
            .map(|(k, v)| (k.to_owned(), Secret::new(v)))
            .into();
        let text = to_file(&secrets);
        assert_eq!(parse_file(&text).unwrap(), secrets);
        let dotted = parse_file("db.password = \"a\"\n[smtp]\nrelay = \"b\"\n").unwrap();
        assert_eq!(dotted.keys().collect::<Vec<_>>(), ["db.password", "smtp.relay"]);
    }

    #[test]
    fn a_bad_secrets_file_is_refused_without_showing_a_value() {
        let err = parse_file("\"db.password\" = \"hunter2\"\n\"x\" = hunter3\n").unwrap_err();
        assert!(err.contains("line 2") && !err.contains("hunter"), "{err}");
        let err = parse_file("\"db.password\" = 42\n").unwrap_err();
        assert!(err.contains("db.password") && err.contains("string"), "{err}");
        assert!(parse_file("\"a b\" = \"x\"\n").unwrap_err().contains("not a secret's name"));
    }

    #[test]
    fn a_command_is_words_and_its_output_loses_only_its_last_newline() {
        let argv: Vec<String> = ["pass", "show", "kai/{env}/{name}"].map(String::from).into();
        assert_eq!(command_words(&argv, "prod", "db.password"), ["pass", "show", "kai/prod/db.password"]);
        assert_eq!(value_of_output("s3cret\n").expose(), "s3cret");
        assert_eq!(value_of_output("s3cret\r\n").expose(), "s3cret");
        assert_eq!(value_of_output("two\nlines\n\n").expose(), "two\nlines\n");
        assert_eq!(value_of_output(" spaced ").expose(), " spaced ");
    }
}
