//! The first bytes of an intercepted connection: a TLS server name, an HTTP `Host`, or neither.
//!
//! The engine decides by name where it can, so the sidecar reads what the app sends first
//! before dialling the engine. Three rules keep this from breaking anything:
//!
//! * **Never wait on a server-speaks-first protocol (W11).** If no byte arrives within the peek
//!   timeout (150 ms by default), the connection is plain TCP, tunnelled at once: SSH, SMTP and
//!   MySQL clients wait for the server's greeting and would otherwise hang.
//! * **HTTP on any port (W10).** A request line starting with a known method is read up to the
//!   end of its head, wherever it is going, and its `Host` (port stripped) names the connection.
//! * **Never lose bytes.** Everything read here is kept in [`Peeked::bytes`] and replayed:
//!   written to the tunnel, or fed to the TLS server through [`Rewind`].
//!
//! Once the first byte has arrived, the rest of a ClientHello or HTTP head gets
//! [`COMPLETE_TIMEOUT`] and at most [`MAX_PEEK`] bytes; past either the connection is plain TCP.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use wharf_wire::head::{MAX_HEAD_LEN, RequestHead};
use wharf_wire::sni::{self, CONTENT_TYPE_HANDSHAKE, ClientHelloInfo};

/// How long the rest of a ClientHello or HTTP head may take once its first byte has arrived.
pub const COMPLETE_TIMEOUT: Duration = Duration::from_secs(2);
/// The most bytes read before deciding (the longest HTTP head accepted).
pub const MAX_PEEK: usize = MAX_HEAD_LEN;

/// Request methods whose request line marks a connection as HTTP/1.x.
const METHODS: [&[u8]; 9] =
    [b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH"];

/// What the app sent first, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    /// Every byte read, to be replayed.
    pub bytes: Vec<u8>,
    /// What the bytes are.
    pub first: FirstBytes,
}

/// What an intercepted connection's first bytes turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstBytes {
    /// A complete TLS ClientHello.
    Tls(ClientHelloInfo),
    /// A complete HTTP/1.x request head; the `Host` header without its port, if usable.
    Http {
        /// The host name or address the request is for.
        host: Option<String>,
    },
    /// Anything else, including nothing before the peek timeout.
    Opaque,
}

/// Whether the bytes so far decide what the connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Decided(FirstBytes),
    NeedMore,
}

/// A stream that yields `prefix` before reading from `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

// === impl Peeked ===

impl Peeked {
    /// The TLS server name, when the app sent a ClientHello with one.
    pub fn sni(&self) -> Option<&str> {
        match &self.first {
            FirstBytes::Tls(info) => info.sni.as_deref(),
            _ => None,
        }
    }

    /// The HTTP host, when the app sent a request head naming one.
    pub fn http_host(&self) -> Option<&str> {
        match &self.first {
            FirstBytes::Http { host } => host.as_deref(),
            _ => None,
        }
    }

    /// Whether the app opened with a TLS ClientHello.
    pub fn is_tls(&self) -> bool {
        matches!(self.first, FirstBytes::Tls(_))
    }
}

/// Reads `stream`'s first bytes, waiting at most `first_byte_timeout` for the first of them.
pub async fn peek<S>(stream: &mut S, first_byte_timeout: Duration) -> io::Result<Peeked>
where
    S: AsyncRead + Unpin,
{
    let mut bytes = Vec::new();
    let opaque = |bytes| Ok(Peeked { bytes, first: FirstBytes::Opaque });
    match tokio::time::timeout(first_byte_timeout, read_more(stream, &mut bytes)).await {
        Err(_elapsed) => return opaque(bytes),
        Ok(read) => {
            if read? == 0 {
                return opaque(bytes);
            }
        }
    }
    let deadline = Instant::now() + COMPLETE_TIMEOUT;
    loop {
        match classify(&bytes) {
            Verdict::Decided(first) => return Ok(Peeked { bytes, first }),
            Verdict::NeedMore if bytes.len() >= MAX_PEEK => return opaque(bytes),
            Verdict::NeedMore => {}
        }
        match tokio::time::timeout_at(deadline, read_more(stream, &mut bytes)).await {
            Ok(Ok(0)) | Err(_) => return opaque(bytes),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Reads what is available (at least one byte, or EOF) onto `bytes`, up to [`MAX_PEEK`].
async fn read_more<S>(stream: &mut S, bytes: &mut Vec<u8>) -> io::Result<usize>
where
    S: AsyncRead + Unpin,
{
    let mut chunk = [0u8; 4096];
    let room = MAX_PEEK.saturating_sub(bytes.len()).clamp(1, chunk.len());
    let n = stream.read(&mut chunk[..room]).await?;
    bytes.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Decides what `bytes` (at least one) are, or that more are needed to tell.
fn classify(bytes: &[u8]) -> Verdict {
    if bytes.first() == Some(&CONTENT_TYPE_HANDSHAKE) {
        return match sni::parse(bytes) {
            Ok(Some(info)) => Verdict::Decided(FirstBytes::Tls(info)),
            Ok(None) => Verdict::NeedMore,
            Err(e) => {
                tracing::debug!(error = %e, "not a tls client hello");
                Verdict::Decided(FirstBytes::Opaque)
            }
        };
    }
    match starts_like_http(bytes) {
        Verdict::Decided(FirstBytes::Http { .. }) => {}
        other => return other,
    }
    match RequestHead::parse(bytes) {
        Ok(Some((head, _))) => Verdict::Decided(FirstBytes::Http { host: host_of(&head) }),
        Ok(None) => Verdict::NeedMore,
        Err(e) => {
            tracing::debug!(error = %e, "not an http request head");
            Verdict::Decided(FirstBytes::Opaque)
        }
    }
}

/// Whether `bytes` begin with `<known method> `: `Http` (head still to be read), `NeedMore`
/// while they are a prefix of one, else `Opaque`.
fn starts_like_http(bytes: &[u8]) -> Verdict {
    let http = Verdict::Decided(FirstBytes::Http { host: None });
    for method in METHODS {
        let line_start = [method, b" "].concat();
        if bytes.starts_with(&line_start) {
            return http;
        }
        if line_start.starts_with(bytes) {
            return Verdict::NeedMore;
        }
    }
    Verdict::Decided(FirstBytes::Opaque)
}

/// The `Host` header without its port, if it is a plausible host: visible ASCII, no spaces.
/// An IPv6 literal keeps its brackets (`[::1]`), as URL hosts do.
fn host_of(head: &RequestHead) -> Option<String> {
    let raw = head.header("host")?.trim();
    let host = if raw.starts_with('[') {
        raw.find(']').map(|end| &raw[..=end])?
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    let plausible = !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic());
    plausible.then(|| host.to_owned())
}

// === impl Rewind ===

impl<S> Rewind<S> {
    /// A stream that replays `prefix`, then reads `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Rewind<S> {
        Rewind { prefix, pos: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
