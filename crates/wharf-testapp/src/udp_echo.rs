//! The optional UDP echo server (`UDP_PORT`): answers each datagram with `echo:<data>`.

use std::time::Duration;

use tokio::net::UdpSocket;
use tracing::{debug, warn};

/// The largest datagram read; longer ones are truncated by the kernel.
const MAX_DATAGRAM: usize = 64 * 1024;

/// Answers datagrams forever.
pub async fn serve(socket: UdpSocket) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) => {
                // Nothing a datagram can do makes this fail for good; don't spin if it does.
                warn!(error = %err, "udp receive failed; pausing");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let data = buf.get(..len).unwrap_or_default();
        let mut answer = Vec::with_capacity(len + 5);
        answer.extend_from_slice(b"echo:");
        answer.extend_from_slice(data);
        match socket.send_to(&answer, peer).await {
            Ok(_) => debug!(client.addr = %peer, len, "udp echo"),
            Err(err) => debug!(client.addr = %peer, error = %err, "udp echo answer failed"),
        }
    }
}
