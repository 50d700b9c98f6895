//! `GET /tcp-greeting?target=HOST:PORT`: connect, wait for the server's first line without
//! sending anything, then send `QUIT\r\n` and read the reply, as an SMTP client would.
//!
//! Answers 200 with both lines as received (`220 …\r\n221 …\r\n` against the greeter), 504
//! `TCP timeout` if the whole exchange takes over [`GREETING_TIMEOUT`] (a sidecar that waits for
//! the client to speak first never delivers the greeting), or 502 `TCP error: <message>`.

use std::io;
use std::time::Duration;

use http::{Response, StatusCode};
use tokio::io::AsyncWriteExt;
use tracing::info;

use super::target;
use crate::dial::{DialError, Dialer};
use crate::errors;
use crate::lines::LineReader;
use crate::routes::{Body, text};
use crate::target::Authority;

/// How long the whole exchange, connecting included, may take.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5);
/// What the client sends once greeted.
pub const QUIT: &[u8] = b"QUIT\r\n";

#[derive(Debug, thiserror::Error)]
enum GreetingError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("i/o")]
    Io(#[from] io::Error),
    #[error("connection closed before the greeting")]
    NoGreeting,
    #[error("connection closed before the reply to QUIT")]
    NoReply,
    #[error("timed out after {GREETING_TIMEOUT:?}")]
    Timeout,
}

/// Runs the exchange and reports both lines.
pub async fn handle(dialer: &Dialer, query: Option<&str>) -> Response<Body> {
    let authority = match target(query) {
        Ok(authority) => authority,
        Err(bad) => return bad.into_response(),
    };
    let result = match tokio::time::timeout(GREETING_TIMEOUT, exchange(dialer, &authority)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(GreetingError::Timeout),
    };
    match result {
        Ok(lines) => {
            info!(target = %authority, "tcp greeting probe answered");
            text(StatusCode::OK, lines)
        }
        Err(GreetingError::Timeout) => {
            info!(target = %authority, "tcp greeting probe timed out");
            text(StatusCode::GATEWAY_TIMEOUT, "TCP timeout")
        }
        Err(err) => {
            let message = errors::chain(&err);
            info!(target = %authority, error = %message, "tcp greeting probe failed");
            text(StatusCode::BAD_GATEWAY, format!("TCP error: {message}"))
        }
    }
}

/// Reads the greeting, sends [`QUIT`], reads the reply; returns both lines.
async fn exchange(dialer: &Dialer, authority: &Authority) -> Result<Vec<u8>, GreetingError> {
    let stream = dialer.tcp(authority).await?;
    let mut lines = LineReader::new(stream);
    let mut both = lines.next_line().await?.ok_or(GreetingError::NoGreeting)?;
    lines.get_mut().write_all(QUIT).await?;
    let reply = lines.next_line().await?.ok_or(GreetingError::NoReply)?;
    both.extend_from_slice(&reply);
    // Closing is best effort: the answer is in hand.
    let _ = lines.get_mut().shutdown().await;
    Ok(both)
}
