//! Standard error as progress and notices share it: whether live progress lines own
//! the terminal (anything else must then go through them, or their redraw would write
//! over it), and writing that never fails a run (a terminal gone after SIGHUP).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set while live lines are on the terminal.
static LIVE: AtomicBool = AtomicBool::new(false);

/// Whether live progress lines are on the terminal now.
pub fn owns_terminal() -> bool {
    LIVE.load(Ordering::SeqCst)
}

/// Live progress lines take the terminal (`true`) or give it back.
pub fn set_live(live: bool) {
    LIVE.store(live, Ordering::SeqCst);
}

/// Writes to standard error; a terminal that went away is not an error.
pub fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// The columns a live line may use: `$COLUMNS` when the shell exports it, else 100
/// (lines that wrap would break redrawing in place; a narrower terminal than that is
/// rare, and only a canary's figures grow that long).
pub fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|&c: &usize| c >= 40).unwrap_or(100)
}
