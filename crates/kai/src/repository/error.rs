//! What can go wrong talking to a Maven repository, with the URL or path a person needs.

use std::io;
use std::path::PathBuf;

use kai_core::checksum::Algorithm;
use kai_core::maven::MetadataError;
use reqwest::StatusCode;

/// An error from the repository client. URLs here never carry credentials, and the
/// messages are self-contained: printing `{}` is enough, the cause is already in it.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{what} not found: {url}")]
    NotFound { what: String, url: String },

    #[error("access denied ({status}) to {url}: check the credentials")]
    Unauthorized { url: String, status: StatusCode },

    #[error("checksum mismatch for {url}: expected {algorithm} {expected}, got {actual}")]
    ChecksumMismatch { url: String, expected: String, actual: String, algorithm: Algorithm },

    #[error("unexpected HTTP status {status} from {url}")]
    Http { url: String, status: StatusCode },

    #[error("cannot reach {url}: {}", innermost(source))]
    Network { url: String, source: reqwest::Error },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("cannot read {url}: {source}")]
    Metadata { url: String, source: MetadataError },

    #[error("no checksum (.sha256, .sha1 or .md5) published for {url}")]
    NoChecksum { url: String },

    #[error("invalid checksum file {url}: {reason}")]
    BadChecksum { url: String, reason: String },

    #[error("invalid repository location {location}: {reason}")]
    InvalidLocation { location: String, reason: String },

    #[error("{url} is larger than {limit} bytes, more than kai reads of such a file")]
    TooLarge { url: String, limit: u64 },

    #[error("no complete answer from {url} within {} ([repository] timeout, or [defaults] fetch_timeout for an artifact)", humantime::format_duration(*limit))]
    TooSlow { url: String, limit: std::time::Duration },
}

impl RepoError {
    pub(super) fn network(url: &str, source: reqwest::Error) -> RepoError {
        RepoError::Network { url: url.to_string(), source: source.without_url() }
    }

    /// For a request past its deadline: [`RepoError::TooSlow`]; anything else as it is.
    pub(super) fn network_within(url: &str, limit: std::time::Duration, source: reqwest::Error) -> RepoError {
        if source.is_timeout() {
            RepoError::TooSlow { url: url.to_string(), limit }
        } else {
            RepoError::network(url, source)
        }
    }

    /// For `map_err`: an I/O error on `path`.
    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> RepoError {
        let path = path.into();
        move |source| RepoError::Io { path, source }
    }
}

/// reqwest's own message is "error sending request"; the reason (refused, timed out,
/// unknown host, bad certificate) is at the end of the chain.
fn innermost(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
