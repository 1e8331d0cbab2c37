//! Whether kai colors what it writes: `--color auto|always|never`, then `NO_COLOR`
//! (set to anything but empty: no color), then whether the stream is a terminal that
//! shows color (not `TERM=dumb`). Decided once, at the start of a command.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always, even into a pipe or a file (and despite NO_COLOR).
    Always,
    /// Never.
    Never,
}

/// (standard output, standard error) colored.
static CHOSEN: OnceLock<(bool, bool)> = OnceLock::new();

/// Decides for the rest of the process; `no_color`: NO_COLOR is set, `dumb`: TERM=dumb.
pub fn choose(when: When, no_color: bool, dumb: bool) {
    let auto = |terminal: bool| terminal && !no_color && !dumb;
    let chosen = match when {
        When::Always => (true, true),
        When::Never => (false, false),
        When::Auto => (auto(std::io::stdout().is_terminal()), auto(std::io::stderr().is_terminal())),
    };
    let _ = CHOSEN.set(chosen);
}

/// What goes to standard output is colored.
pub fn stdout() -> bool {
    CHOSEN.get().is_some_and(|c| c.0)
}

/// What goes to standard error is colored.
pub fn stderr() -> bool {
    CHOSEN.get().is_some_and(|c| c.1)
}
