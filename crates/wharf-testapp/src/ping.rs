//! `GET /ping?host=IP`: one ICMP echo request to `host` and up to [`PING_TIMEOUT`] for its
//! reply, through an unprivileged ICMP socket (`SOCK_DGRAM`, `IPPROTO_ICMP` or
//! `IPPROTO_ICMPV6`), so it works without `NET_RAW`, which app containers do not have.
//!
//! The kernel allows such sockets to the groups in `net.ipv4.ping_group_range` (Docker sets it
//! to every group in containers; many hosts allow none). It fills in the identifier, and the
//! checksum for ICMPv6, and hands back only replies to this socket's identifier.
//!
//! | outcome | status | body |
//! |---|---|---|
//! | an echo reply with our sequence number | 200 | `pong` |
//! | the socket, the send or the receive failed (no permission, unreachable, refused by a filter, …) | 502 | `ping error: <message>` |
//! | no reply within [`PING_TIMEOUT`] | 504 | `ping timeout` |
//! | `host` missing or not an IP address | 400 | the reason |

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::{Response, StatusCode};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::info;

use crate::errors;
use crate::query;
use crate::routes::{Body, text};

/// How long to wait for the reply once the request is sent.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// The echo request's payload, which the reply must carry back.
pub const PAYLOAD: &[u8] = b"wharf-testapp ping";
/// The sequence number of the one request sent.
const SEQUENCE: u16 = 1;

/// ICMP echo request and reply types.
const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV4_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// What the ping saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The echo reply came back.
    Pong,
    /// No reply in time.
    Timeout,
    /// Something failed; the message says what.
    Error(String),
}

// === impl Outcome ===

impl Outcome {
    fn into_response(self) -> Response<Body> {
        match self {
            Outcome::Pong => text(StatusCode::OK, "pong"),
            Outcome::Timeout => text(StatusCode::GATEWAY_TIMEOUT, "ping timeout"),
            Outcome::Error(message) => {
                text(StatusCode::BAD_GATEWAY, format!("ping error: {message}"))
            }
        }
    }
}

/// Pings `host` and reports the outcome.
pub async fn handle(query: Option<&str>) -> Response<Body> {
    let raw = query::param(query, "host").unwrap_or_default();
    if raw.is_empty() {
        return text(StatusCode::BAD_REQUEST, "Missing \"host\" query param");
    }
    let host = raw.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&raw);
    let Ok(ip) = host.parse::<IpAddr>() else {
        return text(StatusCode::BAD_REQUEST, format!("host must be an IP address, got {raw:?}"));
    };
    let outcome = ping(ip, PING_TIMEOUT).await;
    info!(%ip, ?outcome, "ping probe");
    outcome.into_response()
}

/// Sends one echo request to `ip` and waits up to `timeout` for the matching reply.
pub async fn ping(ip: IpAddr, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let exchange = async {
        let socket =
            open(ip).map_err(|e| format!("opening an ICMP socket: {}", errors::chain(&e)))?;
        let addr = SocketAddr::new(ip, 0);
        socket
            .connect(addr)
            .await
            .map_err(|e| format!("connect to {ip}: {}", errors::chain(&e)))?;
        let request = echo_request(ip.is_ipv6(), SEQUENCE, PAYLOAD);
        socket.send(&request).await.map_err(|e| format!("send to {ip}: {}", errors::chain(&e)))?;
        let mut buf = [0u8; 2048];
        loop {
            let len = socket
                .recv(&mut buf)
                .await
                .map_err(|e| format!("receive from {ip}: {}", errors::chain(&e)))?;
            if is_echo_reply(ip.is_ipv6(), &buf[..len], SEQUENCE, PAYLOAD) {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(())) => Outcome::Pong,
        Ok(Err(message)) => Outcome::Error(message),
        Err(_elapsed) => Outcome::Timeout,
    }
}

/// An unprivileged ICMP socket of `ip`'s family, as a tokio datagram socket.
fn open(ip: IpAddr) -> io::Result<UdpSocket> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(protocol))?;
    socket.set_nonblocking(true)?;
    // A datagram socket whatever its protocol: tokio only sends and receives on it.
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

/// An echo request: type, code 0, checksum, identifier 0 (the kernel sets it), `seq`, then
/// `payload`. The ICMPv4 checksum is filled in here; the kernel computes ICMPv6's (it covers
/// a pseudo-header only the kernel knows).
pub fn echo_request(v6: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
    let kind = if v6 { ICMPV6_ECHO_REQUEST } else { ICMPV4_ECHO_REQUEST };
    let mut packet = vec![kind, 0, 0, 0, 0, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// Whether `packet` (an ICMP message, as a ping socket returns it: no IP header) is the echo
/// reply to request `seq` carrying `payload`.
pub fn is_echo_reply(v6: bool, packet: &[u8], seq: u16, payload: &[u8]) -> bool {
    let kind = if v6 { ICMPV6_ECHO_REPLY } else { ICMPV4_ECHO_REPLY };
    packet.len() >= 8
        && packet[0] == kind
        && packet[1] == 0
        && packet[6..8] == seq.to_be_bytes()
        && &packet[8..] == payload
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2, whose complement is 220d.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        // An odd length pads with a zero byte.
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn requests_and_replies() {
        let request = echo_request(false, 7, b"abc");
        assert_eq!(&request[..2], [8, 0]);
        assert_eq!(&request[6..], [0, 7, b'a', b'b', b'c']);
        assert_eq!(checksum(&request), 0, "a packet with its checksum sums to zero");
        let v6 = echo_request(true, 7, b"abc");
        assert_eq!(v6, [128, 0, 0, 0, 0, 0, 0, 7, b'a', b'b', b'c']);

        let mut reply = request.clone();
        reply[0] = 0;
        assert!(is_echo_reply(false, &reply, 7, b"abc"));
        assert!(!is_echo_reply(false, &reply, 8, b"abc"), "another sequence number");
        assert!(!is_echo_reply(false, &reply, 7, b"abd"), "another payload");
        assert!(!is_echo_reply(false, &request, 7, b"abc"), "a request is no reply");
        assert!(!is_echo_reply(true, &reply, 7, b"abc"), "a v4 reply on a v6 socket");
        let mut v6_reply = v6;
        v6_reply[0] = 129;
        assert!(is_echo_reply(true, &v6_reply, 7, b"abc"));
        assert!(!is_echo_reply(false, &[0, 0, 0], 0, b""), "too short");
    }
}
