//! Sending one DNS query to one server, over UDP or TCP, with [`wharf_wire::dns`] doing the
//! bytes. Used by the resolver (UDP, with its own retries) and by `/dns-query` (either transport,
//! one query).
//!
//! Nothing here has a timeout: callers wrap the calls in theirs.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::debug;
use wharf_wire::dns::{self, DnsError, Response};

/// The largest UDP answer we read. Answers for A/AAAA fit easily.
pub const MAX_UDP_ANSWER: usize = 4096;

/// Why a query got no usable response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The name cannot be put in a query.
    #[error("{name}: not a valid dns name")]
    BadName {
        /// The name asked about.
        name: String,
        /// The cause.
        source: DnsError,
    },
    /// Connecting, sending or receiving failed.
    #[error("dns query to {server}")]
    Io {
        /// The server asked.
        server: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The TCP response is not a DNS response.
    #[error("malformed dns answer from {server}")]
    Malformed {
        /// The server asked.
        server: SocketAddr,
        /// The cause.
        source: DnsError,
    },
    /// The TCP response answers another query.
    #[error("dns answer from {server} has id {got}, expected {expected}")]
    WrongId {
        /// The server asked.
        server: SocketAddr,
        /// The id sent.
        expected: u16,
        /// The id received.
        got: u16,
    },
}

/// An encoded query and the id it carries.
#[derive(Debug, Clone)]
pub struct EncodedQuery {
    /// The transaction id.
    pub id: u16,
    /// The message.
    pub bytes: Vec<u8>,
}

// === impl EncodedQuery ===

impl EncodedQuery {
    /// A recursive query for `name` (lowercase, no trailing dot) and `qtype`, with a
    /// hard-to-guess id.
    pub fn new(name: &str, qtype: u16) -> Result<EncodedQuery, DnsError> {
        let id = query_id(name, qtype);
        Ok(EncodedQuery { id, bytes: dns::encode_query(id, name, qtype)? })
    }
}

/// Sends one query over UDP and waits for the datagram that answers it; datagrams that answer
/// something else are dropped. The caller decides how long to wait.
pub async fn query_udp(server: SocketAddr, name: &str, qtype: u16) -> Result<Response, QueryError> {
    let query = EncodedQuery::new(name, qtype)
        .map_err(|source| QueryError::BadName { name: name.to_owned(), source })?;
    let io_err = |source| QueryError::Io { server, source };
    let socket = connect_udp(server).await.map_err(io_err)?;
    socket.send(&query.bytes).await.map_err(io_err)?;
    recv_answer(&socket, query.id, name, qtype).await.map_err(io_err)
}

/// Sends one query over TCP (RFC 1035 §4.2.2: a two-byte length before each message) and reads
/// the one response.
pub async fn query_tcp(server: SocketAddr, name: &str, qtype: u16) -> Result<Response, QueryError> {
    let query = EncodedQuery::new(name, qtype)
        .map_err(|source| QueryError::BadName { name: name.to_owned(), source })?;
    let io_err = |source| QueryError::Io { server, source };
    let mut stream = TcpStream::connect(server).await.map_err(io_err)?;
    write_tcp_message(&mut stream, &query.bytes).await.map_err(io_err)?;
    let answer = read_tcp_message(&mut stream).await.map_err(io_err)?.ok_or_else(|| {
        io_err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the answer"))
    })?;
    let response =
        dns::parse_response(&answer).map_err(|source| QueryError::Malformed { server, source })?;
    if response.id != query.id {
        return Err(QueryError::WrongId { server, expected: query.id, got: response.id });
    }
    Ok(response)
}

/// Writes one length-prefixed DNS message.
pub async fn write_tcp_message<W>(stream: &mut W, message: &[u8]) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let len = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "dns message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Reads one length-prefixed DNS message; `None` if the stream ends before a new one starts.
pub async fn read_tcp_message<R>(stream: &mut R) -> io::Result<Option<Vec<u8>>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut len = [0; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut message = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

/// A UDP socket of `server`'s family, connected to it, so only its datagrams arrive and an ICMP
/// "port unreachable" surfaces as `ConnectionRefused`.
pub async fn connect_udp(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).await?;
    socket.connect(server).await?;
    Ok(socket)
}

/// Reads datagrams until one answers our query; anything else is dropped.
pub async fn recv_answer(
    socket: &UdpSocket,
    id: u16,
    name: &str,
    qtype: u16,
) -> io::Result<Response> {
    let mut buf = vec![0; MAX_UDP_ANSWER];
    loop {
        let len = socket.recv(&mut buf).await?;
        match dns::parse_response(buf.get(..len).unwrap_or_default()) {
            Ok(response) if answers(&response, id, name, qtype) => return Ok(response),
            Ok(response) => debug!(id = response.id, "dropping a dns answer to another query"),
            Err(err) => debug!(error = %err, "dropping a malformed dns answer"),
        }
    }
}

fn answers(response: &Response, id: u16, name: &str, qtype: u16) -> bool {
    let echoed = response.questions.first();
    response.id == id && echoed.is_none_or(|q| q.name == name && q.qtype == qtype)
}

/// A hard-to-guess query id, without a random-number dependency: std's `RandomState` is keyed
/// from OS randomness.
fn query_id(name: &str, qtype: u16) -> u16 {
    (RandomState::new().hash_one((name, qtype)) & 0xFFFF) as u16
}
