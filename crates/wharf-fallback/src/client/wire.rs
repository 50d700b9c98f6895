//! The parts of an exchange that need no I/O: the raw answer both clients decode, the server's
//! connection hints both honour, the retry rule both apply, and, for the blocking client, an
//! HTTP/1.1 request encoder and an incremental response reader (`httparse` for the head; the
//! body framed by `Transfer-Encoding: chunked`, `Content-Length` or the connection's end).
//!
//! **Invariant:** nothing here reads a socket or a clock, and no server input can make it panic
//! or hold more than `max_answer_bytes` of body (plus [`MAX_HEAD_BYTES`] of head).

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

use super::Error;
use crate::protocol::{Answer, Request};

/// The largest response head accepted (status line, headers, chunked trailers). A fallback
/// answer's head is a few hundred bytes; more is refused as malformed.
pub(super) const MAX_HEAD_BYTES: usize = 64 << 10;

/// The most header lines one response head may have.
const MAX_HEADERS: usize = 64;

/// The parts of a response the protocol needs.
#[derive(Debug)]
pub(super) struct Raw {
    pub(super) status: u16,
    pub(super) location: Option<Bytes>,
    pub(super) body: Bytes,
}

/// A failed exchange.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) error: Error,
    /// Not one byte came back after the request went out: the server cannot have answered.
    pub(super) nothing_read: bool,
}

/// What a response's headers say about the connection it came on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Hints {
    /// `Connection: close`: the server closes after this answer.
    pub(super) close: bool,
    /// `Connection: keep-alive`, which an HTTP/1.0 answer needs to keep the connection.
    pub(super) keep_alive: bool,
    /// `Keep-Alive: timeout=N`: how long the server keeps an idle connection.
    pub(super) server_idle: Option<Duration>,
}

/// Reads one response from bytes as they arrive.
#[derive(Debug)]
pub(super) struct ResponseReader {
    limit: usize,
    state: State,
    status: u16,
    location: Option<Bytes>,
    hints: Hints,
    body: BytesMut,
}

/// Where the reader is in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// This many body bytes still to come.
    Length(usize),
    ChunkSize,
    /// This many bytes of the current chunk still to come.
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    /// A body with no framing: it ends where the connection does.
    UntilClose,
    Done,
}

/// Why bytes that came back are not an HTTP/1.1 response; the source of [`Error::Http`].
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("bad response head: {0}")]
    Head(httparse::Error),
    #[error("the response head or trailers are larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("the server switched protocols (101)")]
    Upgrade,
    #[error("Content-Length is not one number: {0:?}")]
    ContentLength(String),
    #[error("bad chunk size line")]
    ChunkSize,
    #[error("a chunk's data is not followed by CRLF")]
    ChunkEnd,
}

// === impl Raw ===

impl Raw {
    /// Classifies the answer with the protocol's rules (spec §1.4).
    pub(super) fn answer(&self, request: &Request) -> Result<Answer, Error> {
        let location = self.location.as_deref();
        Ok(Answer::from_http(self.status, location, &self.body, request.effective_specifier())?)
    }
}

// === impl Failed ===

impl Failed {
    /// Whether to ask again on a new connection: only when the request went out on a reused
    /// connection and not one byte came back, so the server closed that socket without reading
    /// the request and cannot have processed it (spec §2.10, retry rule 3). A timeout is never
    /// retried: the deadline covers both attempts.
    pub(super) fn may_retry(&self, reused: bool) -> bool {
        reused && self.nothing_read && !self.error.is_timeout()
    }
}

// === impl Hints ===

