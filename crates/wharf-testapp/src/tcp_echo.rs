//! The optional TCP echo server (`TCP_PORT`): per connection, answer the first chunk with
//! `echo:<data>` and close.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{Instrument, debug, debug_span};

use crate::server::accept_backoff;

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let span = debug_span!("tcp_echo", client.addr = %peer);
                tokio::spawn(
                    async move {
                        if let Err(err) = echo_once(stream).await {
                            debug!(error = %err, "echo connection failed");
                        }
                    }
                    .instrument(span),
                );
            }
            Err(err) => accept_backoff(&err).await,
        }
    }
}

/// Reads one chunk and answers it. A connection closed before sending anything gets nothing.
pub async fn echo_once(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    let len = stream.read(&mut buf).await?;
    if len > 0 {
        let mut answer = b"echo:".to_vec();
        answer.extend_from_slice(buf.get(..len).unwrap_or_default());
        stream.write_all(&answer).await?;
    }
    stream.shutdown().await
}
