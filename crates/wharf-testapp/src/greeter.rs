//! The optional server-speaks-first TCP server (`GREETING_PORT`), shaped like SMTP: it greets
//! with `220 wharf-greeter ready\r\n` as soon as a client connects, answers each line with
//! `250 <line>\r\n`, and answers `QUIT` with `221 bye\r\n` and closes.
//!
//! A sidecar that waits for the client's first bytes before connecting upstream (to peek at SNI,
//! say) never lets the greeting through, which is what `/tcp-greeting` detects.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{Instrument, debug, debug_span};

use crate::lines::{LineReader, LineTooLong, trim_eol};
use crate::server::accept_backoff;

/// What the server sends first.
pub const GREETING: &[u8] = b"220 wharf-greeter ready\r\n";
/// The answer to `QUIT`, before the server closes.
pub const BYE: &[u8] = b"221 bye\r\n";
/// How long a client may stay silent before the server says `421` and closes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let span = debug_span!("greeter", client.addr = %peer);
                tokio::spawn(
                    async move {
                        match converse(stream).await {
                            Ok(()) => debug!("greeter connection done"),
                            Err(err) => debug!(error = %err, "greeter connection failed"),
                        }
                    }
                    .instrument(span),
                );
            }
            Err(err) => accept_backoff(&err).await,
        }
    }
}

/// Greets, then answers lines until `QUIT`, the end of the stream, or [`IDLE_TIMEOUT`].
pub async fn converse(stream: TcpStream) -> io::Result<()> {
    let mut lines = LineReader::new(stream);
    lines.get_mut().write_all(GREETING).await?;
    loop {
        let line = match tokio::time::timeout(IDLE_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(err)) if err.get_ref().is_some_and(|inner| inner.is::<LineTooLong>()) => {
                lines.get_mut().write_all(b"500 line too long\r\n").await?;
                return lines.get_mut().shutdown().await;
            }
            Ok(Err(err)) => return Err(err),
            Err(_elapsed) => {
                lines.get_mut().write_all(b"421 idle timeout\r\n").await?;
                return lines.get_mut().shutdown().await;
            }
        };
        let line = trim_eol(&line);
        if line.trim_ascii().eq_ignore_ascii_case(b"QUIT") {
            lines.get_mut().write_all(BYE).await?;
            return lines.get_mut().shutdown().await;
        }
        let mut answer = Vec::with_capacity(line.len() + 6);
        answer.extend_from_slice(b"250 ");
        answer.extend_from_slice(line);
        answer.extend_from_slice(b"\r\n");
        lines.get_mut().write_all(&answer).await?;
    }
}
