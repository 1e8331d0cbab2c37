//! A Maven repository served over HTTP(S): Artifactory, Nexus, or any static web server.

use std::path::Path;
use std::time::Duration;

use kai_core::checksum::Algorithm;
use reqwest::{Client, Method, Response, StatusCode, Url};
use tokio::io::AsyncWriteExt;

use super::digest::Hasher;
use super::{Credentials, Limits, RepoError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A download that sends nothing for this long is given up.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct HttpSource {
    /// Without a trailing slash, and never with credentials in it.
    base: String,
    client: Client,
    credentials: Option<Credentials>,
    limits: Limits,
}

impl HttpSource {
    pub(super) fn new(base: &str, credentials: Option<Credentials>, limits: Limits) -> Result<HttpSource, RepoError> {
        let base = validate_base(base)?;
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("kai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| RepoError::network(&base, source))?;
        Ok(HttpSource { base, client, credentials, limits })
    }

    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// `rel` is a Maven layout path with `/` separators.
    pub(super) fn url(&self, rel: &str) -> String {
        format!("{}/{}", self.base, rel)
    }

    /// The body of `rel` (at most `cap` bytes, within the document deadline), or
    /// `None` when the server answers 404.
    pub(super) async fn read_text(&self, rel: &str, cap: u64) -> Result<Option<String>, RepoError> {
        let url = self.url(rel);
        let limit = self.limits.document;
        let Some(mut response) = self.send(Method::GET, &url, limit).await? else {
            return Ok(None);
        };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| RepoError::network_within(&url, limit, source))? {
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(RepoError::TooLarge { url, limit: cap });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(String::from_utf8_lossy(&body).into_owned()))
    }

    pub(super) async fn exists(&self, rel: &str) -> Result<bool, RepoError> {
        let url = self.url(rel);
        Ok(self.send(Method::HEAD, &url, self.limits.document).await?.is_some())
    }

    /// The size the server gives for `rel` (`Content-Length` of a HEAD), when it gives one.
    pub(super) async fn size(&self, rel: &str) -> Result<Option<u64>, RepoError> {
        let url = self.url(rel);
        let response = self.send(Method::HEAD, &url, self.limits.document).await?;
        Ok(response.and_then(|r| r.headers().get(reqwest::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()))
    }

    /// Streams `rel` into `dst`, returning the digest and size of what was received.
    pub(super) async fn download(&self, rel: &str, dst: &Path, algorithm: Algorithm) -> Result<(String, u64), RepoError> {
        let url = self.url(rel);
        let limit = self.limits.download;
        let mut response = self
            .send(Method::GET, &url, limit)
            .await?
            .ok_or_else(|| RepoError::NotFound { what: "artifact".to_string(), url: url.clone() })?;
        let mut file = tokio::fs::File::create(dst).await.map_err(RepoError::io(dst))?;
        let mut hasher = Hasher::new(algorithm);
        let mut size = 0;
        while let Some(chunk) = response.chunk().await.map_err(|source| RepoError::network_within(&url, limit, source))? {
            file.write_all(&chunk).await.map_err(RepoError::io(dst))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        file.flush().await.map_err(RepoError::io(dst))?;
        Ok((hasher.finish_hex(), size))
    }

    /// Sends one request, which must be answered whole (body included) within `limit`;
    /// `None` for 404, an error for any other unsuccessful status.
    async fn send(&self, method: Method, url: &str, limit: Duration) -> Result<Option<Response>, RepoError> {
        let mut request = self.client.request(method, url).timeout(limit);
        if let Some(credentials) = &self.credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let response = request.send().await.map_err(|source| RepoError::network_within(url, limit, source))?;
        let status = response.status();
        let url = url.to_string();
        match status {
            _ if status.is_success() => Ok(Some(response)),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RepoError::Unauthorized { url, status }),
            _ => Err(RepoError::Http { url, status }),
        }
    }
}

/// An `http(s)://` URL without credentials in it (they come from the environment),
/// returned without a trailing slash.
fn validate_base(base: &str) -> Result<String, RepoError> {
    let invalid = |reason: &str| RepoError::InvalidLocation { location: redact(base), reason: reason.to_string() };
    let trimmed = base.trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("expected an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL are not allowed; name environment variables with username_env and password_env"));
    }
    Ok(trimmed.to_string())
}

/// Hides anything before an `@` in the authority, for URLs that could not be parsed.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_string(),
    }
}
