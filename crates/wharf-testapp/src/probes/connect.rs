//! `GET /connect?target=HOST:PORT`: a bare TCP connect, to tell a sidecar that lets a connection
//! through from one that refuses it.
//!
//! A refusing sidecar accepts the connection (the interception owns the handshake) and resets it
//! at once, so a completed connect is not enough: after connecting, the probe sends one byte
//! (`x`) and watches for [`RESET_WINDOW`]. The answers:
//!
//! | outcome | status | body |
//! |---|---|---|
//! | connected, and no reset within the window | 200 | `connected` |
//! | connection refused (RST to the SYN) | 502 | `refused` |
//! | reset during or after the connect, within the window | 502 | `reset` |
//! | no connection within [`CONNECT_TIMEOUT`] | 504 | `timeout` |
//! | anything else (no address, unreachable, …) | 502 | `error: <message>` |
//!
//! A peer that closes without reading the byte also resets, by TCP's rules: it reports `reset`.
//! Data the peer sends is read and ignored; a graceful close (FIN) alone is `connected`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::{Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::info;

use super::target;
use crate::errors;
use crate::resolve::Resolver;
use crate::routes::{Body, text};

/// How long connecting (every address in turn) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after sending its byte the probe watches for a reset.
pub const RESET_WINDOW: Duration = Duration::from_millis(300);
/// The byte sent once connected.
pub const PROBE_BYTE: &[u8] = b"x";

/// What the probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected and not reset within the window.
    Connected,
    /// The connect was refused.
    Refused,
    /// The connection was reset.
    Reset,
    /// The connect did not complete in time.
    Timeout,
    /// Something else went wrong; the message says what.
    Error(String),
}

// === impl Outcome ===

impl Outcome {
    fn into_response(self) -> Response<Body> {
        match self {
            Outcome::Connected => text(StatusCode::OK, "connected"),
            Outcome::Refused => text(StatusCode::BAD_GATEWAY, "refused"),
            Outcome::Reset => text(StatusCode::BAD_GATEWAY, "reset"),
            Outcome::Timeout => text(StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Outcome::Error(message) => text(StatusCode::BAD_GATEWAY, format!("error: {message}")),
        }
    }
}

/// Connects and reports the outcome.
pub async fn handle(resolver: &Resolver, query: Option<&str>) -> Response<Body> {
    let authority = match target(query) {
        Ok(authority) => authority,
        Err(bad) => return bad.into_response(),
    };
    let outcome = match resolver.resolve(authority.host()).await {
        Ok(ips) => probe(&ips, authority.port()).await,
        Err(err) => Outcome::Error(errors::chain(&err)),
    };
    info!(target = %authority, ?outcome, "connect probe");
    outcome.into_response()
}

/// Connects to each address in turn until one accepts, then watches that connection.
pub async fn probe(ips: &[IpAddr], port: u16) -> Outcome {
    let connect = async {
        let mut last = Outcome::Error("no address".to_owned());
        for ip in ips {
            let addr = SocketAddr::new(*ip, port);
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(err) => last = classify(&err, addr),
            }
        }
        Err(last)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Err(_elapsed) => Outcome::Timeout,
        Ok(Err(outcome)) => outcome,
        Ok(Ok(stream)) => watch(stream).await,
    }
}

/// Sends [`PROBE_BYTE`] and waits out [`RESET_WINDOW`], reading and dropping whatever arrives.
async fn watch(mut stream: TcpStream) -> Outcome {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        Err(err) if is_reset(&err) => return Outcome::Reset,
        Err(err) => return Outcome::Error(errors::chain(&err)),
    };
    if let Err(err) = stream.write_all(PROBE_BYTE).await {
        return classify(&err, peer);
    }
    let deadline = Instant::now() + RESET_WINDOW;
    let mut buf = [0; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_elapsed) => break,
            Ok(Ok(0)) => {
                // A FIN. A reset may still follow (the peer closed without reading our byte),
                // and is then left as the socket's pending error.
                tokio::time::sleep_until(deadline).await;
                break;
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return classify(&err, peer),
        }
    }
    match stream.take_error() {
        Ok(None) => Outcome::Connected,
        Ok(Some(err)) | Err(err) => classify(&err, peer),
    }
}

fn classify(err: &io::Error, addr: SocketAddr) -> Outcome {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Outcome::Refused,
        io::ErrorKind::TimedOut => Outcome::Timeout,
        _ if is_reset(err) => Outcome::Reset,
        _ => Outcome::Error(format!("{addr}: {err}")),
    }
}

/// A reset, as the socket reports it: `ECONNRESET`, or `EPIPE` once the peer had closed.
fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}
