//! Reading what the outside sends with a bound: an HTTP body or a stream, at most so
//! many bytes. A host, a balancer or a client can be broken or hostile; what it sends
//! is never read whole into memory on trust (the deadline is the caller's).

use tokio::io::{AsyncRead, AsyncReadExt};

/// The body of `response` as text, or why not: it said more than `cap` bytes.
pub async fn body(mut response: reqwest::Response, cap: usize, what: &str) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{what}: {e}"))? {
        if body.len() + chunk.len() > cap {
            return Err(format!("{what}: the answer is larger than {} KiB, which kai does not read", cap / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Everything `stream` sends until it ends, or why not: more than `cap` bytes.
pub async fn text<R: AsyncRead + Unpin>(stream: R, cap: usize) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    let read = stream.take(cap as u64 + 1).read_to_end(&mut bytes).await?;
    if read > cap {
        return Err(std::io::Error::other(format!("more than {} KiB, which kai does not read", cap / 1024)));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What a balancer's page or answer may weigh: `show stat` of a backend of thousands
/// of servers, a balancer-manager page of as many workers.
pub const BALANCER: usize = 4 * 1024 * 1024;

/// What an app's health or version answer may weigh.
pub const SMALL: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_is_read_to_its_end_within_the_cap_and_refused_beyond() {
        assert_eq!(text(&b"0123456789"[..], 10).await.unwrap(), "0123456789");
        let error = text(&b"0123456789!"[..], 10).await.unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
    }
}
