//! The intercepted-TCP path: every outbound connection of the app, tunnelled to the engine.
//!
//! Per connection, in its own task (STYLE habit 17):
//!
//! 1. The original destination ([`crate::orig_dst`]). A connection made straight to the
//!    listener, not intercepted, is reset.
//! 2. The first bytes ([`crate::peek`]): a TLS server name, an HTTP `Host` on any port (W10), or
//!    nothing within the peek timeout, which makes it plain TCP (W11).
//! 3. `CONNECT <dst>` to the engine's egress listener at `<gateway>:<port in force>`, from a
//!    marked socket, carrying [`EgressConnect`] (source, SNI, host, the TLS flag, the token).
//! 4. The engine's answer ([`wharf_wire::connect::answer`]):
//!    * 200: terminate TLS ([`crate::tls`]) when the app spoke TLS and `--tls-intercept` is on,
//!      then pump plaintext; otherwise pump raw.
//!    * 202: pump raw.
//!    * anything else: reset the app's connection (`SO_LINGER 0`).
//!
//! Peeked bytes are always replayed, and pumps are half-close aware. An unreachable or
//! misbehaving engine also resets the app's connection, with a warning at most every
//! [`WARN_EVERY`]; resets the app or the engine cause are logged at debug.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;
use wharf_wire::connect::{EgressConnect, answer};
use wharf_wire::head::{HeadError, ResponseHead};

use crate::accept::{AcceptBackoff, Shutdown};
use crate::config::ControlToken;
use crate::control::is_expected_disconnect;
use crate::egress_state::Egress;
use crate::gateway::EgressGateway;
use crate::intercept::InterceptMode;
use crate::listen::EgressListeners;
use crate::marked::OwnMark;
use crate::orig_dst::{OrigDst, OrigDstSource};
use crate::peek::{Peeked, Rewind, peek};
use crate::tls::TlsTerminator;

/// How long dialling the engine may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the engine may take to answer a `CONNECT`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the app may take to finish a TLS handshake with the sidecar.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning per this interval about an engine that cannot be reached.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// What the egress path needs besides its listeners.
#[derive(Debug, Clone)]
pub struct EgressParams {
    /// Where the engine's egress listener is.
    pub gateway: EgressGateway,
    /// The egress state, for the engine's port in force.
    pub egress: Egress,
    /// The token for the engine (`--control-token`).
    pub token: Option<ControlToken>,
    /// The mark on tunnels to the engine.
    pub mark: OwnMark,
    /// How long to wait for the app's first bytes.
    pub peek_timeout: Duration,
    /// TLS termination, with `--tls-intercept`.
    pub tls: Option<Arc<TlsTerminator>>,
    /// Where to learn each connection's original destination.
    pub orig_dst: Arc<dyn OrigDstSource>,
}

/// The egress listeners, bound but not yet accepting.
#[derive(Debug)]
pub struct EgressServer {
    listeners: EgressListeners,
    params: EgressParams,
}

/// Everything the connection tasks share.
#[derive(Debug)]
struct Shared {
    params: EgressParams,
    mode: InterceptMode,
    engine_warnings: WarnLimiter,
}

/// A tunnel to the engine that answered its `CONNECT`.
#[derive(Debug)]
struct Opened {
    stream: TcpStream,
    status: u16,
    /// Bytes the engine sent after its answer head, for the app.
    early: Vec<u8>,
}

/// Why no tunnel to the engine could be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("dialling the engine at {addr}")]
    Dial { addr: SocketAddr, source: io::Error },
    #[error("no answer from the engine at {addr} within {ANSWER_TIMEOUT:?}")]
    Timeout { addr: SocketAddr },
    #[error("the engine at {addr} closed the tunnel without answering")]
    Closed { addr: SocketAddr },
    #[error("the engine at {addr} answered with a malformed head")]
    Malformed { addr: SocketAddr, source: HeadError },
    #[error("talking to the engine at {addr}")]
    Io { addr: SocketAddr, source: io::Error },
}

