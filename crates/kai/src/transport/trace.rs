//! `KAI_TRACE=FILE`: every text a transport is given, with its standard input, appended
//! to FILE as it is sent. For the tests that hold the plan against what is sent, and
//! for a person who wants to see the wire. Secrets are masked as a plan masks them;
//! the file is made readable by its owner only.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::{Output, Payload, Place, Transport, TransportError};

/// A transport that writes down what it sends, then sends it through `inner`.
pub struct Traced<T> {
    pub inner: T,
    file: Option<Mutex<std::fs::File>>,
}

impl<T> Traced<T> {
    /// `path`: where to write (nothing is written without one).
    pub fn new(inner: T, path: Option<&PathBuf>) -> Traced<T> {
        let file = path
            .and_then(|p| {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(p).ok()
            })
            .map(Mutex::new);
        Traced { inner, file }
    }

    fn write(&self, place: &Place, text: &str, input: Payload<'_>) {
        let Some(file) = &self.file else { return };
        let mut entry = format!("=== {} sends: {text}\n", place.host);
        match input {
            Payload::Script { shown, .. } => entry.push_str(&format!("=== stdin\n{shown}=== end\n")),
            Payload::File(path) => entry.push_str(&format!("=== stdin: the file {}\n", path.display())),
            Payload::Nothing => entry.push_str("=== stdin: nothing\n"),
        }
        if let Ok(mut file) = file.lock() {
            let _ = file.write_all(entry.as_bytes());
        }
    }
}

impl<T: Transport> Transport for Traced<T> {
    async fn send(&self, place: &Place, text: &str, input: Payload<'_>, limit: Duration) -> Result<Output, TransportError> {
        self.write(place, text, input);
        self.inner.send(place, text, input, limit).await
    }
}
