//! The Maven repository client: versions, checksums and artifacts, over HTTP(S) or from a folder.

mod digest;
mod error;
mod folder;
mod http;
mod part_file;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use kai_core::checksum::{parse_checksum_file, Algorithm, Checksum};
use kai_core::config::RepoLocation;
use kai_core::maven::{self, Coordinates};

pub use digest::hash_file;
pub use error::RepoError;

use folder::FolderSource;
use http::HttpSource;
use part_file::PartFile;

/// Credentials for an HTTP repository. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// How long requests to an HTTP repository may take, whole (connect, answer, body).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A document: maven-metadata.xml, a checksum file, a HEAD.
    pub document: std::time::Duration,
    /// An artifact kai downloads to push it.
    pub download: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { document: kai_core::config::REPOSITORY_TIMEOUT, download: std::time::Duration::from_secs(600) }
    }
}

/// The most kai reads of a `maven-metadata.xml` (an endless body is refused).
pub const METADATA_CAP: u64 = 8 * 1024 * 1024;
/// The most kai reads of a checksum file.
pub const CHECKSUM_CAP: u64 = 64 * 1024;

/// An artifact in the local cache, verified against the repository's checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub checksum: Checksum,
    pub size: u64,
}

/// A Maven repository, and the folder where its downloads are cached.
#[derive(Debug)]
pub struct Repository {
    source: Source,
    cache_dir: PathBuf,
}

#[derive(Debug)]
enum Source {
    Folder(FolderSource),
    Http(HttpSource),
}

impl Repository {
    /// `cache_dir`: where downloads are kept (one per repository). Credentials only
    /// apply to HTTP repositories.
    pub fn new(
        location: RepoLocation,
        credentials: Option<Credentials>,
        cache_dir: PathBuf,
        limits: Limits,
    ) -> Result<Repository, RepoError> {
        let source = match location {
            RepoLocation::Folder(root) => Source::Folder(FolderSource::new(root)?),
            RepoLocation::Http(base) => Source::Http(HttpSource::new(&base, credentials, limits)?),
        };
        Ok(Repository { source, cache_dir })
    }

