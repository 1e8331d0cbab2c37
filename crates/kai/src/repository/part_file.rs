//! A download in progress: a temporary file beside its destination, removed unless
//! it is renamed into place.

use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

use super::RepoError;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(super) struct PartFile {
    path: PathBuf,
    persisted: bool,
}

impl PartFile {
    /// A unique hidden name in the destination's folder, so the rename stays on one
    /// file system and two runs never write the same file.
    pub(super) fn beside(destination: &Path) -> PartFile {
        let name = destination.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let part = format!(".{name}.{}-{id}.part", process::id());
        PartFile { path: destination.with_file_name(part), persisted: false }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `destination`, replacing what was there.
    pub(super) async fn persist(mut self, destination: &Path) -> Result<(), RepoError> {
        tokio::fs::rename(&self.path, destination).await.map_err(RepoError::io(destination))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: it may never have been created.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
