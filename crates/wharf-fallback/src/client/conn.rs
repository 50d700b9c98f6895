//! One pooled connection: a hyper HTTP/1.1 client connection over a TCP stream that counts the
//! bytes it reads, so that a failure can be classified as "no byte of the answer came back".

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, LOCATION};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::wire::{Failed, Hints, Raw};
use super::{ClientConfig, Error, OnClose};

/// A live connection, checked out or idle.
#[derive(Debug)]
pub(super) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// Bytes read from the socket so far.
    read: Arc<AtomicU64>,
    /// When it last went back to the pool.
    pub(super) idle_since: Instant,
    /// How long it may stay idle: the client's idle timeout, or less if the server said so.
    pub(super) max_idle: Duration,
    /// The server said `Connection: close`.
    closing: bool,
}

/// A TCP stream that counts what it reads.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

// === impl Conn ===

impl Conn {
    /// Connects and hands the connection's I/O to a task of its own, which keeps reading while
    /// the connection is idle: a FIN or RST from the server closes it there and then.
    pub(super) async fn open(config: &ClientConfig) -> Result<Conn, Error> {
        let addr = config.addr;
        let stream = timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::ConnectTimeout { addr, after: config.connect_timeout })?
            .map_err(|source| Error::Connect { addr, source })?;
        configure(socket2::SockRef::from(&stream), config)?;
        let read = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(Counting { inner: stream, read: read.clone() });
        let (sender, connection) = http1::handshake(io).await.map_err(Error::from_hyper)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "wharf::fallback", error = %e, "connection ended");
            }
        });
        Ok(Conn {
            sender,
            read,
            idle_since: Instant::now(),
            max_idle: config.idle_timeout,
            closing: false,
        })
    }

    /// Whether the connection can carry another request, as far as is known without I/O.
    pub(super) fn is_reusable(&self) -> bool {
        !self.closing && !self.sender.is_closed()
    }

    /// Waits until the connection can take a request; fails if it closed meanwhile.
    pub(super) async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends `request` and reads the whole answer, body included, so the connection can be
    /// reused: a body left unread would cost the connection (spec §2.6).
    pub(super) async fn exchange(
        &mut self,
        request: http::Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Raw, Failed> {
        let before = self.read.load(Ordering::Relaxed);
        let failed = |conn: &Conn, error| Failed {
            error,
            nothing_read: conn.read.load(Ordering::Relaxed) == before,
        };
        let response = match self.sender.send_request(request).await {
            Ok(response) => response,
            Err(e) => return Err(failed(self, Error::from_hyper(e))),
        };
        let (parts, body) = response.into_parts();
        let hints =
            Hints::read(parts.headers.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())));
        self.closing |= hints.close;
        self.max_idle = hints.max_idle(self.max_idle);
        let declared =
            parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        if declared.is_some_and(|len: usize| len > limit) {
            self.closing = true;
            return Err(failed(self, Error::TooLarge { limit }));
        }
        let body = read_body(body, limit).await.map_err(|e| {
            self.closing = true;
            Failed { error: e, nothing_read: false }
        })?;
        let location = parts.headers.get(LOCATION).map(|v| Bytes::copy_from_slice(v.as_bytes()));
        Ok(Raw { status: parts.status.as_u16(), location, body })
    }
}

/// Sets a new connection up, for either client: no Nagle, and how it will close.
pub(super) fn configure(socket: socket2::SockRef<'_>, config: &ClientConfig) -> Result<(), Error> {
    let fail = |source| Error::Connect { addr: config.addr, source };
    // One segment per request: Nagle plus delayed ACKs costs tens of ms per answer (spec §8).
    socket.set_tcp_nodelay(true).map_err(fail)?;
    if config.on_close == OnClose::Reset {
        socket.set_linger(Some(Duration::ZERO)).map_err(fail)?;
    }
    Ok(())
}

/// Reads a body to its end, refusing more than `limit` bytes. A body in one frame is not
/// copied.
async fn read_body(mut body: hyper::body::Incoming, limit: usize) -> Result<Bytes, Error> {
    let (mut first, mut rest, mut total) = (None::<Bytes>, BytesMut::new(), 0usize);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Error::from_hyper)?.into_data() else { continue };
        total += data.len();
        if total > limit {
            return Err(Error::TooLarge { limit });
        }
        if first.is_none() && rest.is_empty() {
            first = Some(data);
        } else {
            if let Some(first) = first.take() {
                rest.extend_from_slice(&first);
            }
            rest.extend_from_slice(&data);
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

// === impl Counting ===

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