impl Hints {
    /// Reads the hints from header `(name, value)` pairs; names compare case-insensitively.
    pub(super) fn read<'h>(headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>) -> Hints {
        let mut hints = Hints::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"connection") {
                for token in tokens(value) {
                    hints.close |= token.eq_ignore_ascii_case(b"close");
                    hints.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case(b"keep-alive") {
                let timeout = tokens(value).find_map(|t| t.strip_prefix(b"timeout="));
                let secs = timeout.and_then(|t| std::str::from_utf8(t).ok()?.trim().parse().ok());
                hints.server_idle = secs.map(Duration::from_secs).or(hints.server_idle);
            }
        }
        hints
    }

    /// How long a connection may idle: `current`, or a second less than the server keeps it
    /// if the server said so (undici's rule, spec §5).
    pub(super) fn max_idle(&self, current: Duration) -> Duration {
        match self.server_idle {
            Some(server) => current.min(server.saturating_sub(Duration::from_secs(1))),
            None => current,
        }
    }
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// The request as HTTP/1.1 bytes: request line, headers as given, body.
pub(super) fn encode_request(request: &http::Request<Bytes>) -> Vec<u8> {
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let body = request.body();
    let mut out = Vec::with_capacity(64 + target.len() + body.len());
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

// === impl ResponseReader ===

impl ResponseReader {
    /// A reader that refuses bodies larger than `limit` bytes.
    pub(super) fn new(limit: usize) -> ResponseReader {
        ResponseReader {
            limit,
            state: State::Head,
            status: 0,
            location: None,
            hints: Hints::default(),
            body: BytesMut::new(),
        }
    }

    /// Consumes what it can of `buf`: the whole answer once it is there, `None` while more bytes
    /// are needed. Bytes after the answer are left in `buf`.
    pub(super) fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Raw>, Error> {
        loop {
            match self.state {
                State::Head => {
                    if !self.head(buf)? {
                        return Ok(None);
                    }
                }
                State::Length(0) | State::Done => {
                    self.state = State::Done;
                    return Ok(Some(self.raw()));
                }
                State::Length(left) | State::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = left.min(buf.len());
                    self.body.unsplit(buf.split_to(take));
                    self.state = match self.state {
                        State::Length(_) => State::Length(left - take),
                        _ if take == left => State::ChunkEnd,
                        _ => State::ChunkData(left - take),
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        let size = usize::try_from(size).unwrap_or(usize::MAX);
                        self.admit(size)?;
                        self.state =
                            if size == 0 { State::Trailers } else { State::ChunkData(size) };
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => {
                        return Ok(None);
                    }
                    _ => return Err(http(Malformed::ChunkSize)),
                },
                State::ChunkEnd => match buf.get(..2) {
                    None => return Ok(None),
                    Some(b"\r\n") => {
                        buf.advance(2);
                        self.state = State::ChunkSize;
                    }
                    Some(_) => return Err(http(Malformed::ChunkEnd)),
                },
                State::Trailers => {
                    let end = if buf.starts_with(b"\r\n") {
                        Some(2)
                    } else {
                        buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
                    };
                    match end {
                        Some(end) => {
                            buf.advance(end);
                            self.state = State::Done;
                        }
                        None if buf.len() <= MAX_HEAD_BYTES => return Ok(None),
                        None => return Err(http(Malformed::HeadTooLarge)),
                    }
                }
                State::UntilClose => {
                    let take = buf.len();
                    self.admit(take)?;
                    self.body.unsplit(buf.split_to(take));
                    return Ok(None);
                }
            }
        }
    }

    /// The connection ended: the answer, if its body was framed by that end, else the error.
    pub(super) fn end(&mut self) -> Result<Raw, Error> {
        if self.state == State::UntilClose {
            self.state = State::Done;
            return Ok(self.raw());
        }
        Err(Error::Disconnected(Box::new(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before the end of the answer",
        ))))
    }

    /// Whether the connection can carry another request after this answer.
    pub(super) fn reusable(&self) -> bool {
        self.state == State::Done && !self.hints.close
    }

    /// The server's hints, once the head is in.
    pub(super) fn hints(&self) -> Hints {
        self.hints
    }

    /// Parses the head if it is all there, and picks the body's framing. Informational (1xx)
    /// heads are skipped, as hyper does.
    fn head(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let used = match response.parse(buf) {
            Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD_BYTES => used,
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Ok(false),
            Ok(_) | Err(httparse::Error::TooManyHeaders) => {
                return Err(http(Malformed::HeadTooLarge));
            }
            Err(e) => return Err(http(Malformed::Head(e))),
        };
        let status = response.code.unwrap_or(0);
        if status == 101 {
            return Err(http(Malformed::Upgrade));
        }
        if (100..200).contains(&status) {
            buf.advance(used);
            return Ok(true);
        }
        let pairs = || response.headers.iter().map(|h| (h.name.as_bytes(), h.value));
        self.status = status;
        self.hints = Hints::read(pairs());
        // HTTP/1.0 closes after each answer unless it says otherwise.
        self.hints.close |= response.version == Some(0) && !self.hints.keep_alive;
        self.location = pairs()
            .find(|(name, _)| name.eq_ignore_ascii_case(b"location"))
            .map(|(_, value)| Bytes::copy_from_slice(value));
        let chunked = pairs()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"transfer-encoding"))
            .flat_map(|(_, value)| tokens(value))
            .last()
            .map(|coding| coding.eq_ignore_ascii_case(b"chunked"));
        let length = content_length(pairs())?;
        buf.advance(used);
        self.state = match (status, chunked, length) {
            (204 | 304, _, _) => State::Done,
            (_, Some(true), _) => State::ChunkSize,
            (_, None, Some(length)) => {
                self.admit(length)?;
                State::Length(length)
            }
            // Another coding last, or no framing at all: the body runs to the connection's end.
            (_, Some(false), _) | (_, None, None) => {
                self.hints.close = true;
                State::UntilClose
            }
        };
        Ok(true)
    }

    /// Counts `more` body bytes against the limit.
    fn admit(&mut self, more: usize) -> Result<(), Error> {
        if self.body.len().saturating_add(more) > self.limit {
            self.hints.close = true;
            return Err(Error::TooLarge { limit: self.limit });
        }
        Ok(())
    }

    fn raw(&mut self) -> Raw {
        Raw {
            status: self.status,
            location: self.location.take(),
            body: std::mem::take(&mut self.body).freeze(),
        }
    }
}