/// How a pump ended badly.
#[derive(Debug, thiserror::Error)]
enum PumpError {
    #[error("tls handshake with the app")]
    Handshake(#[source] io::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Rate-limits a warning: the first in each interval passes, the rest go to debug.
#[derive(Debug)]
struct WarnLimiter {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

// === impl EgressServer ===

impl EgressServer {
    /// The egress path over `listeners`.
    pub fn new(listeners: EgressListeners, params: EgressParams) -> EgressServer {
        EgressServer { listeners, params }
    }

    /// The listeners' addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.local_addrs()
    }

    /// Accepts on every listener until `shutdown`, one task per connection.
    pub(crate) async fn serve(self, mode: InterceptMode, shutdown: Shutdown) {
        let shared = Arc::new(Shared {
            params: self.params,
            mode,
            engine_warnings: WarnLimiter::new(WARN_EVERY),
        });
        let loops: Vec<_> = self
            .listeners
            .into_inner()
            .into_iter()
            .map(|listener| {
                tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown.clone()))
            })
            .collect();
        for handle in loops {
            let _ = handle.await;
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: Shutdown) {
    let local = listener.local_addr().ok();
    let mut backoff = AcceptBackoff::new("egress");
    let stop = shutdown.signalled();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                tokio::spawn(handle(Arc::clone(&shared), stream, peer, local));
            }
            Err(e) => backoff.wait(&e).await,
        }
    }
}

/// One intercepted connection, from accept to close.
async fn handle(
    shared: Arc<Shared>,
    app: TcpStream,
    peer: SocketAddr,
    listener: Option<SocketAddr>,
) {
    let _ = app.set_nodelay(true);
    let dst = match shared.params.orig_dst.orig_dst(&app, shared.mode) {
        Ok(dst) => dst,
        Err(e) => {
            tracing::debug!(client.addr = %peer, error = %e, "no original destination; resetting");
            return reset(app);
        }
    };
    if Some(dst.addr()) == listener {
        tracing::debug!(client.addr = %peer, "not intercepted (dialled the listener itself); resetting");
        return reset(app);
    }
    let span = tracing::debug_span!(
        "egress",
        client.addr = %peer,
        orig_dst = %dst,
        sni = tracing::field::Empty,
    );
    tunnel(&shared, app, peer, dst).instrument(span).await;
}

async fn tunnel(shared: &Shared, mut app: TcpStream, peer: SocketAddr, dst: OrigDst) {
    let peeked = match peek(&mut app, shared.params.peek_timeout).await {
        Ok(peeked) => peeked,
        Err(e) => return tracing::debug!(error = %e, "reading the first bytes failed"),
    };
    if let Some(sni) = peeked.sni() {
        tracing::Span::current().record("sni", sni);
    }
    let connect = egress_connect(shared, &peeked, peer, dst);
    let opened = match open(shared, &connect).await {
        Ok(opened) => opened,
        Err(e) => {
            let e = error_chain(&e);
            shared.engine_warnings.log(&e, "engine unreachable; resetting the app's connection");
            return reset(app);
        }
    };
    let terminate = shared.params.tls.as_ref().filter(|_| peeked.is_tls());
    tracing::debug!(
        status = opened.status,
        tls = peeked.is_tls(),
        host = peeked.http_host(),
        peeked = peeked.bytes.len(),
        "engine answered"
    );
    let pumped = match (opened.status, terminate) {
        (answer::INTERCEPT, Some(tls)) => terminate_tls(app, peeked, opened, tls, dst).await,
        (answer::INTERCEPT | answer::RAW, _) => pump_raw(app, peeked.bytes, opened).await,
        (answer::UNAUTHORIZED, _) => {
            let e = "the engine refused the control token (407)";
            shared.engine_warnings.log(e, "resetting the app's connection");
            return reset(app);
        }
        (status, _) => {
            tracing::debug!(status, "refused by the engine; resetting");
            return reset(app);
        }
    };
    match pumped {
        Ok((from_app, to_app)) => tracing::debug!(from_app, to_app, "tunnel closed"),
        Err(PumpError::Io(e)) if !is_expected_disconnect(&e) => {
            tracing::warn!(error = %e, "tunnel failed")
        }
        Err(e) => tracing::debug!(error = %error_chain(&e), "tunnel ended"),
    }
}

fn egress_connect(
    shared: &Shared,
    peeked: &Peeked,
    peer: SocketAddr,
    dst: OrigDst,
) -> EgressConnect {
    EgressConnect {
        dst: dst.addr(),
        src: peer,
        tls_sni: peeked.sni().map(str::to_owned),
        hostname: peeked.http_host().map(str::to_owned),
        tls: peeked.is_tls(),
        token: shared.params.token.as_ref().map(|t| t.as_str().to_owned()),
    }
}

