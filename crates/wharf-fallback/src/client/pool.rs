//! The shared pool (spec §2.5 and §2.10): at most `max_connections` connections, idle ones
//! reused last-in first-out, each checked before reuse, and one retry when a reused connection
//! failed before a byte of the answer came back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use super::conn::Conn;
use super::wire::{Failed, Raw};
use super::{ClientConfig, Error, Stats};

/// How long a connection must have idled before checkout yields once to the runtime, so that a
/// FIN or RST already on the socket is read before the connection is trusted (undici's "idle
/// socket validation"). Back-to-back reuse skips the yield.
const SETTLE_AFTER: Duration = Duration::from_millis(1);

/// The pool behind every clone of a client.
#[derive(Debug)]
pub(super) struct Pool {
    pub(super) config: ClientConfig,
    /// Idle connections, most recently used last.
    idle: Mutex<Vec<Conn>>,
    /// One permit per connection that may exist: a request holds one from checkout to checkin.
    permits: Semaphore,
    counters: Counters,
}

/// What a pool has done so far; both clients' pools keep these.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) opened: AtomicU64,
    pub(super) reused: AtomicU64,
    pub(super) stale: AtomicU64,
    pub(super) retries: AtomicU64,
}

// === impl Pool ===

impl Pool {
    pub(super) fn new(config: ClientConfig) -> Pool {
        let permits = Semaphore::new(config.max_connections.max(1));
        Pool { config, idle: Mutex::new(Vec::new()), permits, counters: Counters::default() }
    }

    /// One exchange under the request timeout, on a pooled connection. Waiting for a free
    /// connection counts against the timeout too.
    pub(super) async fn exchange(&self, request: http::Request<Bytes>) -> Result<Raw, Error> {
        let after = self.config.request_timeout;
        let deadline = Instant::now() + after;
        let exchange = async {
            let Ok(_permit) = self.permits.acquire().await else { return Err(Error::Stopped) };
            self.attempts(request).await
        };
        match timeout_at(deadline, exchange).await {
            Ok(result) => result,
            // Whatever connection the request was on is dropped with the future: it is never
            // reused with an answer still on its way.
            Err(_) => Err(Error::Timeout { after }),
        }
    }

    /// Closes every idle connection now.
    pub(super) fn close_idle(&self) {
        drop(std::mem::take(&mut *self.lock_idle()));
    }

    pub(super) fn stats(&self) -> Stats {
        self.counters.stats(self.lock_idle().len())
    }

    /// The exchange, retried once on a new connection if the first went out on a reused one
    /// and nothing came back: the server closed that socket without reading the request, so it
    /// cannot have been processed (spec §2.10, retry rule 3). State is not carried over.
    async fn attempts(&self, request: http::Request<Bytes>) -> Result<Raw, Error> {
        let limit = self.config.max_answer_bytes;
        let (mut conn, reused) = self.checkout().await?;
        let failed = match conn.exchange(with_body(&request), limit).await {
            Ok(raw) => {
                self.checkin(conn);
                return Ok(raw);
            }
            Err(failed) => failed,
        };
        self.counters.retry_or_fail(failed, reused)?;
        drop(conn);
        let mut fresh = self.open().await?;
        match fresh.exchange(with_body(&request), limit).await {
            Ok(raw) => {
                self.checkin(fresh);
                Ok(raw)
            }
            Err(failed) => Err(failed.error),
        }
    }

    /// The most recently used idle connection that is still good, else a new one. The flag
    /// says whether it was reused.
    async fn checkout(&self) -> Result<(Conn, bool), Error> {
        loop {
            let Some(mut conn) = self.lock_idle().pop() else {
                return Ok((self.open().await?, false));
            };
            let idled = conn.idle_since.elapsed();
            if idled >= SETTLE_AFTER {
                tokio::task::yield_now().await;
            }
            // Expiry is checked here, at checkout, not only by a timer (spec §2.5).
            if idled >= conn.max_idle || !conn.is_reusable() || !conn.ready().await {
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.counters.reused.fetch_add(1, Ordering::Relaxed);
            return Ok((conn, true));
        }
    }

    async fn open(&self) -> Result<Conn, Error> {
        let conn = Conn::open(&self.config).await?;
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn checkin(&self, mut conn: Conn) {
        if !conn.is_reusable() {
            return;
        }
        conn.idle_since = Instant::now();
        let mut idle = self.lock_idle();
        if idle.len() < self.config.max_connections {
            idle.push(conn);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        // A panic elsewhere while holding the lock leaves a plain Vec behind: still usable.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

// === impl Counters ===

impl Counters {
    /// After a failed first attempt: its error if it may not be retried ([`Failed::may_retry`]),
    /// else `Ok`, counted and logged, for the caller to ask again on a new connection.
    pub(super) fn retry_or_fail(&self, failed: Failed, reused: bool) -> Result<(), Error> {
        if !failed.may_retry(reused) {
            return Err(failed.error);
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        let error = failed.error;
        tracing::debug!(target: "wharf::fallback", %error, "a reused connection was closed under the request; retrying on a new one");
        Ok(())
    }

    /// The counters, with `idle` connections in the pool now.
    pub(super) fn stats(&self, idle: usize) -> Stats {
        Stats {
            connections_opened: self.opened.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            stale_discarded: self.stale.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            idle,
        }
    }
}

/// The request with a body hyper can send; the bytes are shared, not copied.
fn with_body(request: &http::Request<Bytes>) -> http::Request<Full<Bytes>> {
    let mut out = http::Request::new(Full::new(request.body().clone()));
    *out.method_mut() = request.method().clone();
    *out.uri_mut() = request.uri().clone();
    *out.headers_mut() = request.headers().clone();
    out
}
