//! Ctrl-C. The first one asks a deploy to stop safely: the servers being switched
//! finish (or are put back), no new server is taken out, locks are released. The
//! second stops kai at once, wherever it is (exit 130).

use std::sync::atomic::{AtomicBool, Ordering};

/// A signal is process-wide state; this flag is its only reflection in kai.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether the user asked to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// What kai says at the first Ctrl-C.
pub const NOTICE: &str = "interrupt: finishing the servers being switched, then stopping (Ctrl-C again to stop at once)";

/// Waits for Ctrl-C twice: the first sets the flag, the second returns. Live progress
/// lines own the terminal while they are shown, and print the notice themselves.
pub async fn second_ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        return std::future::pending().await;
    }
    REQUESTED.store(true, Ordering::SeqCst);
    if !crate::progress::owns_terminal() {
        eprintln!("\n{NOTICE}");
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
