//! Outbound connections: resolve, connect (each address in turn), and wrap in TLS if asked.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::debug;

use crate::resolve::{ResolveError, Resolver};
use crate::target::{Authority, Scheme};
use crate::tls::{self, Roots, TlsError};

/// How long one TCP connect may take (undici's default connect timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The host has no address.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// No address accepted the connection; this is the last address's failure.
    #[error("connect to {addr}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// TLS setup or handshake failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Makes outbound connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Dialer {
    resolver: Resolver,
    ca_files: Vec<PathBuf>,
}

// === impl Dialer ===

impl Dialer {
    /// A dialer resolving with `resolver` and trusting the certificates in `ca_files`.
    pub fn new(resolver: Resolver, ca_files: Vec<PathBuf>) -> Dialer {
        Dialer { resolver, ca_files }
    }

    /// The resolver it dials names with.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// A TCP connection to `authority`.
    pub async fn tcp(&self, authority: &Authority) -> Result<TcpStream, DialError> {
        let ips = self.resolver.resolve(authority.host()).await?;
        let mut last = None;
        for ip in ips {
            let addr = SocketAddr::new(ip, authority.port());
            match connect_one(addr).await {
                Ok(stream) => return Ok(stream),
                Err(source) => {
                    debug!(%addr, error = %source, "connect failed");
                    last = Some(DialError::Connect { addr, source });
                }
            }
        }
        Err(last.unwrap_or_else(|| no_address(authority)))
    }

    /// A connection to `authority`, in TLS when `scheme` asks for it.
    pub async fn connect(
        &self,
        authority: &Authority,
        scheme: Scheme,
    ) -> Result<Box<dyn Io>, DialError> {
        let stream = self.tcp(authority).await?;
        if !scheme.is_tls() {
            return Ok(Box::new(stream));
        }
        let roots = Roots::load(&self.ca_files).await;
        debug!(trusted = roots.len(), "tls roots loaded");
        let stream = tls::connect(stream, authority.host(), roots.client_config()?).await?;
        Ok(Box::new(stream))
    }
}

async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// The resolver never returns an empty list, but a dial must fail with some error.
fn no_address(authority: &Authority) -> DialError {
    DialError::Resolve(ResolveError::NotFound { name: authority.host().to_string() })
}
