//! Keep-alive HTTP connections to apps, reused across proxied requests.
//!
//! Opening a tunnel costs a `CONNECT` to the sidecar and a dial to the app; workerd kept HTTP/1.1
//! clients per port for the same reason. An idle connection holds no activity guard, so pooled
//! connections never keep a container "active" for its inactivity timeout. A pooled connection
//! found closed before it took a request is replaced by a fresh tunnel, once.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use wharf_engine::params::{AppPort, ContainerId};
use wharf_engine::{ActivityGuard, Engine};

use crate::ApiError;

/// Idle connections kept per (container, port).
const MAX_IDLE: usize = 16;
/// Idle connections older than this are closed, not reused.
const IDLE_TTL: Duration = Duration::from_secs(30);

/// (container, app port, run): a new run never reuses an earlier run's connections.
type Key = (ContainerId, u16, u64);

/// The pool.
#[derive(Debug, Default)]
pub struct Tunnels {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// Returns a connection to the pool once its response has been read to the end.
#[derive(Debug)]
struct Ticket {
    pool: Arc<Tunnels>,
    key: Key,
    sender: SendRequest<Body>,
}

/// A response body that gives its connection back when it ends, and keeps the container
/// active while it streams.
#[derive(Debug)]
pub(crate) struct Returning {
    inner: Incoming,
    ticket: Option<Ticket>,
    _active: ActivityGuard,
}

impl Tunnels {
    /// Sends `req` to `port` of `id` over a pooled or fresh connection.
    pub(crate) async fn send(
        self: &Arc<Self>,
        engine: &Engine,
        id: &ContainerId,
        port: AppPort,
        mut req: Request<Body>,
        (active, run): (ActivityGuard, u64),
    ) -> Result<Response<Returning>, ApiError> {
        let key = (id.clone(), port.number(), run);
        loop {
            let (mut sender, fresh) = match self.take(&key) {
                Some(sender) => (sender, false),
                None => (open(engine, id, port).await?, true),
            };
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let ticket = Ticket { pool: Arc::clone(self), key, sender };
                    return Ok(res.map(|inner| Returning::new(inner, ticket, active)));
                }
                Err(mut e) => match e.take_message() {
                    // The pooled connection closed before taking the request: use a fresh one.
                    Some(back) if !fresh => req = back,
                    _ => return Err(super::proxy::app_gone(e.into_error())),
                },
            }
        }
    }

    fn take(&self, key: &Key) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < IDLE_TTL && entry.sender.is_ready() {
                return Some(entry.sender);
            }
        }
        None
    }

    fn give_back(&self, key: Key, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Prune everywhere: keys of finished runs are never asked for again.
        idle.retain(|_, list| {
            list.retain(|e| !e.sender.is_closed() && e.since.elapsed() < IDLE_TTL);
            !list.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE {
            list.push(Idle { sender, since: Instant::now() });
        }
    }
}

/// A fresh tunnel to the app's port, with an HTTP/1.1 connection on it.
async fn open(
    engine: &Engine,
    id: &ContainerId,
    port: AppPort,
) -> Result<SendRequest<Body>, ApiError> {
    // The tunnel's own guard is dropped: only requests count as activity.
    let (io, _guard) = engine.connect_port(id, port).await?;
    let (sender, conn) =
        http1::handshake(TokioIo::new(io)).await.map_err(super::proxy::app_gone)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(target: "wharf::proxy", error = %e, "pooled app connection ended");
        }
    });
    Ok(sender)
}

// === impl Returning ===

impl Returning {
    fn new(inner: Incoming, ticket: Ticket, active: ActivityGuard) -> Returning {
        let mut body = Returning { inner, ticket: Some(ticket), _active: active };
        if hyper::body::Body::is_end_stream(&body.inner) {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        if let Some(Ticket { pool, key, sender }) = self.ticket.take() {
            pool.give_back(key, sender);
        }
    }
}

impl hyper::body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() || hyper::body::Body::is_end_stream(&self.inner) {
            self.finish();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
