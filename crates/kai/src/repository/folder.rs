//! A Maven repository that is a folder on this machine (a share, or `~/.m2/repository`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kai_core::checksum::Algorithm;

use super::digest::{Hasher, BUFFER_SIZE};
use super::RepoError;

#[derive(Debug)]
pub(super) struct FolderSource {
    root: PathBuf,
}

impl FolderSource {
    pub(super) fn new(root: PathBuf) -> Result<FolderSource, RepoError> {
        if !root.is_absolute() {
            return Err(RepoError::InvalidLocation {
                location: root.display().to_string(),
                reason: "a folder repository must be an absolute path".to_string(),
            });
        }
        Ok(FolderSource { root })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` is a Maven layout path with `/` separators.
    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The file's text (at most `cap` bytes), or `None` when there is no such file.
    pub(super) async fn read_text(&self, rel: &str, cap: u64) -> Result<Option<String>, RepoError> {
        let path = self.path(rel);
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            if meta.len() > cap {
                return Err(RepoError::TooLarge { url: path.display().to_string(), limit: cap });
            }
        }
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RepoError::Io { path, source }),
        }
    }

    pub(super) async fn exists(&self, rel: &str) -> Result<bool, RepoError> {
        let path = self.path(rel);
        tokio::fs::try_exists(&path).await.map_err(RepoError::io(path))
    }

    /// The file's size, when it is there.
    pub(super) async fn size(&self, rel: &str) -> Result<Option<u64>, RepoError> {
        let path = self.path(rel);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RepoError::Io { path, source }),
        }
    }

    /// The names of the sub-folders of `rel_dir`: the versions, where no metadata says so.
    pub(super) async fn list_versions(&self, rel_dir: &str, what: &str) -> Result<Vec<String>, RepoError> {
        let dir = self.path(rel_dir);
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(RepoError::NotFound { what: what.to_string(), url: dir.display().to_string() })
            }
            Err(source) => return Err(RepoError::Io { path: dir, source }),
        };
        let mut versions = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(RepoError::io(&dir))? {
            let file_type = entry.file_type().await.map_err(RepoError::io(entry.path()))?;
            let name = entry.file_name();
            match name.to_str() {
                Some(name) if file_type.is_dir() && !name.starts_with('.') => {
                    versions.push(name.to_string());
                }
                _ => {}
            }
        }
        versions.sort();
        Ok(versions)
    }

    /// Copies `rel` to `dst`, returning the digest and size of what was copied.
    pub(super) async fn download(&self, rel: &str, dst: &Path, algorithm: Algorithm) -> Result<(String, u64), RepoError> {
        let src = self.path(rel);
        let dst = dst.to_path_buf();
        tokio::task::spawn_blocking(move || copy_hashing(&src, &dst, algorithm))
            .await
            .map_err(|join| RepoError::Io { path: self.path(rel), source: io::Error::other(join) })?
    }
}

fn copy_hashing(src: &Path, dst: &Path, algorithm: Algorithm) -> Result<(String, u64), RepoError> {
    let mut input = File::open(src).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RepoError::NotFound { what: "artifact".to_string(), url: src.display().to_string() },
        _ => RepoError::Io { path: src.to_path_buf(), source },
    })?;
    let mut output = File::create(dst).map_err(RepoError::io(dst))?;
    let mut hasher = Hasher::new(algorithm);
    let mut buffer = vec![0; BUFFER_SIZE];
    let mut size = 0;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(RepoError::io(src)(source)),
        };
        output.write_all(&buffer[..n]).map_err(RepoError::io(dst))?;
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hasher.finish_hex(), size))
}