/// The `Content-Length`, if any: every value (and list member) must be the same number.
fn content_length<'h>(
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
) -> Result<Option<usize>, Error> {
    let mut length = None;
    for (_, value) in headers.filter(|(name, _)| name.eq_ignore_ascii_case(b"content-length")) {
        for token in tokens(value) {
            let bad =
                || http(Malformed::ContentLength(String::from_utf8_lossy(value).into_owned()));
            let digits =
                std::str::from_utf8(token).ok().filter(|t| t.bytes().all(|b| b.is_ascii_digit()));
            let n: usize = digits.and_then(|d| d.parse().ok()).ok_or_else(bad)?;
            if length.is_some_and(|l| l != n) {
                return Err(bad());
            }
            length = Some(n);
        }
    }
    Ok(length)
}

fn http(malformed: Malformed) -> Error {
    Error::Http(Box::new(malformed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in pieces of `step` bytes, then the connection's end if `eof`.
    fn read_in_steps(bytes: &[u8], step: usize, limit: usize, eof: bool) -> Result<Raw, Error> {
        let mut reader = ResponseReader::new(limit);
        let mut buf = BytesMut::new();
        for piece in bytes.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            if let Some(raw) = reader.feed(&mut buf)? {
                return Ok(raw);
            }
        }
        if eof {
            return reader.end();
        }
        Err(Error::Stopped)
    }

    fn both_ways(bytes: &[u8]) -> Vec<Result<Raw, Error>> {
        [1, 3, 7, 4096].iter().map(|step| read_in_steps(bytes, *step, 1 << 20, true)).collect()
    }

    #[test]
    fn content_length_and_chunked_bodies_read_the_same_in_any_pieces() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;x=y\r\nhe\r\n3\r\nllo\r\n0\r\nT: 1\r\n\r\n";
        let close = b"HTTP/1.1 200 OK\r\n\r\nhello";
        for bytes in [&sized[..], &chunked[..], &close[..]] {
            for raw in both_ways(bytes) {
                let raw = raw.unwrap();
                assert_eq!((raw.status, &raw.body[..]), (200, &b"hello"[..]));
            }
        }
    }

    #[test]
    fn a_redirect_keeps_its_location_and_leftovers_stay_in_the_buffer() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 301 Moved\r\nLocation: /b.js\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nextra"[..],
        );
        let mut reader = ResponseReader::new(10);
        let raw = reader.feed(&mut buf).unwrap().unwrap();
        assert_eq!((raw.status, raw.location.as_deref()), (301, Some(&b"/b.js"[..])));
        assert!(raw.body.is_empty() && reader.reusable());
        assert_eq!(&buf[..], b"extra");
    }

    #[test]
    fn limits_and_malformed_input_are_errors() {
        let too_long = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n";
        assert!(matches!(read_in_steps(too_long, 4096, 10, true), Err(Error::TooLarge { .. })));
        let chunks =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello!\r\n6\r\nhello!\r\n";
        assert!(matches!(read_in_steps(chunks, 5, 10, true), Err(Error::TooLarge { .. })));
        let huge = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\n";
        assert!(matches!(read_in_steps(huge, 4096, 10, true), Err(Error::TooLarge { .. })));
        for bad in [
            &b"HELLO\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nxyz",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            let error = read_in_steps(bad, 2, 10, true).err();
            assert!(
                matches!(error, Some(Error::Http(_))),
                "{:?}: {error:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut head = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
        head.resize(MAX_HEAD_BYTES + 10, b'y');
        assert!(matches!(read_in_steps(&head, 8192, 10, true), Err(Error::Http(_))));
        let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc";
        assert!(matches!(read_in_steps(cut, 4096, 10, true), Err(Error::Disconnected(_))));
    }

    #[test]
    fn hints_close_and_shorten_idle() {
        let hints = Hints::read([
            (&b"Connection"[..], &b"keep-alive, Close"[..]),
            (b"keep-alive", b"max=5, timeout=5"),
        ]);
        assert!(hints.close && hints.keep_alive);
        assert_eq!(hints.max_idle(Duration::from_secs(30)), Duration::from_secs(4));
        let http10 = b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n";
        let mut reader = ResponseReader::new(10);
        assert!(reader.feed(&mut BytesMut::from(&http10[..])).unwrap().is_some());
        assert!(!reader.reusable());
    }

    #[test]
    fn requests_encode_as_http1() {
        let request = crate::Request::V1(crate::V1Request::new(
            "/a.js",
            "/main.js",
            "./a.js",
            crate::ResolveMethod::Import,
        ));
        let bytes = encode_request(&request.to_http().unwrap());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with(
                "GET /?specifier=%2Fa.js&referrer=%2Fmain.js&rawSpecifier=.%2Fa.js HTTP/1.1\r\n"
            ),
            "{text}"
        );
        assert!(text.contains("host: localhost\r\n") && text.ends_with("\r\n\r\n"), "{text}");
    }
}
