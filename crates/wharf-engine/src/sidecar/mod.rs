//! Talking to a sidecar's control port: `PUT /egress`, `GET /ca` and ingress `CONNECT`.
//!
//! [`SidecarControl`] is the I/O boundary; [`http::HttpControl`] speaks the wire format of
//! `wharf_wire` over TCP to the port Docker published on 127.0.0.1, and [`fake::FakeControl`]
//! stands in for tier-1 tests where no sidecar process exists.

use std::fmt;
use std::net::SocketAddr;

use async_trait::async_trait;
use wharf_wire::control::{CONTROL_PORT, EgressState, EgressUpdate};

use crate::docker::ContainerInfo;
use crate::io_util::BoxIo;
use crate::params::AppPort;

pub mod fake;
pub mod http;
pub(crate) mod launch;

/// Where a sidecar's control port is, and the token it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The published control port on the host, e.g. `127.0.0.1:32769`.
    pub addr: SocketAddr,
    /// The per-sidecar token (never given to the app).
    pub token: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token stays out of logs.
        f.debug_struct("Endpoint").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// A control-port failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// TCP connect or I/O failed.
    #[error("sidecar control port {addr} unreachable: {message}")]
    Unreachable {
        /// The control address.
        addr: SocketAddr,
        /// The I/O error.
        message: String,
    },
    /// No answer in time.
    #[error("sidecar control port {0} did not answer in time")]
    Timeout(SocketAddr),
    /// The sidecar answered with a non-success status.
    #[error("sidecar answered {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Its body, trimmed.
        body: String,
    },
    /// The answer was not HTTP.
    #[error("sidecar sent a malformed answer: {0}")]
    Protocol(String),
}

/// The control-port operations the engine uses.
#[async_trait]
pub trait SidecarControl: Send + Sync + fmt::Debug + 'static {
    /// `PUT /egress`; in force when this returns `Ok`.
    async fn put_egress(&self, ep: &Endpoint, update: &EgressUpdate) -> Result<(), ControlError>;
    /// `GET /egress`: the sidecar's current state, with its interception mode.
    async fn get_state(&self, ep: &Endpoint) -> Result<EgressState, ControlError>;
    /// `GET /ca`: the interception CA, PEM.
    async fn get_ca(&self, ep: &Endpoint) -> Result<String, ControlError>;
    /// Ingress `CONNECT 127.0.0.1:<port>`: a byte stream to the app's port.
    /// A `400` (nothing listens) is `Rejected { status: 400, .. }`.
    async fn connect(&self, ep: &Endpoint, port: AppPort) -> Result<BoxIo, ControlError>;
}

/// How long the host may take to open a TCP connection to a sidecar's bridge address before
/// the published port is used instead.
const DIRECT_PROBE: std::time::Duration = std::time::Duration::from_millis(150);

/// Where to reach a sidecar's control port: its bridge address when the host can route there
/// (Linux), which skips Docker's userland port proxy (~280 µs per connection measured here);
/// otherwise the port published on 127.0.0.1 (Docker Desktop and the like).
pub(crate) async fn best_endpoint(info: &ContainerInfo, token: &str) -> Option<Endpoint> {
    if let Some(ip) = info.ip {
        let direct = SocketAddr::new(ip, CONTROL_PORT);
        let probe =
            tokio::time::timeout(DIRECT_PROBE, tokio::net::TcpStream::connect(direct)).await;
        if matches!(probe, Ok(Ok(_))) {
            return Some(Endpoint { addr: direct, token: token.to_owned() });
        }
    }
    control_addr(info).map(|addr| Endpoint { addr, token: token.to_owned() })
}

/// The host address of a sidecar's published control port, from its inspect answer.
/// Docker may report `0.0.0.0` for a binding; wharf always publishes on 127.0.0.1 (W5).
pub(crate) fn control_addr(info: &ContainerInfo) -> Option<SocketAddr> {
    let addr = *info.published.get(&CONTROL_PORT)?.first()?;
    if addr.ip().is_unspecified() {
        Some(SocketAddr::from(([127, 0, 0, 1], addr.port())))
    } else {
        Some(addr)
    }
}
