//! The control and ingress server on `:39001`: accept loop, request head, auth and dispatch.
//!
//! One request per TCP connection, always answered with `Connection: close` (engine spec §3.4):
//!
//! | request | answer |
//! |---|---|
//! | `CONNECT <any>` + `X-Dst-Addr` | see [`crate::ingress`] |
//! | `PUT /egress` | 204 once applied; 400 bad body; 413 over 1 MiB; 500 if the kernel refused |
//! | `GET /egress` | 200 JSON of the state in force and the interception mode (wharf addition) |
//! | `GET /ca` | 200 PEM of `<ca-dir>/ca.crt`; 404 when absent |
//! | other method on a known path | 405 |
//! | anything else | 404 |
//!
//! With a control token every request must carry it, or gets 407 (`CONNECT`) or 401.
//!
//! A `PUT` that carries `internet` first has the kernel enforce it
//! ([`Interception::set_internet`]) and only then changes the state and answers 204: the state
//! never claims what the kernel does not enforce. If the kernel refuses, nothing changes and the
//! answer is 500 with the reason. `PUT`s are serialised so kernel and state cannot disagree
//! about which came last.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument as _;
use wharf_wire::connect::{bearer_token, token_matches};
use wharf_wire::control::EgressUpdate;
use wharf_wire::head::{HeadError, RequestHead, ResponseHead, encode_response};

use crate::accept::AcceptBackoff;
use crate::ca::CA_CERT_FILE;
use crate::config::ControlToken;
use crate::egress::error_chain;
use crate::egress_state::Egress;
use crate::ingress;
use crate::intercept::{InterceptMode, Intercepting, Interception};

/// How long a client may take to send the request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a `PUT` body after its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `PUT /egress` body accepted.
pub const MAX_BODY_LEN: u64 = 1024 * 1024;

/// What the control server needs besides its listener.
#[derive(Debug, Clone)]
pub struct ControlParams {
    /// When set, every request must carry this bearer token.
    pub token: Option<ControlToken>,
    /// The directory whose `ca.crt` `GET /ca` serves.
    pub ca_dir: PathBuf,
    /// The egress state that `PUT /egress` updates.
    pub egress: Egress,
    /// The interception whose internet gate `PUT /egress` opens and closes.
    pub interception: Arc<dyn Interception>,
}

/// The control listener, bound but not yet accepting.
#[derive(Debug)]
pub struct ControlServer {
    listener: TcpListener,
    params: ControlParams,
}

/// What the connection tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    params: ControlParams,
    /// The interception mode in force, for `GET /egress`.
    mode: InterceptMode,
    /// Held across a `PUT`'s kernel change and state change.
    put_lock: tokio::sync::Mutex<()>,
}

/// The control listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the control listener on {addr}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// Why a control connection ended without a complete exchange. Logged by the connection task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// Reading or writing the socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The client sent no complete head within [`HEAD_TIMEOUT`].
    #[error("no request head within {HEAD_TIMEOUT:?}")]
    HeadTimeout,
    /// The client sent no complete body within [`BODY_TIMEOUT`].
    #[error("no complete request body within {BODY_TIMEOUT:?}")]
    BodyTimeout,
}

/// A response before encoding. Error bodies are plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    extra_header: Option<(&'static str, &'static str)>,
    body: Vec<u8>,
}

/// Which handler a request head goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Connect,
    PutEgress,
    GetEgress,
    GetCa,
    MethodNotAllowed { allow: &'static str },
    NotFound,
}

/// How reading a request head ended.
#[derive(Debug)]
enum HeadRead {
    Head { head: RequestHead, rest: Vec<u8> },
    Malformed(HeadError),
    Closed,
}

// === impl ControlServer ===

impl ControlServer {
    /// Binds `addr`. Nothing is accepted until [`ControlServer::serve`].
    pub async fn bind(addr: SocketAddr, params: ControlParams) -> Result<ControlServer, BindError> {
        let listener =
            TcpListener::bind(addr).await.map_err(|source| BindError { addr, source })?;
        Ok(ControlServer { listener, params })
    }

    /// The address actually bound (the port is the OS's choice when asked for 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` completes, one task per connection.
    ///
    /// Takes the proof that interception is in force, so that a successful `PUT /egress`, the
    /// engine's readiness probe, can only ever come from an enforcing sidecar.
    pub async fn serve(self, intercepting: Intercepting, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let shared = Arc::new(Shared {
            params: self.params,
            mode: intercepting.mode(),
            put_lock: tokio::sync::Mutex::new(()),
        });
        let mut backoff = AcceptBackoff::new("control");
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    spawn_connection(Arc::clone(&shared), stream, peer);
                }
                Err(e) => backoff.wait(&e).await,
            }
        }
    }
}

