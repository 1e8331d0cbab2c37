//! `kai completions`: the shell's registration script for dynamic completion.

use std::io::Write;

use clap_complete::env::{EnvCompleter, Fish};

use crate::error::CliError;

/// Print the shell script that completes commands, environments, hosts, apps and versions
///
/// The script is what `COMPLETE=<shell> kai` prints. It calls kai back on every TAB,
/// so it stays right when kai is upgraded; load it from your shell's startup file:
///
///   bash:  echo 'source <(COMPLETE=bash kai)' >> ~/.bashrc
///
///   zsh:   echo 'source <(COMPLETE=zsh kai)' >> ~/.zshrc     (after `compinit`)
///
///   fish:  echo 'COMPLETE=fish kai | source' > ~/.config/fish/completions/kai.fish
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell.
    shell: Shell,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionsArgs) -> Result<u8, CliError> {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &crate::complete::Bash,
        Shell::Zsh => &crate::complete::Zsh,
        Shell::Fish => &Fish,
    };
    // How the script calls kai back: as it was called now, like `COMPLETE=bash kai`.
    let program = std::env::args_os().next().unwrap_or_else(|| "kai".into());
    let mut completer = std::path::PathBuf::from(program);
    if completer.components().count() > 1 {
        if let Ok(cwd) = std::env::current_dir() {
            completer = cwd.join(completer);
        }
    }
    let mut script = Vec::new();
    crate::complete::registration(
        shell,
        <super::Cli as clap::CommandFactory>::command().get_name(),
        &completer.to_string_lossy(),
        &mut script,
    )
    .map_err(|e| CliError::Failed(e.into()))?;
    std::io::stdout().write_all(&script).map_err(|e| CliError::Failed(e.into()))?;
    Ok(0)
}
