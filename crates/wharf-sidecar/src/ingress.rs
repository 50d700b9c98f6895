//! Ingress tunnels: `CONNECT` + `X-Dst-Addr` on the control port, dialled inside the netns.
//!
//! This is how the engine reaches the app's ports (`getTcpPort`, engine spec §3.4, §3.10): the
//! sidecar dials `X-Dst-Addr` from inside the shared network namespace, answers 200 and pumps
//! bytes both ways with half-close. A dial failure is a 400 whose body is the error text; the
//! engine reports it as "Container is not listening to port N".

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wharf_wire::connect::IngressConnect;
use wharf_wire::head::{RequestHead, ResponseHead};

use crate::control::{ConnError, Reply, is_expected_disconnect, respond};

/// How long dialling the destination may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves an ingress `CONNECT` whose head has been read. `early` holds the bytes the client sent
/// after the head (it need not wait for the 200); they go to the destination first.
pub(crate) async fn serve<S>(
    mut client: S,
    head: &RequestHead,
    early: Vec<u8>,
) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let dst = match IngressConnect::dst_of(head) {
        Ok(dst) => dst,
        Err(e) => return respond(&mut client, Reply::text(400, e)).await,
    };
    let mut upstream = match dial(dst).await {
        Ok(upstream) => upstream,
        Err(message) => {
            tracing::debug!(%dst, %message, "ingress dial failed");
            return respond(&mut client, Reply::text(400, message)).await;
        }
    };
    tracing::debug!(%dst, "ingress tunnel open");
    client.write_all(&ResponseHead::new(200).encode()).await?;
    upstream.write_all(&early).await?;
    match crate::relay::relay(&mut client, &mut upstream).await {
        Ok((to_app, from_app)) => {
            tracing::debug!(%dst, to_app, from_app, "ingress tunnel closed");
            Ok(())
        }
        Err(e) if is_expected_disconnect(&e) => {
            tracing::debug!(%dst, error = %e, "ingress tunnel reset");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Dials `dst`, or says why not in words the engine can pass on.
async fn dial(dst: SocketAddr) -> Result<TcpStream, String> {
    match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(dst)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(format!("dial {dst}: {e}")),
        Err(_) => Err(format!("dial {dst}: no answer within {DIAL_TIMEOUT:?}")),
    }
}
