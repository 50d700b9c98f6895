//! One pooled connection of the blocking client: a `std::net::TcpStream` that the calling
//! thread writes and reads itself, with the socket's timeouts set from the request's deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::conn::configure;
use super::wire::{Failed, Raw, ResponseReader};
use super::{ClientConfig, Error};

/// How much one read takes from the socket at most.
const READ_CHUNK: usize = 16 << 10;

/// A live connection, checked out or idle.
#[derive(Debug)]
pub(super) struct Stream {
    stream: TcpStream,
    /// Bytes read and not yet consumed; empty between answers on a reusable connection.
    buf: BytesMut,
    /// Where reads land before they join `buf`, so nothing is zeroed per read.
    scratch: Box<[u8]>,
    /// When it last went back to the pool.
    pub(super) idle_since: Instant,
    /// How long it may stay idle: the client's idle timeout, or less if the server said so.
    pub(super) max_idle: Duration,
    /// The last exchange ended cleanly and the server did not say `Connection: close`.
    reusable: bool,
}

// === impl Stream ===

impl Stream {
    /// Connects within the connect timeout and what is left of the request's.
    pub(super) fn open(config: &ClientConfig, deadline: Instant) -> Result<Stream, Error> {
        let addr = config.addr;
        let wait = left(deadline).ok_or(Error::Timeout { after: config.request_timeout })?;
        let stream = TcpStream::connect_timeout(&addr, wait.min(config.connect_timeout)).map_err(
            |source| match source.kind() {
                io::ErrorKind::TimedOut if wait < config.connect_timeout => {
                    Error::Timeout { after: config.request_timeout }
                }
                io::ErrorKind::TimedOut => {
                    Error::ConnectTimeout { addr, after: config.connect_timeout }
                }
                _ => Error::Connect { addr, source },
            },
        )?;
        configure(socket2::SockRef::from(&stream), config)?;
        Ok(Stream {
            stream,
            buf: BytesMut::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            idle_since: Instant::now(),
            max_idle: config.idle_timeout,
            reusable: true,
        })
    }

    /// Whether the connection can carry another request, as far as is known without I/O.
    pub(super) fn is_reusable(&self) -> bool {
        self.reusable && self.buf.is_empty()
    }

    /// Whether an idle connection is still open and quiet: a non-blocking peek finds no EOF
    /// (the server's FIN), no error (its RST) and no stray byte (undici's "idle socket
    /// validation"). Only a peek that would block passes.
    pub(super) fn is_quiet(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let peeked = self.stream.peek(&mut [0u8; 1]);
        let quiet = matches!(&peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        quiet && self.stream.set_nonblocking(false).is_ok()
    }

    /// Sends `request` and reads the whole answer, body included, so the connection can be
    /// reused: a body left unread would cost the connection (spec §2.6). Every write and read
    /// waits at most until `deadline`.
    pub(super) fn exchange(
        &mut self,
        request: &[u8],
        deadline: Instant,
        config: &ClientConfig,
    ) -> Result<Raw, Failed> {
        self.reusable = false;
        let timeout = || Error::Timeout { after: config.request_timeout };
        let lost = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timeout(),
            _ => Error::Disconnected(Box::new(e)),
        };
        let mut nothing_read = true;
        let fail = |error, nothing_read| Failed { error, nothing_read };
        let wait = left(deadline).ok_or_else(|| fail(timeout(), true))?;
        self.stream.set_write_timeout(Some(wait)).map_err(|e| fail(lost(e), true))?;
        self.stream.write_all(request).map_err(|e| fail(lost(e), true))?;
        let mut reader = ResponseReader::new(config.max_answer_bytes);
        let raw = loop {
            let wait = left(deadline).ok_or_else(|| fail(timeout(), nothing_read))?;
            self.stream.set_read_timeout(Some(wait)).map_err(|e| fail(lost(e), nothing_read))?;
            let n = match self.stream.read(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(lost(e), nothing_read)),
            };
            if n == 0 {
                break reader.end().map_err(|e| fail(e, nothing_read))?;
            }
            nothing_read = false;
            self.buf.extend_from_slice(self.scratch.get(..n).unwrap_or_default());
            if let Some(raw) = reader.feed(&mut self.buf).map_err(|e| fail(e, false))? {
                break raw;
            }
        };
        let hints = reader.hints();
        self.max_idle = hints.max_idle(self.max_idle);
        self.reusable = reader.reusable();
        Ok(raw)
    }
}

/// What is left until `deadline`, if anything (a socket timeout of zero is refused).
fn left(deadline: Instant) -> Option<Duration> {
    Some(deadline.checked_duration_since(Instant::now())?).filter(|d| !d.is_zero())
}
