//! Connections to `kai serve`, accepted with bounds: a client is untrusted. At most
//! [`MAX_CONNECTIONS`] connections are open at once, at most [`MAX_PER_CLIENT`] from one
//! address (past either, a new one is closed at once), and each lives at most
//! [`LIFETIME`]: a connection that sends nothing, or trickles a header line every few
//! seconds, is closed then, and so is a browser's idle keep-alive (it opens another).
//! A real request from another client is answered whatever one client holds open.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Connections open at once, from everyone.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections open at once from one address.
pub const MAX_PER_CLIENT: usize = 64;
/// How long a connection may stay open, whatever it does: every page and API answer
/// takes milliseconds.
pub const LIFETIME: Duration = Duration::from_secs(30);

/// Open connections by client address.
#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// A TCP listener that accepts within the bounds.
pub struct Bounded {
    inner: TcpListener,
    counts: Arc<Mutex<Counts>>,
}

impl Bounded {
    pub fn new(inner: TcpListener) -> Bounded {
        Bounded { inner, counts: Arc::default() }
    }

    /// Takes a slot for `client`, or none when it or everyone holds too many.
    fn admit(&self, client: IpAddr) -> Option<Slot> {
        let mut counts = self.counts.lock().ok()?;
        let mine = counts.by_client.get(&client).copied().unwrap_or(0);
        if counts.total >= MAX_CONNECTIONS || mine >= MAX_PER_CLIENT {
            return None;
        }
        counts.total += 1;
        *counts.by_client.entry(client).or_default() += 1;
        Some(Slot { client, counts: Arc::clone(&self.counts) })
    }
}

/// One connection's place in the counts, given back when it closes.
struct Slot {
    client: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.by_client.get_mut(&self.client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.by_client.remove(&self.client);
                }
            }
        }
    }
}

impl axum::serve::Listener for Bounded {
    type Io = BoundedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors, say: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Over the bounds: closed at once (dropped).
            let Some(slot) = self.admit(peer.ip()) else { continue };
            let _ = stream.set_nodelay(true);
            return (BoundedStream { stream, _slot: slot, deadline: Box::pin(tokio::time::sleep(LIFETIME)) }, peer);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection that ends at its deadline.
pub struct BoundedStream {
    stream: TcpStream,
    _slot: Slot,
    deadline: Pin<Box<Sleep>>,
}

impl BoundedStream {
    /// Past its deadline: every read and write fails, and the server closes it. (Polling
    /// the deadline also wakes a read waiting on a client that sends nothing.)
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn too_long() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection outlived its time")
}

impl AsyncRead for BoundedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(too_long()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(too_long()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