fn spawn_connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let span = tracing::info_span!("control", client.addr = %peer);
    tokio::spawn(
        async move {
            // Tunnels carry interactive traffic; don't let Nagle hold back small writes.
            let _ = stream.set_nodelay(true);
            if let Err(e) = handle(stream, &shared).await {
                log_conn_error(&e);
            }
        }
        .instrument(span),
    );
}

/// Serves one control connection: one request, one response (or one tunnel).
pub(crate) async fn handle<S>(mut stream: S, shared: &Shared) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let read = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| ConnError::HeadTimeout)??;
    let (head, rest) = match read {
        HeadRead::Head { head, rest } => (head, rest),
        HeadRead::Malformed(e) => return respond(&mut stream, Reply::text(400, &e)).await,
        HeadRead::Closed => {
            tracing::debug!("closed before sending a request");
            return Ok(());
        }
    };
    let route = Route::of(&head);
    tracing::debug!(method = head.method(), target = head.target(), ?route, "request");
    let params = &shared.params;
    if let Err(reply) = authorize(params.token.as_ref(), &head, route) {
        tracing::info!(method = head.method(), target = head.target(), "refused: control token");
        return respond(&mut stream, reply).await;
    }
    let reply = match route {
        Route::Connect => return ingress::serve(stream, &head, rest).await,
        Route::PutEgress => put_egress(&mut stream, &head, rest, shared).await?,
        Route::GetEgress => get_egress(shared),
        Route::GetCa => get_ca(params).await,
        Route::MethodNotAllowed { allow } => {
            Reply::text(405, "method not allowed").with_header("Allow", allow)
        }
        Route::NotFound => Reply::text(404, "not found"),
    };
    respond(&mut stream, reply).await
}