/// Dials the engine, sends the `CONNECT` and reads the answer head.
async fn open(shared: &Shared, connect: &EgressConnect) -> Result<Opened, OpenError> {
    let addr = shared.params.gateway.listener(shared.params.egress.current().port());
    let mut stream =
        match tokio::time::timeout(DIAL_TIMEOUT, shared.params.mark.connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(OpenError::Dial { addr, source }),
            Err(_) => {
                let source = io::Error::new(io::ErrorKind::TimedOut, "dial timed out");
                return Err(OpenError::Dial { addr, source });
            }
        };
    stream.write_all(&connect.encode()).await.map_err(|source| OpenError::Io { addr, source })?;
    let (head, early) = tokio::time::timeout(ANSWER_TIMEOUT, read_answer(&mut stream, addr))
        .await
        .map_err(|_| OpenError::Timeout { addr })??;
    Ok(Opened { stream, status: head.status(), early })
}

async fn read_answer(
    stream: &mut TcpStream,
    addr: SocketAddr,
) -> Result<(ResponseHead, Vec<u8>), OpenError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match ResponseHead::parse(&buf) {
            Ok(Some((head, used))) => {
                buf.drain(..used);
                return Ok((head, buf));
            }
            Ok(None) => {}
            Err(source) => return Err(OpenError::Malformed { addr, source }),
        }
        let n = stream.read(&mut chunk).await.map_err(|source| OpenError::Io { addr, source })?;
        if n == 0 {
            return Err(OpenError::Closed { addr });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Replays the peeked bytes to the engine, the engine's early bytes to the app, then pumps.
async fn pump_raw(
    mut app: TcpStream,
    peeked: Vec<u8>,
    mut opened: Opened,
) -> Result<(u64, u64), PumpError> {
    opened.stream.write_all(&peeked).await?;
    app.write_all(&opened.early).await?;
    let (from_app, to_app) = crate::relay::relay(&mut app, &mut opened.stream).await?;
    Ok((from_app + peeked.len() as u64, to_app + opened.early.len() as u64))
}

/// Plays the TLS server to the app (the ClientHello replayed from `peeked`), then pumps
/// plaintext between it and the engine.
async fn terminate_tls(
    app: TcpStream,
    peeked: Peeked,
    mut opened: Opened,
    tls: &Arc<TlsTerminator>,
    dst: OrigDst,
) -> Result<(u64, u64), PumpError> {
    let acceptor = TlsAcceptor::from(tls.server_config(dst.addr().ip()));
    let handshake = acceptor.accept(Rewind::new(peeked.bytes, app));
    let mut app = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(app)) => app,
        Ok(Err(e)) => return Err(PumpError::Handshake(e)),
        Err(_) => {
            let e = io::Error::new(io::ErrorKind::TimedOut, "no handshake within the timeout");
            return Err(PumpError::Handshake(e));
        }
    };
    tracing::debug!("tls terminated");
    if !opened.early.is_empty() {
        app.write_all(&opened.early).await?;
        app.flush().await?;
    }
    let (from_app, to_app) = crate::relay::relay(&mut app, &mut opened.stream).await?;
    Ok((from_app, to_app + opened.early.len() as u64))
}

/// Resets `stream` (RST instead of FIN), so the app sees a refused connection, not an empty one.
pub(crate) fn reset(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// `error: cause: cause`, for one log field.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

// === impl WarnLimiter ===

impl WarnLimiter {
    fn new(every: Duration) -> WarnLimiter {
        WarnLimiter { every, last: Mutex::new(None) }
    }

    /// Whether a warning may go out now.
    fn allow(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < self.every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    fn log(&self, e: &str, message: &str) {
        if self.allow() {
            tracing::warn!(error = %e, "{message}");
        } else {
            tracing::debug!(error = %e, "{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn warnings_are_rate_limited() {
        let limiter = WarnLimiter::new(Duration::from_secs(10));
        assert!(limiter.allow());
        assert!(!limiter.allow());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!limiter.allow());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.allow());
    }

    #[test]
    fn error_chains_name_every_cause() {
        let e = OpenError::Dial {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
        };
        assert_eq!(error_chain(&e), "dialling the engine at 127.0.0.1:1: connection refused");
    }
}
