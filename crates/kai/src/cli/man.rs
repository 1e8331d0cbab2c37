//! `kai man`: the manual pages, `kai(1)` and `kai-<command>(1)` from the same definitions
//! as `--help`, and kai.toml(5) from the configuration reference (docs/configuration.md,
//! compiled in). On a terminal a page is shown through `man -l -`; into a pipe it is
//! printed as roff. `--markdown` prints the command reference (docs/commands.md), also
//! from `--help`; a test keeps that file equal to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::CliError;
use crate::settings::Settings;

/// Show kai's manual: kai(1), one page per command, and kai.toml(5)
///
/// Without arguments shows kai(1); `kai man deploy` shows kai-deploy(1), `kai man
/// kai.toml` the configuration reference kai.toml(5). On a terminal the page is shown
/// as `man` shows it (through MANPAGER or PAGER); into a pipe or a file it is printed in
/// roff (`kai man deploy > kai-deploy.1`). With --dir, writes every page into a folder
/// instead (man1/ and man5/ under it, ready for MANPATH).
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// A command (`deploy`, `status`, ...) or `kai.toml`.
    #[arg(value_name = "PAGE")]
    page: Option<String>,
    /// Write every page into DIR/man1 and DIR/man5.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, conflicts_with = "page")]
    dir: Option<PathBuf>,
    /// Print the command reference in Markdown (docs/commands.md) instead.
    #[arg(long, hide = true, conflicts_with_all = ["page", "dir"])]
    markdown: bool,
}

/// The configuration reference, the source of kai.toml(5).
const CONFIGURATION: &str = include_str!("../../../../docs/configuration.md");

pub fn run(args: ManArgs, settings: &Settings) -> Result<u8, CliError> {
    let failed = |e: std::io::Error| CliError::Failed(e.into());
    if args.markdown {
        std::io::stdout().write_all(commands_markdown().as_bytes()).map_err(failed)?;
        return Ok(0);
    }
    if let Some(dir) = &args.dir {
        write_all(dir).map_err(|e| CliError::Failed(anyhow::anyhow!("cannot write into {}: {e}", dir.display())))?;
        return Ok(0);
    }
    let page = match args.page.as_deref() {
        None => page_of(&command()).map_err(failed)?,
        Some("kai.toml") => markdown_to_roff("kai.toml", "5", "the configuration repository of kai", CONFIGURATION).into_bytes(),
        Some(name) => {
            let found = command().get_subcommands().find(|c| c.get_name() == name && !c.is_hide_set()).cloned();
            let Some(sub) = found else {
                let pages: Vec<String> = visible(&command()).map(|c| c.get_name().to_owned()).collect();
                return Err(CliError::usage(
                    format!("no manual page {name:?}"),
                    Some(format!("the pages: kai, {}, kai.toml", pages.join(", "))),
                ));
            };
            page_of(&sub).map_err(failed)?
        }
    };
    if settings.stdout_is_terminal {
        return show(&page);
    }
    std::io::stdout().write_all(&page).map_err(failed)?;
    Ok(0)
}

/// A page as `man` shows it: formatted for the terminal, through MANPAGER or PAGER
/// (`man` reads them). Without `man`, the roff itself, and a hint.
fn show(page: &[u8]) -> Result<u8, CliError> {
    let man = Command::new("man").args(["-l", "-"]).stdin(Stdio::piped()).spawn();
    let mut man = match man {
        Ok(man) => man,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::io::stdout().write_all(page).map_err(|e| CliError::Failed(e.into()))?;
            crate::terminal::write_stderr(
                "hint: `man` is not installed, so this is the page's roff source; install man-db to read it formatted\n",
            );
            return Ok(0);
        }
        Err(e) => return Err(CliError::Failed(anyhow::anyhow!("cannot start man: {e}"))),
    };
    if let Some(mut input) = man.stdin.take() {
        // Quitting the pager early closes the pipe: not an error.
        let _ = input.write_all(page);
    }
    let status = man.wait().map_err(|e| CliError::Failed(anyhow::anyhow!("waiting for man: {e}")))?;
    if !status.success() {
        return Err(CliError::Failed(anyhow::anyhow!("man -l - failed ({status})")));
    }
    Ok(0)
}

fn command() -> clap::Command {
    let mut command = super::command();
    command.build();
    command
}

