//! The client: one shared, bounded keep-alive pool; every request with its own reply; every
//! body drained; stale sockets found before reuse or retried once; timeouts everywhere.
//!
//! [`Client`] is the async API: clone it freely, every clone shares one pool.
//! [`BlockingClient`] is the same for threads with no runtime (the runtime's isolate threads in
//! seed 001): a pool of `std::net::TcpStream`s with the same rules, each call doing its I/O on
//! the caller's own thread over a connection of its own, so any number of threads may call at
//! once and no answer can cross. Both decode answers, honour server hints and follow redirects
//! with the same code (`wire.rs` and `Follow`); only the I/O differs.
//!
//! What it fixes, against workerd's `FallbackServiceClient` (spec §2):
//!
//! | workerd | here |
//! |---|---|
//! | one mutex slot, one caller at a time, answers can cross | a reply channel per request |
//! | one pool per worker, sockets unwatched between requests | one pool per client; idle sockets are checked for a server's FIN before reuse (async: a task reads each idle socket; blocking: a non-blocking peek at checkout) |
//! | expiry not checked at checkout | checked at checkout, with `Keep-Alive: timeout=` honoured |
//! | any first failure retried | retried once, only on a reused socket that returned no byte |
//! | no timeouts | connect and request timeouts |
//! | graceful close: every socket leaves a `TIME_WAIT` on a client port | idle sockets are reset by default ([`OnClose`]) |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::protocol::redirect::{self, DEFAULT_BUNDLE_BASE};
use crate::protocol::{Answer, Request};

mod blocking;
mod conn;
mod error;
mod pool;
mod stream;
mod wire;

pub use blocking::BlockingClient;
pub use error::{Cause, Error};

/// What a client connects to, and its limits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The fallback service.
    pub addr: SocketAddr,
    /// The most connections open at once, busy or idle; callers beyond it wait for one.
    pub max_connections: usize,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long one answer may take, from checkout to the body's last byte, retry included.
    pub request_timeout: Duration,
    /// How long a connection may idle before it is closed instead of reused. Keep it below the
    /// server's keep-alive: undici uses 4 s against Node's 5 s.
    pub idle_timeout: Duration,
    /// The largest answer body accepted.
    pub max_answer_bytes: usize,
    /// The most redirects [`Client::resolve_following`] follows.
    pub max_redirects: usize,
    /// What V2 `Location`s are relative to.
    pub bundle_base: Url,
    /// How the client closes a connection.
    pub on_close: OnClose,
}

/// How the client closes connections, all of which have nothing in flight when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnClose {
    /// An abortive close (`SO_LINGER` 0, RST): no `TIME_WAIT` is left on a client port. The
    /// client only closes idle connections, or ones it gave up on, so nothing is lost.
    Reset,
    /// A graceful close (FIN): the client, as the active closer, keeps each port in
    /// `TIME_WAIT` for 60 s on Linux.
    Fin,
}

/// What the pool has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections opened.
    pub connections_opened: u64,
    /// Requests sent on an idle connection from the pool.
    pub reused: u64,
    /// Idle connections found closed or expired at checkout, and dropped.
    pub stale_discarded: u64,
    /// Requests retried once on a new connection.
    pub retries: u64,
    /// Connections idle in the pool now.
    pub idle: usize,
}

/// Where following redirects ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// A module or not-found; never a redirect.
    pub answer: Answer,
    /// Every specifier asked for, the first request's first.
    pub chain: Vec<String>,
}

/// Following redirects with no I/O: the loop both clients drive, asking for
/// [`Follow::current`] until [`Follow::answered`] says where it ended.
#[derive(Debug)]
struct Follow<'c> {
    config: &'c ClientConfig,
    current: Request,
    chain: Vec<String>,
}

/// An async client. Clones share one pool.
#[derive(Debug, Clone)]
pub struct Client {
    pool: Arc<pool::Pool>,
}

// === impl ClientConfig ===

impl ClientConfig {
    /// Defaults after spec §2.10: 8 connections, connect 5 s, request 30 s, idle 4 s, answers up
    /// to 32 MiB, 16 redirects, bundle base `file:///bundle/`, idle sockets reset on close.
    pub fn new(addr: SocketAddr) -> ClientConfig {
        ClientConfig {
            addr,
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(4),
            max_answer_bytes: 32 << 20,
            max_redirects: 16,
            #[allow(clippy::expect_used)] // A constant that parses; tested below.
            bundle_base: Url::parse(DEFAULT_BUNDLE_BASE).expect("the default bundle base parses"),
            on_close: OnClose::Reset,
        }
    }
}

// === impl Client ===

impl Client {
    /// A client with no connection yet; the first request opens one. Needs a Tokio runtime
    /// when it makes requests.
    pub fn new(config: ClientConfig) -> Client {
        Client { pool: Arc::new(pool::Pool::new(config)) }
    }

    /// Asks once. A redirect comes back as [`Answer::Redirect`], for the caller to follow (as
    /// workerd's registries do) or not.
    pub async fn resolve(&self, request: &Request) -> Result<Answer, Error> {
        self.pool.exchange(request.to_http()?).await?.answer(request)
    }

    /// Asks, following redirects by each version's rules (spec §1.5), and fails on a loop (a
    /// self-redirect included) or after `max_redirects` hops.
    pub async fn resolve_following(&self, request: &Request) -> Result<Followed, Error> {
        let mut follow = Follow::new(&self.pool.config, request);
        loop {
            let answer = self.resolve(follow.current()).await?;
            if let Some(followed) = follow.answered(answer)? {
                return Ok(followed);
            }
        }
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> Stats {
        self.pool.stats()
    }

    /// Closes the idle connections now, e.g. at the end of a test run. Busy ones close when
    /// their request ends and every clone is gone.
    pub fn close_idle(&self) {
        self.pool.close_idle();
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.pool.config
    }
}

// === impl Follow ===

impl<'c> Follow<'c> {
    fn new(config: &'c ClientConfig, request: &Request) -> Follow<'c> {
        let chain = vec![request.specifier().to_owned()];
        Follow { config, current: request.clone(), chain }
    }

    /// The request to ask next.
    fn current(&self) -> &Request {
        &self.current
    }

    /// Takes the answer to [`Follow::current`]: where it ended, or `None` with the next request
    /// in its place. Fails on a loop (a self-redirect included) or after `max_redirects` hops.
    fn answered(&mut self, answer: Answer) -> Result<Option<Followed>, Error> {
        let location = match answer {
            Answer::Redirect(location) => location,
            answer => return Ok(Some(Followed { answer, chain: std::mem::take(&mut self.chain) })),
        };
        let next = redirect::next_request(&self.current, &location, &self.config.bundle_base)?;
        let seen = self.chain.iter().any(|s| s == next.specifier());
        self.chain.push(next.specifier().to_owned());
        if seen {
            return Err(Error::RedirectLoop { chain: std::mem::take(&mut self.chain) });
        }
        if self.chain.len() > self.config.max_redirects + 1 {
            let chain = std::mem::take(&mut self.chain);
            return Err(Error::TooManyRedirects { limit: self.config.max_redirects, chain });
        }
        self.current = next;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_below_node_keep_alive() {
        let config = ClientConfig::new(SocketAddr::from(([127, 0, 0, 1], 1)));
        assert!(config.idle_timeout < Duration::from_secs(5));
        assert_eq!(config.bundle_base.as_str(), DEFAULT_BUNDLE_BASE);
    }
}
