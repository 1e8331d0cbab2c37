//! `kai secrets`: an environment's secrets in `secrets/<env>.age`, encrypted to the
//! public keys in `secrets/recipients`; values are read from standard input, never
//! from an argument, and never printed.

use std::path::PathBuf;

use crate::error::CliError;
use crate::settings::Settings;

/// Keep an environment's secrets in the repository, encrypted (the age format, the
/// same files the `age` tool reads and writes): `{secret:NAME}` in a property's value
/// is the secret NAME of the environment deployed to.
#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    action: SecretsAction,
}

#[derive(Debug, clap::Subcommand)]
enum SecretsAction {
    /// Set a secret: its value is read from standard input (not echoed on a terminal;
    /// a final newline is dropped), and secrets/<env>.age is written again for every
    /// recipient in secrets/recipients.
    Set {
        /// The environment (a file in environments/).
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
        env: String,
        /// The secret's name: dotted words, like db.password.
        name: String,
    },
    /// List the names of an environment's secrets (never their values): each with the
    /// apps that use it, and whether the file holds it. Exit 1 when one is missing.
    List {
        /// The environment (a file in environments/).
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
        env: String,
    },
    /// Edit an environment's secrets in $VISUAL or $EDITOR: a decrypted copy in a private
    /// temporary folder (removed after), encrypted again when it was changed and still
    /// reads as `"name" = "value"` lines; refused otherwise, the file left as it was.
    Edit {
        /// The environment (a file in environments/).
        #[arg(add = clap_complete::ArgValueCandidates::new(crate::complete::environments))]
        env: String,
    },
    /// Encrypt every secrets/*.age again for the recipients in secrets/recipients (after
    /// adding or removing one); your identity must read each file.
    Rekey,
}

pub async fn run(config: &Option<PathBuf>, args: SecretsArgs, settings: &Settings) -> Result<u8, CliError> {
    let root = crate::config_files::config_root(config, settings)?;
    match args.action {
        SecretsAction::Set { env, name } => {
            let loaded = crate::config_files::load_config_at(&root)?;
            crate::config_files::environment(&loaded, &env)?;
            if !kai_core::template::is_secret_name(&name) {
                return Err(CliError::usage(
                    format!("{name:?} is not a secret's name"),
                    Some("dotted words of letters, digits, `_` and `-`, like db.password".into()),
                ));
            }
            let value = crate::secrets::read_value(settings)?;
            crate::secrets::set(&root, &env, &name, value, settings)?;
            eprintln!("set {name} in secrets/{env}.age");
            Ok(0)
        }
        SecretsAction::List { env } => {
            let loaded = crate::config_files::load_config_at(&root)?;
            crate::config_files::environment(&loaded, &env)?;
            let needed = kai_core::secrets::needed(&env, crate::config_files::apps_in(&loaded, &env));
            let (held, unread) = match crate::secrets::held(&root, &env, settings) {
                Ok(held) => (Some(held), None),
                Err(e) => (None, Some(e)),
            };
            let mut names: std::collections::BTreeSet<String> = needed.keys().cloned().collect();
            names.extend(held.iter().flat_map(|h| h.keys().cloned()));
            let mut missing = false;
            let mut table = kai_core::table::Table::new(&["name", "used by", "in the file"]);
            for name in &names {
                let used = needed.get(name).map_or_else(|| "-".to_owned(), |apps| apps.join(", "));
                let there = match &held {
                    Some(h) if h.contains_key(name) => "yes",
                    Some(_) => {
                        missing |= needed.contains_key(name);
                        "MISSING"
                    }
                    None => "?",
                };
                table.row([name.clone(), used, there.to_owned()]);
            }
            crate::output::emit(&table.render());
            if let Some(e) = unread {
                eprintln!("warning: the values cannot be checked: {e}");
                if let Some(hint) = e.hint() {
                    eprintln!("  hint: {hint}");
                }
            }
            Ok(u8::from(missing))
        }
        SecretsAction::Edit { env } => {
            let loaded = crate::config_files::load_config_at(&root)?;
            crate::config_files::environment(&loaded, &env)?;
            let changed = crate::secrets::edit(&root, &env, settings)?;
            eprintln!("{}", if changed { format!("secrets/{env}.age written again") } else { "nothing changed".to_owned() });
            Ok(0)
        }
        SecretsAction::Rekey => {
            let files = crate::secrets::rekey(&root, settings)?;
            eprintln!("encrypted again for secrets/recipients: {}", if files.is_empty() { "no file".to_owned() } else { files.join(", ") });
            Ok(0)
        }
    }
}