fn visible(command: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    command.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

fn page_of(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    Ok(page)
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    let (man1, man5) = (dir.join("man1"), dir.join("man5"));
    std::fs::create_dir_all(&man1)?;
    std::fs::create_dir_all(&man5)?;
    let command = command();
    std::fs::write(man1.join("kai.1"), page_of(&command)?)?;
    for sub in visible(&command) {
        let man = clap_mangen::Man::new(sub.clone());
        std::fs::write(man1.join(man.get_filename()), page_of(sub)?)?;
    }
    std::fs::write(man5.join("kai.toml.5"), markdown_to_roff("kai.toml", "5", "the configuration repository of kai", CONFIGURATION))
}

/// The command reference: what `kai --help` and each `kai <command> --help` print.
pub fn commands_markdown() -> String {
    let mut command = command().term_width(100);
    let mut out = String::from(
        "# Command reference\n\n\
         What `kai --help` and `kai <command> --help` print, generated from the same definitions\n\
         (`kai man --markdown > docs/commands.md`; a test fails when this page and `--help` differ).\n\
         `kai man` shows the same as manual pages. Exit codes and what a deploy does are in\n\
         [how a deploy runs](deploy.md); the `--json` documents in [JSON output](json.md).\n\n## kai\n\n```text\n",
    );
    out.push_str(&command.render_long_help().to_string());
    out.push_str("```\n");
    let names: Vec<String> = visible(&command).map(|c| c.get_name().to_owned()).collect();
    for name in names {
        let Some(sub) = command.find_subcommand_mut(&name) else { continue };
        out.push_str(&format!("\n## kai {name}\n\n```text\n"));
        out.push_str(&sub.render_long_help().to_string());
        out.push_str("```\n");
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

/// A Markdown page as a roff manual page: headings, paragraphs, code blocks, lists and
/// the key tables of the configuration reference (each row a tagged paragraph).
pub fn markdown_to_roff(name: &str, section: &str, what: &str, markdown: &str) -> String {
    let mut out = format!(".TH {} {section}\n.SH NAME\n{} \\- {what}\n", name.to_uppercase(), escape(name));
    let mut lines = markdown.lines().peekable();
    let mut header: Vec<String> = Vec::new();
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            out.push_str(".PP\n.nf\n.RS 4\n");
            for code in lines.by_ref().take_while(|l| !l.starts_with("```")) {
                out.push_str(&format!("{}\n", escape_line(code)));
            }
            out.push_str(".RE\n.fi\n");
        } else if let Some(title) = line.strip_prefix("# ") {
            if !title.is_empty() {
                out.push_str(&format!(".SH DESCRIPTION\n.PP\n{}\n", inline(title)));
            }
        } else if let Some(title) = line.strip_prefix("## ").or_else(|| line.strip_prefix("### ")) {
            out.push_str(&format!(".SH {}\n", inline(title).to_uppercase()));
        } else if line.starts_with('|') {
            let cells: Vec<String> =
                line.replace("\\|", "\u{1}").trim().trim_matches('|').split('|').map(|c| c.trim().replace('\u{1}', "\\|")).collect();
            if cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':' || ch == '|')) {
                continue;
            }
            if header.is_empty() {
                header = cells;
                continue;
            }
            out.push_str(&format!(".TP\n{}\n", inline(&cells[0])));
            let details: Vec<String> = cells[1..cells.len().saturating_sub(1)]
                .iter()
                .zip(&header[1..])
                .filter(|(cell, _)| !cell.is_empty())
                .map(|(cell, title)| format!("{title}: {}", inline(cell)))
                .collect();
            if !details.is_empty() {
                out.push_str(&format!("({})\n.br\n", details.join("; ")));
            }
            if let Some(last) = cells.last().filter(|_| cells.len() > 1) {
                out.push_str(&format!("{}\n", inline(last)));
            }
            if lines.peek().is_none_or(|next| !next.starts_with('|')) {
                header.clear();
            }
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str(&format!(".IP \\(bu 2\n{}\n", inline(item)));
        } else if line.trim().is_empty() {
            out.push_str(".PP\n");
        } else {
            out.push_str(&format!("{}\n", inline(line.trim_start())));
        }
    }
    out
}

/// Markdown inline text in roff: `code` and **strong** in bold, links as their text.
fn inline(text: &str) -> String {
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("\\|", "|");
    let mut out = String::new();
    let (mut bold, mut code) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                out.push_str(if bold { "\\fR" } else { "\\fB" });
                bold = !bold;
                code = !code;
            }
            c if code => out.push_str(&escape(&c.to_string())),
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(if bold { "\\fR" } else { "\\fB" });
                bold = !bold;
            }
            '[' => {
                let label: String = chars.by_ref().take_while(|&c| c != ']').collect();
                if chars.peek() == Some(&'(') {
                    chars.by_ref().take_while(|&c| c != ')').for_each(drop);
                }
                out.push_str(&escape(&label));
            }
            c => out.push_str(&escape(&c.to_string())),
        }
    }
    if bold {
        out.push_str("\\fR");
    }
    escape_start(&out)
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

fn escape_line(text: &str) -> String {
    escape_start(&escape(text))
}

/// A line starting with `.` or `'` would be a roff request.
fn escape_start(text: &str) -> String {
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_reference_is_what_help_prints() {
        let file = include_str!("../../../../docs/commands.md");
        assert!(
            file == commands_markdown(),
            "docs/commands.md differs from --help: regenerate it with `cargo run -q -- man --markdown > docs/commands.md`"
        );
    }

    #[test]
    fn every_key_of_the_reference_is_in_kai_toml_5() {
        let page = markdown_to_roff("kai.toml", "5", "x", CONFIGURATION);
        assert!(page.starts_with(".TH KAI.TOML 5\n"));
        for line in CONFIGURATION.lines().filter(|l| l.starts_with("| `")) {
            let key = line.trim_start_matches("| `").split('`').next().unwrap_or_default();
            assert!(page.contains(&format!(".TP\n\\fB{}\\fR", escape(key))), "{key} is not a tagged paragraph of kai.toml(5)");
        }
        assert!(!page.lines().any(|l| l.starts_with('|')), "a table row was left as text");
    }

    /// kai.toml(5) is read by users: nothing in it speaks of kai's tests or source files.
    #[test]
    fn kai_toml_5_has_no_sentence_for_developers() {
        let page = markdown_to_roff("kai.toml", "5", "x", CONFIGURATION).to_lowercase();
        for phrase in ["a test", "the test", "fails when", "crates/", ".rs\\fr", ".rs)", "cargo "] {
            assert!(!page.contains(phrase), "kai.toml(5) speaks to developers ({phrase:?}); docs/configuration.md is for users");
        }
    }

    #[test]
    fn roff_escapes_requests_dashes_and_backslashes() {
        let page = markdown_to_roff("x", "5", "y", ".hidden line\n'quote\na \\ b --flag\n```\n.code\n```\n");
        assert!(page.contains("\\&.hidden line\n"));
        assert!(page.contains("\\&'quote\n"));
        assert!(page.contains("a \\e b \\-\\-flag\n"));
        assert!(page.contains("\\&.code\n"));
    }
}
