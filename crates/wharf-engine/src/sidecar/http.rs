//! [`HttpControl`]: the control-port client over TCP, one request per connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf_wire::connect::IngressConnect;
use wharf_wire::control::{EgressState, EgressUpdate};
use wharf_wire::head::{RequestHead, ResponseHead};

use super::{ControlError, Endpoint, SidecarControl};
use crate::io_util::{self, BoxIo, Prefixed};
use crate::params::AppPort;

/// The largest control answer body we read (the CA is about 600 bytes).
const MAX_BODY: usize = 1 << 20;

/// Speaks to sidecars over TCP.
#[derive(Debug, Clone)]
pub struct HttpControl {
    timeout: Duration,
}

impl HttpControl {
    /// A client whose every exchange must finish within `timeout`.
    pub fn new(timeout: Duration) -> HttpControl {
        HttpControl { timeout }
    }

    async fn exchange(
        &self,
        ep: &Endpoint,
        request: Vec<u8>,
    ) -> Result<(ResponseHead, Bytes), ControlError> {
        let work = async {
            let mut stream = dial(ep.addr).await?;
            stream.write_all(&request).await.map_err(|e| unreachable(ep.addr, &e))?;
            let (head, rest, stream) = read_head(ep.addr, stream).await?;
            let body = read_body(ep.addr, &head, rest, stream).await?;
            Ok((head, body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ControlError::Timeout(ep.addr))?
    }
}

#[async_trait]
impl SidecarControl for HttpControl {
    async fn put_egress(&self, ep: &Endpoint, update: &EgressUpdate) -> Result<(), ControlError> {
        let body = update.encode();
        let mut request = authorized(RequestHead::new("PUT", "/egress"), ep)
            .with_header("Content-Type", "application/json")
            .with_header("Content-Length", &body.len().to_string())
            .encode();
        request.extend_from_slice(&body);
        let (head, body) = self.exchange(ep, request).await?;
        success(&head, &body).map(drop)
    }

    async fn get_state(&self, ep: &Endpoint) -> Result<EgressState, ControlError> {
        let request = authorized(RequestHead::new("GET", "/egress"), ep).encode();
        let (head, body) = self.exchange(ep, request).await?;
        let body = success(&head, &body)?;
        serde_json::from_slice(&body)
            .map_err(|e| ControlError::Protocol(format!("GET /egress: {e}")))
    }

    async fn get_ca(&self, ep: &Endpoint) -> Result<String, ControlError> {
        let request = authorized(RequestHead::new("GET", "/ca"), ep).encode();
        let (head, body) = self.exchange(ep, request).await?;
        let body = success(&head, &body)?;
        String::from_utf8(body.to_vec())
            .map_err(|_| ControlError::Protocol("CA is not UTF-8 PEM".to_owned()))
    }

    async fn connect(&self, ep: &Endpoint, port: AppPort) -> Result<BoxIo, ControlError> {
        let dst = SocketAddr::from((Ipv4Addr::LOCALHOST, port.number()));
        let request = IngressConnect { dst, token: Some(&ep.token) }.encode();
        let work = async {
            let mut stream = dial(ep.addr).await?;
            stream.write_all(&request).await.map_err(|e| unreachable(ep.addr, &e))?;
            let (head, rest, stream) = read_head(ep.addr, stream).await?;
            if head.status() == 200 {
                return Ok(Box::new(Prefixed::new(rest, stream)) as BoxIo);
            }
            let body = read_body(ep.addr, &head, rest, stream).await.unwrap_or_default();
            Err(rejected(&head, &body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ControlError::Timeout(ep.addr))?
    }
}

fn authorized(head: RequestHead, ep: &Endpoint) -> RequestHead {
    head.with_header("Host", &ep.addr.to_string())
        .with_header("Authorization", &format!("Bearer {}", ep.token))
        .with_header("Connection", "close")
}

async fn dial(addr: SocketAddr) -> Result<TcpStream, ControlError> {
    let stream = TcpStream::connect(addr).await.map_err(|e| unreachable(addr, &e))?;
    // Control exchanges are tiny; don't let Nagle hold them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn read_head(
    addr: SocketAddr,
    mut stream: TcpStream,
) -> Result<(ResponseHead, Bytes, TcpStream), ControlError> {
    match io_util::read_head(&mut stream, wharf_wire::head::MAX_HEAD_LEN, ResponseHead::parse).await
    {
        Ok((head, rest)) => Ok((head, rest, stream)),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(ControlError::Protocol(e.to_string()))
        }
        Err(e) => Err(unreachable(addr, &e)),
    }
}

async fn read_body(
    addr: SocketAddr,
    head: &ResponseHead,
    rest: Bytes,
    stream: TcpStream,
) -> Result<Bytes, ControlError> {
    let mut body = rest.to_vec();
    let want = head.content_length().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if want.is_some_and(|n| n > MAX_BODY) {
        return Err(ControlError::Protocol("answer body too large".to_owned()));
    }
    let mut limited = stream.take((MAX_BODY + 1) as u64);
    match want {
        Some(n) if body.len() < n => {
            body.resize(n, 0);
            let have = rest.len();
            limited.read_exact(&mut body[have..]).await.map_err(|e| unreachable(addr, &e))?;
        }
        Some(n) => body.truncate(n),
        None => {
            limited.read_to_end(&mut body).await.map_err(|e| unreachable(addr, &e))?;
        }
    }
    Ok(Bytes::from(body))
}

fn success(head: &ResponseHead, body: &Bytes) -> Result<Bytes, ControlError> {
    if (200..300).contains(&head.status()) { Ok(body.clone()) } else { Err(rejected(head, body)) }
}

fn rejected(head: &ResponseHead, body: &[u8]) -> ControlError {
    ControlError::Rejected {
        status: head.status(),
        body: String::from_utf8_lossy(body).trim().to_owned(),
    }
}

fn unreachable(addr: SocketAddr, e: &std::io::Error) -> ControlError {
    ControlError::Unreachable { addr, message: e.to_string() }
}

#[cfg(test)]
mod tests;
