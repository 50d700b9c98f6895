//! The HTTP/1.1 side: the accept loop, one task per connection (with the idle close), and the
//! request handler that turns bytes into a [`Request`] and a cached or fresh reply.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::respond::respond;
use super::{Reply, State};
use crate::protocol::{Answer, Request};

/// The largest request body read: a V2 body is a few hundred bytes.
const MAX_REQUEST_BODY: usize = 64 << 10;
/// How long to back off after an accept error such as `EMFILE`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// When a connection last finished an answer, and whether one is under way.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch`.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

/// Accepts until told to stop; each connection runs in a task of its own.
pub(super) async fn accept(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    state.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(connection(stream, peer, state.clone(), for_connections.clone()));
                }
                Err(e) => {
                    tracing::warn!(target: "wharf::fallback", error = %e, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            () = stopped(&mut stop) => return,
        }
    }
}

/// Serves one connection until the client closes it, it idles past `idle_close`, or the
/// server stops (which drops it at once).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    state.counters.open.fetch_add(1, Ordering::Relaxed);
    // One segment per answer: with Nagle, headers and body in two writes meet the client's
    // delayed ACK and cost tens of milliseconds (spec §8).
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let service = {
        let (state, activity) = (state.clone(), activity.clone());
        service_fn(move |request| handle(request, state.clone(), activity.clone()))
    };
    let conn = Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut idle_close = state.idle_close;
    loop {
        let wake = idle_close.map(|idle| activity.last() + idle);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(target: "wharf::fallback", peer = %peer, error = %e, "connection ended");
                }
                break;
            }
            () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                let Some(idle) = idle_close else { continue };
                if activity.is_idle_for(idle) {
                    // Closes now if no request is being read, else after its answer.
                    state.counters.idle_closes.fetch_add(1, Ordering::Relaxed);
                    conn.as_mut().graceful_shutdown();
                    idle_close = None;
                }
            }
            () = stopped(&mut stop) => break,
        }
    }
    state.counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// One request: read it, answer it (from the cache when the files it looked at are unchanged).
async fn handle(
    request: http::Request<Incoming>,
    state: Arc<State>,
    activity: Arc<Activity>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    activity.in_flight.fetch_add(1, Ordering::Relaxed);
    let reply = reply(request, &state).await;
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    if reply.status == StatusCode::MOVED_PERMANENTLY {
        state.counters.redirects.fetch_add(1, Ordering::Relaxed);
    }
    activity.done();
    Ok(reply.into_response())
}

async fn reply(request: http::Request<Incoming>, state: &State) -> Reply {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return Reply::text(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            );
        }
    };
    let request = match Request::from_http(&parts.method, &parts.uri, &parts.headers, &body) {
        Ok(request) => request,
        Err(e) => {
            tracing::debug!(target: "wharf::fallback", method = %parts.method, uri = %parts.uri, error = %e, "unexpected request");
            return Reply::text(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    if let Some(entry) = state.cache.get(&request) {
        state.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
        return entry.reply.clone();
    }
    let (answer, deps) = respond(state, &request);
    let reply = Reply::from_answer(&answer);
    tracing::debug!(target: "wharf::fallback", specifier = request.specifier(), status = reply.status.as_u16(), "resolved");
    state.cache.put(request, reply.clone(), deps);
    reply
}

/// Returns once the server is told to stop, or is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, inside.
    let _ = stop.wait_for(|stop| *stop).await;
}

// === impl Reply ===

impl Reply {
    fn from_answer(answer: &Answer) -> Reply {
        match answer.to_http() {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                Reply { status: parts.status, headers: parts.headers, body }
            }
            Err(e) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }

    fn text(status: StatusCode, text: &str) -> Reply {
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
        Reply { status, headers, body: Bytes::copy_from_slice(text.as_bytes()) }
    }

    fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut response = http::Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

// === impl Activity ===

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn done(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn is_idle_for(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.last().elapsed() >= idle
    }
}
