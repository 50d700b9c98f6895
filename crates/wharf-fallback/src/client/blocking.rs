//! The blocking client, for callers on threads with no runtime: the same bounded pool and rules
//! as [`Client`](super::Client), over `std::net::TcpStream`s that each caller's own thread
//! writes and reads, so a call costs no hand-off to another thread.
//!
//! * **Bounded.** At most `max_connections` requests hold a connection at once (a mutex and a
//!   condition variable); others wait for one to come back, and the wait counts against the
//!   request timeout. A connection is only opened when no idle one is left, so busy plus idle
//!   never exceeds the pool.
//! * **One caller per connection.** A call checks a connection out, writes its request, reads
//!   its answer to the last byte and checks it back in, so any number of threads may call at
//!   once and each gets its own answer: no shared slot to overwrite (spec §2.8).
//! * **Stale sockets.** Idle ones are reused last-in first-out, after checking expiry (the
//!   client's idle timeout, shortened by `Keep-Alive: timeout=`) and a non-blocking peek for the
//!   server's FIN or RST; a reused one that still returns no byte is retried once on a new
//!   connection. `Connection: close` answers, bodies framed by the connection's end and failed
//!   exchanges never go back.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::pool::Counters;
use super::stream::Stream;
use super::wire::{self, Raw};
use super::{ClientConfig, Error, Follow, Followed, Stats};
use crate::protocol::{Answer, Request};

/// A client for threads with no runtime. Clones share one pool; its idle connections close when
/// the last clone is dropped.
#[derive(Debug, Clone)]
pub struct BlockingClient {
    pool: Arc<Pool>,
}

/// The pool behind every clone of a blocking client.
#[derive(Debug)]
struct Pool {
    config: ClientConfig,
    slots: Mutex<Slots>,
    /// Signalled whenever a request gives its slot back.
    freed: Condvar,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Slots {
    /// Idle connections, most recently used last.
    idle: Vec<Stream>,
    /// Requests holding a slot: at most `max_connections`.
    busy: usize,
}

/// A request's slot in the pool, given back on drop with the connection, if it is reusable.
#[derive(Debug)]
struct Permit<'p> {
    pool: &'p Pool,
    back: Option<Stream>,
}

// === impl BlockingClient ===

impl BlockingClient {
    /// A client with no connection yet; the first request opens one. It needs no runtime and
    /// starts no thread; the `Result` is kept for callers written against earlier versions,
    /// which ran a thread of their own.
    pub fn new(config: ClientConfig) -> io::Result<BlockingClient> {
        let pool = Pool {
            config,
            slots: Mutex::new(Slots::default()),
            freed: Condvar::new(),
            counters: Counters::default(),
        };
        Ok(BlockingClient { pool: Arc::new(pool) })
    }

    /// [`Client::resolve`](super::Client::resolve), on this thread: asks once, and returns a
    /// redirect as [`Answer::Redirect`].
    pub fn resolve(&self, request: &Request) -> Result<Answer, Error> {
        let bytes = wire::encode_request(&request.to_http()?);
        self.pool.exchange(&bytes)?.answer(request)
    }

    /// [`Client::resolve_following`](super::Client::resolve_following), on this thread: follows
    /// redirects by each version's rules, and fails on a loop or after `max_redirects` hops.
    pub fn resolve_following(&self, request: &Request) -> Result<Followed, Error> {
        let mut follow = Follow::new(&self.pool.config, request);
        loop {
            let answer = self.resolve(follow.current())?;
            if let Some(followed) = follow.answered(answer)? {
                return Ok(followed);
            }
        }
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> Stats {
        self.pool.counters.stats(self.pool.lock().idle.len())
    }

    /// Closes the idle connections now.
    pub fn close_idle(&self) {
        let idle = std::mem::take(&mut self.pool.lock().idle);
        drop(idle);
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.pool.config
    }
}

// === impl Pool ===

impl Pool {
    /// One exchange under the request timeout, on a pooled connection, retried once on a new
    /// connection if the first went out on a reused one and nothing came back (the server closed
    /// that socket without reading the request, so it cannot have been processed). Waiting for a
    /// slot counts against the timeout too.
    fn exchange(&self, request: &[u8]) -> Result<Raw, Error> {
        let deadline = Instant::now() + self.config.request_timeout;
        let mut permit = self.acquire(deadline)?;
        let (mut conn, reused) = self.checkout(deadline)?;
        let failed = match conn.exchange(request, deadline, &self.config) {
            Ok(raw) => {
                permit.back = Some(conn);
                return Ok(raw);
            }
            Err(failed) => failed,
        };
        self.counters.retry_or_fail(failed, reused)?;
        drop(conn);
        let mut fresh = self.open(deadline)?;
        let raw = fresh.exchange(request, deadline, &self.config).map_err(|f| f.error)?;
        permit.back = Some(fresh);
        Ok(raw)
    }

    /// Waits for a slot until `deadline`.
    fn acquire(&self, deadline: Instant) -> Result<Permit<'_>, Error> {
        let max = self.config.max_connections.max(1);
        let mut slots = self.lock();
        while slots.busy >= max {
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                return Err(Error::Timeout { after: self.config.request_timeout });
            };
            slots = self.freed.wait_timeout(slots, wait).unwrap_or_else(PoisonError::into_inner).0;
        }
        slots.busy += 1;
        Ok(Permit { pool: self, back: None })
    }

    /// The most recently used idle connection that is still good, else a new one. The flag
    /// says whether it was reused.
    fn checkout(&self, deadline: Instant) -> Result<(Stream, bool), Error> {
        loop {
            let Some(conn) = self.lock().idle.pop() else {
                return Ok((self.open(deadline)?, false));
            };
            // Expiry is checked here, at checkout (spec §2.5), then the socket itself.
            if conn.idle_since.elapsed() >= conn.max_idle || !conn.is_reusable() || !conn.is_quiet()
            {
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.counters.reused.fetch_add(1, Ordering::Relaxed);
            return Ok((conn, true));
        }
    }

    fn open(&self, deadline: Instant) -> Result<Stream, Error> {
        let conn = Stream::open(&self.config, deadline)?;
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl Permit ===

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let back = self.back.take().filter(Stream::is_reusable);
        let mut slots = self.pool.lock();
        if let Some(mut conn) = back
            && slots.idle.len() < self.pool.config.max_connections
        {
            conn.idle_since = Instant::now();
            slots.idle.push(conn);
        }
        slots.busy = slots.busy.saturating_sub(1);
        drop(slots);
        self.pool.freed.notify_one();
    }
}
