//! One pooled connection of the blocking client: a `std::net::TcpStream` that the calling
//! thread writes and reads itself, with the socket's timeouts set from the request's deadline.
//!
//! A call costs three system calls when all goes well: the peek at checkout, one write and one
//! read. The socket's timeouts are only lowered when a request has less time left than they
//! allow, and raised again only when one fires before the request's deadline, so a steady
//! stream of requests sets them almost never.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socket2::SockRef;

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
    /// The socket's `SO_RCVTIMEO` and `SO_SNDTIMEO` as last set; `None` is "never times out".
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// `TcpStream::set_read_timeout` or `set_write_timeout`.
type SetTimeout = fn(&TcpStream, Option<Duration>) -> io::Result<()>;

/// Which of the socket's two timeouts.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Read,
    Write,
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
        configure(SockRef::from(&stream), config)?;
        Ok(Stream {
            stream,
            buf: BytesMut::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            idle_since: Instant::now(),
            max_idle: config.idle_timeout,
            reusable: true,
            read_timeout: None,
            write_timeout: None,
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
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        let peeked = SockRef::from(&self.stream)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT);
        matches!(&peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
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
        let mut sent = 0;
        while let Some(rest) = request.get(sent..).filter(|rest| !rest.is_empty()) {
            self.arm(Direction::Write, deadline).map_err(|e| fail(lost(e), true))?;
            match self.stream.write(rest) {
                Ok(0) => return Err(fail(lost(io::ErrorKind::WriteZero.into()), true)),
                Ok(n) => sent += n,
                Err(e) if self.may_go_on(&e, Direction::Write, deadline) => {}
                Err(e) => return Err(fail(lost(e), true)),
            }
        }
        let mut reader = ResponseReader::new(config.max_answer_bytes);
        let raw = loop {
            self.arm(Direction::Read, deadline).map_err(|e| fail(lost(e), nothing_read))?;
            let n = match self.stream.read(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if self.may_go_on(&e, Direction::Read, deadline) => continue,
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

    /// Makes sure the socket's timeout for `direction` fires no later than `deadline`, lowering
    /// it only when it would fire later. Past the deadline, a `TimedOut` error.
    fn arm(&mut self, direction: Direction, deadline: Instant) -> io::Result<()> {
        let wait = left(deadline).ok_or(io::ErrorKind::TimedOut)?;
        let (current, set): (_, SetTimeout) = match direction {
            Direction::Read => (&mut self.read_timeout, TcpStream::set_read_timeout),
            Direction::Write => (&mut self.write_timeout, TcpStream::set_write_timeout),
        };
        if current.is_none_or(|t| t > wait) {
            set(&self.stream, Some(wait))?;
            *current = Some(wait);
        }
        Ok(())
    }

    /// Whether a failed read or write may be tried again: interrupted, or a timeout that was
    /// set for an earlier request and fired before this one's deadline (it is set anew).
    fn may_go_on(&mut self, e: &io::Error, direction: Direction, deadline: Instant) -> bool {
        match e.kind() {
            io::ErrorKind::Interrupted => true,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut if left(deadline).is_some() => {
                match direction {
                    Direction::Read => self.read_timeout = None,
                    Direction::Write => self.write_timeout = None,
                }
                true
            }
            _ => false,
        }
    }
}

/// What is left until `deadline`, if anything (a socket timeout of zero is refused).
fn left(deadline: Instant) -> Option<Duration> {
    Some(deadline.checked_duration_since(Instant::now())?).filter(|d| !d.is_zero())
}
