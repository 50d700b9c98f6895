//! `/intercept-tcp`: dial `x-tcp-target`, send `ping\n`, and answer with the first chunk back.

use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use crate::dial::{DialError, Dialer};
use crate::errors;
use crate::routes::{Body, text};
use crate::target::{Authority, TargetError};

/// The header naming where to connect: `host:port`.
pub const X_TCP_TARGET: &str = "x-tcp-target";
/// The socket timeout of workerd's test app.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// What the probe sends.
pub const PING: &[u8] = b"ping\n";

/// Why the probe failed; the response says `TCP error: <this>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The header is not `host:port`.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// No connection.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// Writing the ping or reading the answer failed.
    #[error("i/o")]
    Io(#[from] std::io::Error),
    /// Nothing arrived within [`PROBE_TIMEOUT`].
    #[error("timed out after {PROBE_TIMEOUT:?}")]
    Timeout,
}

/// Answers 200 with whatever the target sent first, 400 without the header, 500 on errors.
pub async fn handle(dialer: &Dialer, headers: &HeaderMap) -> Response<Body> {
    let Some(target) = headers.get(X_TCP_TARGET).and_then(|v| v.to_str().ok()) else {
        return text(StatusCode::BAD_REQUEST, "Missing x-tcp-target header");
    };
    let result = match tokio::time::timeout(PROBE_TIMEOUT, probe(dialer, target)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ProbeError::Timeout),
    };
    match result {
        Ok(data) => text(StatusCode::OK, data),
        Err(err) => {
            let message = errors::chain(&err);
            warn!(target, error = %message, "tcp probe failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("TCP error: {message}"))
        }
    }
}

/// Connects, sends [`PING`], and returns the first chunk (empty on EOF).
pub async fn probe(dialer: &Dialer, target: &str) -> Result<Bytes, ProbeError> {
    let authority = Authority::parse_host_port(target)?;
    let mut stream = dialer.tcp(&authority).await?;
    stream.write_all(PING).await?;
    let mut buf = vec![0; 64 * 1024];
    let len = stream.read(&mut buf).await?;
    buf.truncate(len);
    // Closing is best effort: the answer is already in hand.
    let _ = stream.shutdown().await;
    Ok(Bytes::from(buf))
}
