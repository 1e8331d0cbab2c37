//! Stop requests: Ctrl-C (SIGINT), SIGTERM (a CI job cancelled, `kill`) and SIGHUP (the
//! terminal or SSH session gone). The first asks every deploy to stop safely: the
//! servers being switched finish (or are put back), no new server is taken out, locks
//! are released, what happened is recorded; kai then exits 128 + the signal's number
//! (130, 143, 129). A second stops kai at once, wherever it is.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use tokio::signal::unix::{signal, SignalKind};

/// A signal is process-wide state; these are its only reflection in kai.
static REQUESTED: AtomicBool = AtomicBool::new(false);
static FIRST: AtomicI32 = AtomicI32::new(0);

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The exit status for a run that was asked to stop: 128 + the first signal.
pub fn exit_code() -> u8 {
    u8::try_from(128 + FIRST.load(Ordering::SeqCst)).unwrap_or(130)
}

/// What kai says at the first signal.
pub fn notice() -> String {
    let what = match FIRST.load(Ordering::SeqCst) {
        15 => "SIGTERM",
        1 => "SIGHUP",
        _ => "interrupt",
    };
    format!("{what}: finishing the servers being switched, then stopping (a second Ctrl-C or signal stops at once)")
}

/// Waits for a second stop signal; the first sets the flag (and says so, unless live
/// progress lines own the terminal: they print the notice themselves).
pub async fn second_signal() {
    let kinds = [(SignalKind::interrupt(), 2), (SignalKind::terminate(), 15), (SignalKind::hangup(), 1)];
    let mut streams = Vec::new();
    for (kind, number) in kinds {
        match signal(kind) {
            Ok(stream) => streams.push((stream, number)),
            Err(_) => return std::future::pending().await,
        }
    }
    let mut seen = 0;
    loop {
        let waits = streams.iter_mut().map(|(stream, number)| {
            let number = *number;
            Box::pin(async move {
                stream.recv().await;
                number
            })
        });
        let (number, _, _) = futures_util::future::select_all(waits).await;
        seen += 1;
        if seen == 1 {
            FIRST.store(number, Ordering::SeqCst);
            REQUESTED.store(true, Ordering::SeqCst);
            if !crate::terminal::owns_terminal() {
                crate::terminal::write_stderr(&format!("\n{}\n", notice()));
            }
        } else {
            return;
        }
    }
}