    /// The folder where downloads are cached.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The URL or folder, never with credentials.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Folder(folder) => folder.root().display().to_string(),
            Source::Http(http) => http.base().to_string(),
        }
    }

    /// The artifact's full URL or file path, for display and for servers that pull.
    pub fn artifact_url(&self, coords: &Coordinates) -> String {
        self.location(&coords.artifact_path())
    }

    /// The versions listed in `maven-metadata.xml`, in its order. A folder repository
    /// without metadata lists its version folders instead.
    pub async fn versions(&self, group: &str, artifact: &str) -> Result<Vec<String>, RepoError> {
        let rel = maven::metadata_path(group, artifact);
        let what = format!("{group}:{artifact}");
        match &self.source {
            Source::Http(http) => match http.read_text(&rel, METADATA_CAP).await? {
                Some(xml) => parse_versions(&http.url(&rel), &xml),
                None => Err(RepoError::NotFound { what, url: http.url(&rel) }),
            },
            Source::Folder(folder) => match folder.read_text(&rel, METADATA_CAP).await? {
                Some(xml) => parse_versions(&self.location(&rel), &xml),
                None => Ok(valid_versions(&self.location(parent(&rel)), folder.list_versions(parent(&rel), &what).await?)),
            },
        }
    }

    /// The checksum the repository publishes for the artifact: `.sha256`, else
    /// `.sha1`, else `.md5`.
    pub async fn checksum(&self, coords: &Coordinates) -> Result<Checksum, RepoError> {
        let artifact = coords.artifact_path();
        for algorithm in Algorithm::PREFERENCE {
            let rel = format!("{artifact}.{}", algorithm.extension());
            if let Some(text) = self.read_text(&rel, CHECKSUM_CAP).await? {
                return parse_checksum_file(algorithm, &text).map_err(|reason| RepoError::BadChecksum { url: self.location(&rel), reason });
            }
        }
        let url = self.location(&artifact);
        if self.exists(&artifact).await? {
            Err(RepoError::NoChecksum { url })
        } else {
            Err(RepoError::NotFound { what: "artifact".to_string(), url })
        }
    }

    /// Downloads (or copies) the artifact into the cache and verifies it against
    /// [`Repository::checksum`]. A cached file that matches is reused as it is. The
    /// cache is keyed by checksum (`<algorithm>-<hex>/<file name>`): a path, once
    /// verified, never holds anything else, whichever repository another kai run on
    /// this machine fetches the same coordinates from.
    pub async fn fetch(&self, coords: &Coordinates) -> Result<Fetched, RepoError> {
        let checksum = self.checksum(coords).await?;
        let folder = self.cache_dir.join(format!("{}-{}", checksum.algorithm.extension(), checksum.hex));
        let path = folder.join(coords.file_name());
        if let Some(size) = cached_size(&path, &checksum).await? {
            return Ok(Fetched { path, checksum, size });
        }
        tokio::fs::create_dir_all(&folder).await.map_err(RepoError::io(&folder))?;
        let part = PartFile::beside(&path);
        let rel = coords.artifact_path();
        let (actual, size) = self.download(&rel, part.path(), checksum.algorithm).await?;
        if actual != checksum.hex {
            return Err(RepoError::ChecksumMismatch {
                url: self.location(&rel),
                expected: checksum.hex,
                actual,
                algorithm: checksum.algorithm,
            });
        }
        part.persist(&path).await?;
        Ok(Fetched { path, checksum, size })
    }

    /// The artifact's size as the repository says it, without downloading it (a hosts'
    /// free disk is checked against it when they download it themselves).
    pub async fn size(&self, coords: &Coordinates) -> Result<Option<u64>, RepoError> {
        let rel = coords.artifact_path();
        match &self.source {
            Source::Folder(folder) => folder.size(&rel).await,
            Source::Http(http) => http.size(&rel).await,
        }
    }

    fn location(&self, rel: &str) -> String {
        match &self.source {
            Source::Folder(folder) => folder.path(rel).display().to_string(),
            Source::Http(http) => http.url(rel),
        }
    }

    async fn read_text(&self, rel: &str, cap: u64) -> Result<Option<String>, RepoError> {
        match &self.source {
            Source::Folder(folder) => folder.read_text(rel, cap).await,
            Source::Http(http) => http.read_text(rel, cap).await,
        }
    }

    async fn exists(&self, rel: &str) -> Result<bool, RepoError> {
        match &self.source {
            Source::Folder(folder) => folder.exists(rel).await,
            Source::Http(http) => http.exists(rel).await,
        }
    }

    async fn download(&self, rel: &str, dst: &Path, algorithm: Algorithm) -> Result<(String, u64), RepoError> {
        match &self.source {
            Source::Folder(folder) => folder.download(rel, dst, algorithm).await,
            Source::Http(http) => http.download(rel, dst, algorithm).await,
        }
    }
}

fn parse_versions(url: &str, xml: &str) -> Result<Vec<String>, RepoError> {
    let listed = maven::parse_metadata(xml).map_err(|source| RepoError::Metadata { url: url.to_string(), source })?;
    Ok(valid_versions(url, listed))
}

/// The versions that can be names on a host (a release folder, a link target); the
/// others are left out, each with a warning: a repository does not get to name
/// `..` or a string with a newline in it.
fn valid_versions(from: &str, listed: Vec<String>) -> Vec<String> {
    let (valid, invalid): (Vec<String>, Vec<String>) = listed.into_iter().partition(|v| kai_core::ident::is_valid(v));
    for version in invalid {
        crate::terminal::write_stderr(&format!(
            "warning: {from} lists the version {:?}, which is not a valid name (letters, digits, . _ + -); left out\n",
            kai_core::table::printable(&version)
        ));
    }
    valid
}

/// The folder part of a Maven layout path.
fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The size of the cached file at `path` if its digest matches `expected`.
async fn cached_size(path: &Path, expected: &Checksum) -> Result<Option<u64>, RepoError> {
    let metadata = match tokio::fs::metadata(path).await {
        Ok(metadata) if metadata.is_file() => metadata,
        Ok(_) => return Ok(None),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RepoError::Io { path: path.to_path_buf(), source }),
    };
    let owned = path.to_path_buf();
    let algorithm = expected.algorithm;
    let actual = tokio::task::spawn_blocking(move || hash_file(&owned, algorithm))
        .await
        .map_err(io::Error::other)
        .and_then(|hashed| hashed)
        .map_err(RepoError::io(path))?;
    Ok((actual == expected.hex).then_some(metadata.len()))
}
