//! The TLS ClientHello, sans-IO: the server name (SNI) and ALPN list the sidecar peeks at.
//!
//! [`parse`] takes every byte received so far on a connection and answers `Ok(None)` while the
//! ClientHello is incomplete, `Ok(Some(info))` once it has arrived, and an error for bytes that
//! can never become one. It is resumable the simple way: call it again with the longer buffer.
//! The caller keeps the bytes and replays them, since the real TLS server needs them too.
//!
//! The ClientHello may be split over several handshake records (RFC 8446 §5.1), and a record may
//! still be arriving; both are handled. Work is bounded: the handshake message may declare at
//! most [`MAX_HELLO_LEN`] bytes.
//!
//! The parser is strict where a lenient reading could disagree with the TLS server that
//! terminates the connection later: duplicate extensions, two host names, or lengths that do not
//! add up are errors. A server name must look like a DNS name (letters, digits, `-`, `_`, `.`);
//! it is returned lowercase without a trailing dot, so it can travel in a header as it is.

/// The largest ClientHello handshake message accepted, in bytes (its declared length).
pub const MAX_HELLO_LEN: usize = 16 * 1024;

/// Record content type of a handshake record, and so the first byte of a TLS connection.
pub const CONTENT_TYPE_HANDSHAKE: u8 = 0x16;

/// The longest record fragment TLS allows (2^14 bytes).
const MAX_RECORD_LEN: usize = 16 * 1024;
const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const NAME_TYPE_HOST_NAME: u8 = 0;
/// The longest DNS name in text form, without the trailing dot.
const MAX_NAME_LEN: usize = 253;

/// What the ClientHello says about where the client wants to go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHelloInfo {
    /// The `host_name` from the `server_name` extension: lowercase, no trailing dot.
    pub sni: Option<String>,
    /// The ALPN protocol names offered, in the client's order (empty without the extension).
    pub alpn: Vec<Vec<u8>>,
}

/// Why bytes can never become a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SniError {
    /// A record is not a handshake record (the first byte of TLS is `0x16`).
    #[error("not a tls handshake record (content type {0:#04x})")]
    NotHandshake(u8),
    /// The record's protocol version is not 3.x.
    #[error("unsupported record version {0}.{1}")]
    Version(u8, u8),
    /// A record is empty or longer than TLS allows.
    #[error("bad record length {0}")]
    RecordLength(usize),
    /// The first handshake message is not a ClientHello.
    #[error("handshake message type {0} is not a client hello")]
    NotClientHello(u8),
    /// The ClientHello declares more than [`MAX_HELLO_LEN`] bytes.
    #[error("client hello of {0} bytes exceeds {MAX_HELLO_LEN}")]
    TooLong(usize),
    /// A length or count inside the ClientHello does not add up.
    #[error("malformed client hello: {0}")]
    Malformed(&'static str),
    /// An extension appears twice.
    #[error("duplicate extension {0}")]
    DuplicateExtension(u16),
    /// The server name is not a DNS name.
    #[error("server name is not a dns name")]
    BadName,
}

/// Parses the ClientHello at the start of `buf`: `Ok(None)` until it has fully arrived.
///
/// Bytes after the ClientHello (further records) are ignored.
pub fn parse(buf: &[u8]) -> Result<Option<ClientHelloInfo>, SniError> {
    match reassemble(buf)? {
        Some(body) => parse_body(&body).map(Some),
        None => Ok(None),
    }
}

/// Joins the handshake records at the start of `buf` until the first handshake message is
/// complete, and returns its body (after the 4-byte handshake header).
fn reassemble(buf: &[u8]) -> Result<Option<Vec<u8>>, SniError> {
    let mut handshake = Vec::new();
    let mut rest = buf;
    loop {
        if let Some(total) = message_len(&handshake)?
            && handshake.len() >= total
        {
            handshake.truncate(total);
            handshake.drain(..HANDSHAKE_HEADER_LEN);
            return Ok(Some(handshake));
        }
        let Some(fragment) = next_fragment(&mut rest)? else { return Ok(None) };
        handshake.extend_from_slice(fragment);
    }
}

/// The whole handshake message's length, header included, once its header has arrived.
fn message_len(handshake: &[u8]) -> Result<Option<usize>, SniError> {
    let [kind, a, b, c, ..] = *handshake else { return Ok(None) };
    if kind != HANDSHAKE_CLIENT_HELLO {
        return Err(SniError::NotClientHello(kind));
    }
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if len > MAX_HELLO_LEN {
        return Err(SniError::TooLong(len));
    }
    Ok(Some(HANDSHAKE_HEADER_LEN + len))
}