/// Writes `reply` and closes our side, then lets the client finish sending so that unread
/// request bytes do not turn our close into a reset that destroys the response in flight.
pub(crate) async fn respond<S>(stream: &mut S, reply: Reply) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(&reply.encode()).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut budget: usize = 256 * 1024;
    let drain = async {
        while budget > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

async fn read_head<S>(stream: &mut S) -> io::Result<HeadRead>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    loop {
        match RequestHead::parse(&buf) {
            Ok(Some((head, used))) => {
                buf.drain(..used);
                return Ok(HeadRead::Head { head, rest: buf });
            }
            Ok(None) => {}
            Err(e) => return Ok(HeadRead::Malformed(e)),
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(HeadRead::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn authorize(token: Option<&ControlToken>, head: &RequestHead, route: Route) -> Result<(), Reply> {
    let Some(token) = token else { return Ok(()) };
    if token_matches(token.as_str(), bearer_token(head)) {
        return Ok(());
    }
    let reply = if route == Route::Connect {
        Reply::text(407, "missing or wrong control token")
            .with_header("Proxy-Authenticate", "Bearer")
    } else {
        Reply::text(401, "missing or wrong control token").with_header("WWW-Authenticate", "Bearer")
    };
    Err(reply)
}

async fn put_egress<S>(
    stream: &mut S,
    head: &RequestHead,
    rest: Vec<u8>,
    shared: &Shared,
) -> Result<Reply, ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let len = match body_len(head, &rest) {
        Ok(len) => len,
        Err(reply) => return Ok(reply),
    };
    if expects_continue(head) && (rest.len() as u64) < len {
        // curl sends this for bodies over 1 KiB (a long allow-list) and would wait a second.
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body = tokio::time::timeout(BODY_TIMEOUT, read_body(stream, rest, len))
        .await
        .map_err(|_| ConnError::BodyTimeout)??;
    let Some(body) = body else {
        return Ok(Reply::text(400, "request body ended before Content-Length bytes"));
    };
    let update = match EgressUpdate::parse(&body) {
        Ok(update) => update,
        Err(e) => return Ok(Reply::text(400, &e)),
    };
    Ok(apply_update(shared, &update).await)
}

/// Validates `update`, has the kernel enforce its internet flag, then applies it.
async fn apply_update(shared: &Shared, update: &EgressUpdate) -> Reply {
    let egress = &shared.params.egress;
    let _serialised = shared.put_lock.lock().await;
    if let Err(e) = egress.current().updated(update) {
        return Reply::text(400, &e);
    }
    if let Some(internet) = update.internet {
        let interception = Arc::clone(&shared.params.interception);
        let enabled = internet.enabled;
        let set = tokio::task::spawn_blocking(move || interception.set_internet(enabled)).await;
        let failure = match set {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(error_chain(&e)),
            Err(e) => Some(format!("setting the internet gate panicked: {e}")),
        };
        if let Some(message) = failure {
            tracing::warn!(enabled, error = %message, "the kernel refused the internet change");
            return Reply::text(500, format_args!("internet gate not changed: {message}"));
        }
    }
    match egress.apply(update) {
        Ok(()) => {
            tracing::info!(?update, "egress updated");
            Reply::empty(204)
        }
        Err(e) => Reply::text(400, &e),
    }
}

fn get_egress(shared: &Shared) -> Reply {
    let state = shared.params.egress.current().to_wire(shared.mode);
    // Serialising plain structs of strings and numbers cannot fail.
    Reply::json(serde_json::to_vec(&state).unwrap_or_default())
}

/// The body length the head announces, or the reply refusing it.
fn body_len(head: &RequestHead, rest: &[u8]) -> Result<u64, Reply> {
    match head.header("content-length") {
        Some(raw) => {
            let len: u64 =
                raw.trim().parse().map_err(|_| Reply::text(400, "invalid Content-Length"))?;
            if len > MAX_BODY_LEN {
                return Err(Reply::text(413, format_args!("body exceeds {MAX_BODY_LEN} bytes")));
            }
            Ok(len)
        }
        None if head.header("transfer-encoding").is_some() || !rest.is_empty() => {
            Err(Reply::text(400, "a request body needs Content-Length"))
        }
        None => Ok(0),
    }
}

fn expects_continue(head: &RequestHead) -> bool {
    head.header("expect").is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// Reads until `len` bytes (counting `rest`, already read) have arrived. `None` on early EOF.
async fn read_body<S>(stream: &mut S, mut body: Vec<u8>, len: u64) -> io::Result<Option<Vec<u8>>>
where
    S: AsyncRead + Unpin,
{
    // `len` is at most MAX_BODY_LEN, so it fits in usize.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let missing = len.saturating_sub(body.len());
    let read = stream.take(missing as u64).read_to_end(&mut body).await?;
    if read < missing {
        return Ok(None);
    }
    body.truncate(len);
    Ok(Some(body))
}

async fn get_ca(params: &ControlParams) -> Reply {
    let path = params.ca_dir.join(CA_CERT_FILE);
    match tokio::fs::read(&path).await {
        Ok(pem) => Reply { content_type: Some("application/x-pem-file"), ..Reply::empty(200) }
            .with_body(pem),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Reply::text(404, "no ca certificate"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading the ca certificate");
            Reply::text(500, "cannot read the ca certificate")
        }
    }
}

fn log_conn_error(e: &ConnError) {
    match e {
        ConnError::Io(io) if is_expected_disconnect(io) => {
            tracing::debug!(error = %e, "connection ended")
        }
        ConnError::HeadTimeout | ConnError::BodyTimeout => {
            tracing::debug!(error = %e, "connection dropped")
        }
        ConnError::Io(_) => tracing::warn!(error = %e, "connection failed"),
    }
}

/// Resets and broken pipes are how peers normally leave a tunnel; they are not worth a warning.
pub(crate) fn is_expected_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

// === impl Route ===

impl Route {
    fn of(head: &RequestHead) -> Route {
        let method = head.method();
        if method == "CONNECT" {
            return Route::Connect;
        }
        let path = head.target().split_once('?').map_or(head.target(), |(path, _)| path);
        match (path, method) {
            ("/egress", "PUT") => Route::PutEgress,
            ("/egress", "GET") => Route::GetEgress,
            ("/egress", _) => Route::MethodNotAllowed { allow: "GET, PUT" },
            ("/ca", "GET") => Route::GetCa,
            ("/ca", _) => Route::MethodNotAllowed { allow: "GET" },
            _ => Route::NotFound,
        }
    }
}

// === impl Reply ===

impl Reply {
    pub(crate) fn empty(status: u16) -> Reply {
        Reply { status, content_type: None, extra_header: None, body: Vec::new() }
    }

    pub(crate) fn text(status: u16, message: impl std::fmt::Display) -> Reply {
        Reply { content_type: Some("text/plain; charset=utf-8"), ..Reply::empty(status) }
            .with_body(message.to_string().into_bytes())
    }

    fn json(body: Vec<u8>) -> Reply {
        Reply { content_type: Some("application/json"), ..Reply::empty(200) }.with_body(body)
    }

    fn with_body(self, body: Vec<u8>) -> Reply {
        Reply { body, ..self }
    }

    fn with_header(self, name: &'static str, value: &'static str) -> Reply {
        Reply { extra_header: Some((name, value)), ..self }
    }

    fn encode(&self) -> Vec<u8> {
        let Some((name, value)) = self.extra_header else {
            return encode_response(self.status, self.content_type, &self.body);
        };
        let mut head = ResponseHead::new(self.status)
            .with_header(name, value)
            .with_header("Content-Length", &self.body.len().to_string())
            .with_header("Connection", "close");
        if let Some(ct) = self.content_type {
            head = head.with_header("Content-Type", ct);
        }
        let mut out = head.encode();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests;
