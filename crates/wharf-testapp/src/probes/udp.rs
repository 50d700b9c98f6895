//! `GET /udp?target=HOST:PORT&data=X`: one datagram carrying `data` (empty if absent) to
//! `target`, resolved with the app's resolver, then up to [`UDP_REPLY_TIMEOUT`] for one reply.
//!
//! Answers 200 with the reply's bytes, 504 `UDP timeout`, or 502 `UDP error: <message>` (no
//! address, or an ICMP error such as "port unreachable", reported as connection refused).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Response, StatusCode};
use tracing::info;

use super::target;
use crate::dns_client::connect_udp;
use crate::errors;
use crate::query;
use crate::resolve::{ResolveError, Resolver};
use crate::routes::{Body, text};
use crate::target::Authority;

/// How long to wait for the reply once the datagram is sent.
pub const UDP_REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest reply read.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
enum UdpProbeError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("udp exchange with {addr}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("no reply from {addr} within {UDP_REPLY_TIMEOUT:?}")]
    Timeout { addr: SocketAddr },
}

/// Sends the datagram and reports the reply.
pub async fn handle(resolver: &Resolver, query: Option<&str>) -> Response<Body> {
    let authority = match target(query) {
        Ok(authority) => authority,
        Err(bad) => return bad.into_response(),
    };
    let data = query::param(query, "data").unwrap_or_default();
    match exchange(resolver, &authority, data.as_bytes()).await {
        Ok(reply) => {
            info!(target = %authority, len = reply.len(), "udp probe answered");
            text(StatusCode::OK, reply)
        }
        Err(err @ UdpProbeError::Timeout { .. }) => {
            info!(target = %authority, error = %err, "udp probe timed out");
            text(StatusCode::GATEWAY_TIMEOUT, "UDP timeout")
        }
        Err(err) => {
            let message = errors::chain(&err);
            info!(target = %authority, error = %message, "udp probe failed");
            text(StatusCode::BAD_GATEWAY, format!("UDP error: {message}"))
        }
    }
}

/// Sends `data` to the first address of `authority` and returns the first datagram back.
async fn exchange(
    resolver: &Resolver,
    authority: &Authority,
    data: &[u8],
) -> Result<Vec<u8>, UdpProbeError> {
    let ips = resolver.resolve(authority.host()).await?;
    let Some(ip) = ips.first() else {
        return Err(ResolveError::NotFound { name: authority.host().to_string() }.into());
    };
    let addr = SocketAddr::new(*ip, authority.port());
    let io_err = |source| UdpProbeError::Io { addr, source };
    let socket = connect_udp(addr).await.map_err(io_err)?;
    socket.send(data).await.map_err(io_err)?;
    let mut buf = vec![0; MAX_REPLY];
    let len = tokio::time::timeout(UDP_REPLY_TIMEOUT, socket.recv(&mut buf))
        .await
        .map_err(|_elapsed| UdpProbeError::Timeout { addr })?
        .map_err(io_err)?;
    buf.truncate(len);
    Ok(buf)
}
