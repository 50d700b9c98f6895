//! Sans-IO HTTP/1.1 request and response heads, as they cross the tunnels and the control port.
//!
//! `parse` returns `Ok(None)` while the head is incomplete, `Ok(Some((head, consumed)))` once the
//! blank line has arrived, and an error for bytes that can never become a valid head. Bytes after
//! `consumed` belong to the body or to the tunnelled stream and are the caller's.

use std::fmt::Write as _;

/// The largest head we accept. Anything longer is an error, not a wait for more bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// The most header lines we accept in one head.
pub const MAX_HEADERS: usize = 64;

/// Why bytes cannot be a head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The head is longer than [`MAX_HEAD_LEN`].
    #[error("http head exceeds {MAX_HEAD_LEN} bytes")]
    TooLong,
    /// The bytes are not HTTP/1.x.
    #[error("malformed http head: {0}")]
    Malformed(String),
    /// A header value is not valid UTF-8.
    #[error("header {0} is not valid utf-8")]
    NotUtf8(String),
}

/// A parsed request line plus headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

/// A parsed status line plus headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

// === impl RequestHead ===

impl RequestHead {
    /// Builds a head to encode.
    pub fn new(method: &str, target: &str) -> RequestHead {
        RequestHead { method: method.to_owned(), target: target.to_owned(), headers: Vec::new() }
    }

    /// Adds a header line (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> RequestHead {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Parses a request head from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(used)) => {
                let head = RequestHead {
                    method: req.method.unwrap_or_default().to_owned(),
                    target: req.path.unwrap_or_default().to_owned(),
                    headers: collect_headers(req.headers)?,
                };
                Ok(Some((head, used)))
            }
            Ok(httparse::Status::Partial) => incomplete(buf),
            Err(e) => Err(HeadError::Malformed(e.to_string())),
        }
    }

    /// The method, e.g. `CONNECT`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target: a path, or an authority for `CONNECT`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// All header lines, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// `Content-Length`, when present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }

    /// Encodes the head, ending with the blank line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        encode_headers(&mut out, &self.headers);
        out.into_bytes()
    }
}

// === impl ResponseHead ===

impl ResponseHead {
    /// Builds a head to encode. The reason phrase is the canonical one for `status`.
    pub fn new(status: u16) -> ResponseHead {
        ResponseHead { status, reason: reason_phrase(status).to_owned(), headers: Vec::new() }
    }

    /// Adds a header line (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> ResponseHead {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Parses a response head from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut slots);
        match res.parse(buf) {
            Ok(httparse::Status::Complete(used)) => {
                let head = ResponseHead {
                    status: res.code.unwrap_or_default(),
                    reason: res.reason.unwrap_or_default().to_owned(),
                    headers: collect_headers(res.headers)?,
                };
                Ok(Some((head, used)))
            }
            Ok(httparse::Status::Partial) => incomplete(buf),
            Err(e) => Err(HeadError::Malformed(e.to_string())),
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// `Content-Length`, when present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }

    /// Encodes the head, ending with the blank line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        encode_headers(&mut out, &self.headers);
        out.into_bytes()
    }
}

/// A whole response with a small body and `Connection: close`, as the control port sends.
pub fn encode_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut head = ResponseHead::new(status)
        .with_header("Content-Length", &body.len().to_string())
        .with_header("Connection", "close");
    if let Some(ct) = content_type {
        head = head.with_header("Content-Type", ct);
    }
    let mut out = head.encode();
    out.extend_from_slice(body);
    out
}

/// The canonical reason phrase for the statuses the tunnels and control port use.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn incomplete<T>(buf: &[u8]) -> Result<Option<T>, HeadError> {
    if buf.len() >= MAX_HEAD_LEN { Err(HeadError::TooLong) } else { Ok(None) }
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Result<Vec<(String, String)>, HeadError> {
    raw.iter()
        .map(|h| {
            let value =
                std::str::from_utf8(h.value).map_err(|_| HeadError::NotUtf8(h.name.to_owned()))?;
            Ok((h.name.to_owned(), value.to_owned()))
        })
        .collect()
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn encode_headers(out: &mut String, headers: &[(String, String)]) {
    for (name, value) in headers {
        // Writing to a String cannot fail.
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds every prefix of `input` and checks that only the full input completes.
    fn check_all_prefixes<T: std::fmt::Debug>(
        input: &[u8],
        parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, HeadError>,
    ) -> T {
        for cut in 0..input.len() {
            assert!(
                matches!(parse(&input[..cut]), Ok(None)),
                "prefix of {cut} bytes must be incomplete"
            );
        }
        let (value, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        value
    }

    #[test]
    fn request_every_prefix() {
        let raw = b"CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Dst-Addr: 127.0.0.1:8080\r\n\r\n";
        let head = check_all_prefixes(raw, RequestHead::parse);
        assert_eq!(head.method(), "CONNECT");
        assert_eq!(head.target(), "127.0.0.1:8080");
        assert_eq!(head.header("X-DST-ADDR"), Some("127.0.0.1:8080"));
        assert_eq!(head.header("missing"), None);
    }

    #[test]
    fn response_every_prefix_and_trailing_bytes_are_left() {
        let raw = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nabcEXTRA";
        let (head, used) = ResponseHead::parse(raw).unwrap().unwrap();
        assert_eq!(head.status(), 400);
        assert_eq!(head.content_length(), Some(3));
        assert_eq!(&raw[used..], b"abcEXTRA");
        check_all_prefixes(&raw[..used], ResponseHead::parse);
    }

    #[test]
    fn round_trip() {
        let head = RequestHead::new("PUT", "/egress").with_header("Content-Length", "2");
        let (back, _) = RequestHead::parse(&head.encode()).unwrap().unwrap();
        assert_eq!(back, head);
        let res = ResponseHead::new(204);
        let (back, _) = ResponseHead::parse(&res.encode()).unwrap().unwrap();
        assert_eq!(back, res);
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        assert!(matches!(RequestHead::parse(b"\x16\x03\x01\x00"), Err(HeadError::Malformed(_))));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD_LEN + 1, b'a');
        assert_eq!(RequestHead::parse(&long), Err(HeadError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = RequestHead::parse(&bytes);
            let _ = ResponseHead::parse(&bytes);
        }
    }
}
