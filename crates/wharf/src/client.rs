//! A client for the daemon's HTTP API over its unix socket or TCP, as the CLI and tests use it.

use std::path::PathBuf;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::{TcpStream, UnixStream};
use wharf_api::ErrorBody;
use wharf_engine::io_util::BoxIo;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonAddr {
    /// A unix socket.
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

/// A client failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error(
        "cannot reach the wharf daemon at {addr}: {message} (is `wharf serve` running? set --url or WHARF_URL)"
    )]
    Connect {
        /// Where we tried.
        addr: String,
        /// The I/O error.
        message: String,
    },
    /// The daemon answered with an error.
    #[error("{message} ({code})")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Stable error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
}

/// A JSON-or-empty answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Body bytes.
    pub body: Bytes,
}

/// The API client; each call opens its own connection.
#[derive(Debug, Clone)]
pub struct Client {
    addr: DaemonAddr,
    token: Option<String>,
}

impl DaemonAddr {
    /// Parses `unix:/path`, `unix:///path`, `/path`, `http://host:port` or `host:port`.
    pub fn parse(raw: &str) -> Result<DaemonAddr, String> {
        if let Some(path) = raw.strip_prefix("unix://").or_else(|| raw.strip_prefix("unix:")) {
            return Ok(DaemonAddr::Unix(PathBuf::from(path)));
        }
        if raw.starts_with('/') {
            return Ok(DaemonAddr::Unix(PathBuf::from(raw)));
        }
        let hostport = raw.strip_prefix("http://").unwrap_or(raw).trim_end_matches('/');
        if hostport.contains(':') && !hostport.contains('/') {
            return Ok(DaemonAddr::Tcp(hostport.to_owned()));
        }
        Err(format!(
            "cannot use {raw:?} as the daemon address: give unix:/path/to.sock or http://host:port"
        ))
    }
}

impl std::fmt::Display for DaemonAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            DaemonAddr::Tcp(a) => write!(f, "http://{a}"),
        }
    }
}

impl Client {
    /// A client for `addr`, sending `token` when set.
    pub fn new(addr: DaemonAddr, token: Option<String>) -> Client {
        Client { addr, token }
    }

    /// The address.
    pub fn addr(&self) -> &DaemonAddr {
        &self.addr
    }

    /// Sends a request and reads the whole answer, whatever its status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let res = self.send(method, path, body, &[]).await?;
        let status = res.status();
        let body = res.into_body().collect().await.map_err(protocol)?.to_bytes();
        Ok(Reply { status, body })
    }

    /// Sends a request; a 2xx answer's JSON is decoded, an error answer becomes [`ClientError::Api`].
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let reply = self.ok(method, path, body).await?;
        serde_json::from_slice(&reply.body).map_err(protocol)
    }

    /// Sends a request and requires a 2xx answer.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let reply = self.request(method, path, body).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(api_error(reply.status, &reply.body))
        }
    }

    /// Sends a request and returns the streaming answer when it is a success.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let res = self.send(method, path, None, &[]).await?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body = res.into_body().collect().await.map_err(protocol)?.to_bytes();
        Err(api_error(status, &body))
    }

    /// Asks to switch `path` to `protocol` and returns the raw stream.
    pub async fn upgrade(&self, path: &str, proto: &str) -> Result<BoxIo, ClientError> {
        let headers = [(header::CONNECTION, "Upgrade"), (header::UPGRADE, proto)];
        let mut res = self.send(Method::GET, path, None, &headers).await?;
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = res.status();
            let body = res.into_body().collect().await.map_err(protocol)?.to_bytes();
            return Err(api_error(status, &body));
        }
        let upgraded = hyper::upgrade::on(&mut res).await.map_err(protocol)?;
        Ok(Box::new(TokioIo::new(upgraded)))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(header::HeaderName, &str)],
    ) -> Result<http::Response<Incoming>, ClientError> {
        let io = self.connect().await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(protocol)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, "wharf");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in extra {
            req = req.header(name, *value);
        }
        let req = req.body(Full::new(bytes)).map_err(protocol)?;
        sender.send_request(req).await.map_err(protocol)
    }

    async fn connect(&self) -> Result<BoxIo, ClientError> {
        let fail = |e: std::io::Error| ClientError::Connect {
            addr: self.addr.to_string(),
            message: e.to_string(),
        };
        Ok(match &self.addr {
            DaemonAddr::Unix(path) => Box::new(UnixStream::connect(path).await.map_err(fail)?),
            DaemonAddr::Tcp(addr) => {
                Box::new(TcpStream::connect(addr.as_str()).await.map_err(fail)?)
            }
        })
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Api { status, code: e.error.code, message: e.error.message },
        Err(_) => ClientError::Api {
            status,
            code: "unknown".to_owned(),
            message: format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim()),
        },
    }
}

fn protocol(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            DaemonAddr::parse("unix:/run/w.sock"),
            Ok(DaemonAddr::Unix("/run/w.sock".into()))
        );
        assert_eq!(
            DaemonAddr::parse("unix:///run/w.sock"),
            Ok(DaemonAddr::Unix("/run/w.sock".into()))
        );
        assert_eq!(DaemonAddr::parse("/run/w.sock"), Ok(DaemonAddr::Unix("/run/w.sock".into())));
        assert_eq!(
            DaemonAddr::parse("http://127.0.0.1:9/"),
            Ok(DaemonAddr::Tcp("127.0.0.1:9".into()))
        );
        assert_eq!(DaemonAddr::parse("127.0.0.1:9"), Ok(DaemonAddr::Tcp("127.0.0.1:9".into())));
        assert!(DaemonAddr::parse("nonsense").is_err());
    }
}