/// Takes the next record's fragment off `rest`: all of it, or as much as has arrived (then
/// `rest` is left empty). `None` when not even the record header has arrived.
fn next_fragment<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, SniError> {
    let buf: &'a [u8] = rest;
    if let Some(&content_type) = buf.first()
        && content_type != CONTENT_TYPE_HANDSHAKE
    {
        return Err(SniError::NotHandshake(content_type));
    }
    if let Some(&major) = buf.get(1)
        && major != 3
    {
        return Err(SniError::Version(major, buf.get(2).copied().unwrap_or(0)));
    }
    let Some(&[_, _, _, hi, lo]) = buf.get(..RECORD_HEADER_LEN) else { return Ok(None) };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 || len > MAX_RECORD_LEN {
        return Err(SniError::RecordLength(len));
    }
    let end = (RECORD_HEADER_LEN + len).min(buf.len());
    *rest = &buf[end..];
    Ok(Some(&buf[RECORD_HEADER_LEN..end]))
}

/// Parses a complete ClientHello body (RFC 8446 §4.1.2; TLS 1.0–1.2 share the layout).
fn parse_body(body: &[u8]) -> Result<ClientHelloInfo, SniError> {
    let mut r = Reader(body);
    r.take(2, "legacy_version")?;
    r.take(32, "random")?;
    let session_id = r.vec8("session_id")?;
    if session_id.len() > 32 {
        return Err(SniError::Malformed("session_id longer than 32 bytes"));
    }
    let suites = r.vec16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(SniError::Malformed("cipher_suites"));
    }
    if r.vec8("compression_methods")?.is_empty() {
        return Err(SniError::Malformed("compression_methods"));
    }
    if r.0.is_empty() {
        // A hello without extensions (SSL 3.0 style) names no server.
        return Ok(ClientHelloInfo::default());
    }
    let extensions = r.vec16("extensions")?;
    r.finish("bytes after the extensions")?;
    parse_extensions(extensions)
}

fn parse_extensions(extensions: &[u8]) -> Result<ClientHelloInfo, SniError> {
    let mut info = ClientHelloInfo::default();
    let mut seen: Vec<u16> = Vec::new();
    let mut r = Reader(extensions);
    while !r.0.is_empty() {
        let kind = r.u16("extension type")?;
        let data = r.vec16("extension data")?;
        if seen.contains(&kind) {
            return Err(SniError::DuplicateExtension(kind));
        }
        seen.push(kind);
        match kind {
            EXT_SERVER_NAME => info.sni = parse_server_name(data)?,
            EXT_ALPN => info.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    Ok(info)
}

/// The `server_name` extension (RFC 6066 §3): a list of (type, name); one `host_name` at most.
fn parse_server_name(data: &[u8]) -> Result<Option<String>, SniError> {
    let mut outer = Reader(data);
    let mut list = Reader(outer.vec16("server_name_list")?);
    outer.finish("bytes after server_name_list")?;
    if list.0.is_empty() {
        return Err(SniError::Malformed("empty server_name_list"));
    }
    let mut host = None;
    while !list.0.is_empty() {
        let name_type = list.u8("name_type")?;
        let name = list.vec16("server name")?;
        if name_type != NAME_TYPE_HOST_NAME {
            continue;
        }
        if host.is_some() {
            return Err(SniError::Malformed("two host names"));
        }
        host = Some(host_name(name)?);
    }
    Ok(host)
}

/// The ALPN extension (RFC 7301 §3.1): a non-empty list of non-empty protocol names.
fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, SniError> {
    let mut outer = Reader(data);
    let mut list = Reader(outer.vec16("protocol_name_list")?);
    outer.finish("bytes after protocol_name_list")?;
    let mut protocols = Vec::new();
    while !list.0.is_empty() {
        let name = list.vec8("protocol name")?;
        if name.is_empty() {
            return Err(SniError::Malformed("empty protocol name"));
        }
        protocols.push(name.to_vec());
    }
    if protocols.is_empty() {
        return Err(SniError::Malformed("empty protocol_name_list"));
    }
    Ok(protocols)
}

/// Checks that `raw` is a DNS name and returns it lowercase without a trailing dot.
fn host_name(raw: &[u8]) -> Result<String, SniError> {
    let name = raw.strip_suffix(b".").unwrap_or(raw);
    let valid_byte = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.iter().all(valid_byte)
        && name.split(|&b| b == b'.').all(|label| !label.is_empty() && label.len() <= 63);
    if !valid {
        return Err(SniError::BadName);
    }
    Ok(name.iter().map(|&b| char::from(b.to_ascii_lowercase())).collect())
}

/// A cursor over a complete message; running out of bytes is malformation, not "wait for more".
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SniError> {
        if self.0.len() < n {
            return Err(SniError::Malformed(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SniError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, SniError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], SniError> {
        let len = self.u8(what)?;
        self.take(usize::from(len), what)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], SniError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    fn finish(&self, what: &'static str) -> Result<(), SniError> {
        if self.0.is_empty() { Ok(()) } else { Err(SniError::Malformed(what)) }
    }
}

#[cfg(test)]
mod tests;
