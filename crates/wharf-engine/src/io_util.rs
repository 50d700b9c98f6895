//! Small I/O adapters: a stream that replays bytes read past a head before reading on, and the
//! byte relay every tunnel ends in.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wharf_wire::RELAY_BUFFER_BYTES;

/// Copies both ways until both sides are done, with [`RELAY_BUFFER_BYTES`] buffers; answers the
/// bytes `a` sent and the bytes `b` sent.
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    tokio::io::copy_bidirectional_with_sizes(a, b, RELAY_BUFFER_BYTES, RELAY_BUFFER_BYTES).await
}

/// A bidirectional byte stream, boxed.
pub trait AsyncIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncIo for T {}

/// A boxed [`AsyncIo`].
pub type BoxIo = Box<dyn AsyncIo>;

/// Replays `prefix` before reading from `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub struct Prefixed<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Prefixed<T> {
    /// Wraps `inner`, to be read after `prefix`.
    pub fn new(prefix: Bytes, inner: T) -> Prefixed<T> {
        Prefixed { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
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
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn prefix_is_read_first_and_writes_pass_through() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut io = Prefixed::new(Bytes::from_static(b"head-"), a);
        b.write_all(b"rest").await.unwrap();
        drop(b.shutdown().await);
        let mut got = Vec::new();
        // The peer's half-close ends the read after "rest".
        let mut buf = [0u8; 3];
        loop {
            let n = io.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() == 9 {
                break;
            }
        }
        assert_eq!(got, b"head-rest");
    }
}

/// Reads from `stream` until `parse` finds a whole head; returns it with the bytes read past it.
/// Gives up at `max` bytes or EOF.
pub async fn read_head<S, H>(
    stream: &mut S,
    max: usize,
    parse: impl Fn(&[u8]) -> Result<Option<(H, usize)>, wharf_wire::head::HeadError>,
) -> io::Result<(H, Bytes)>
where
    S: AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a whole head arrived",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse(&buf) {
            Ok(Some((head, used))) => return Ok((head, Bytes::copy_from_slice(&buf[used..]))),
            Ok(None) if buf.len() < max => continue,
            Ok(None) => return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long")),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Wraps a stream and counts the bytes read from and written to it.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The shared counters of a [`Counted`] stream: (bytes read, bytes written).
pub type Counters =
    (std::sync::Arc<std::sync::atomic::AtomicU64>, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl<T> Counted<T> {
    /// Wraps `inner`; the counters stay readable after the stream is gone.
    pub fn new(inner: T) -> (Counted<T>, Counters) {
        let (read, written) = (std::sync::Arc::default(), std::sync::Arc::default());
        let counters = (std::sync::Arc::clone(&read), std::sync::Arc::clone(&written));
        (Counted { inner, read, written }, counters)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.written.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
