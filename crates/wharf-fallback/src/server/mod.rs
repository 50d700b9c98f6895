//! The reference server, in the part of vitest-pool-workers' handler (spec §3.4): it answers
//! both protocol versions on one port from the files under a root directory.
//!
//! * [`Server::bind`] listens and serves until [`Server::shutdown`].
//! * Resolution follows Node (`resolve.rs`): the file itself; relative paths with extensions
//!   and index files; directories through `package.json` `main`; bare packages through
//!   `node_modules` and `exports`. `node:`, `cloudflare:` and `workerd:` builtins are not found.
//! * A resolved path that differs from the requested one is a 301 alias; a `Location` equal to
//!   the specifier is never sent (the V1 crash, workers-sdk#14590).
//! * The module type comes from the file (`kind.rs`).
//! * Answers are cached with every path they looked at, and checked against the disk on each
//!   hit (`cache.rs`).
//! * Every response has a `Content-Length`, sockets have `TCP_NODELAY` (spec §8), and idle
//!   connections stay open unless [`ServerConfig::idle_close`] says otherwise.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::protocol::redirect::DEFAULT_BUNDLE_BASE;

mod cache;
mod http1;
mod kind;
mod paths;
mod probe;
mod resolve;
mod respond;

/// Where the server listens and what it serves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The directory whose files are the modules.
    pub root: PathBuf,
    /// The address to listen on; port 0 picks one.
    pub listen: SocketAddr,
    /// Close a connection after it has been idle this long; `None` keeps idle connections open
    /// (miniflare's `keepAliveTimeout = 0`).
    pub idle_close: Option<Duration>,
    /// What V2 specifiers are relative to.
    pub bundle_base: Url,
}

/// What the server has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Requests answered.
    pub requests: u64,
    /// Of those, answered from the cache.
    pub cache_hits: u64,
    /// Of those, 301s.
    pub redirects: u64,
    /// Connections closed for idling past `idle_close`.
    pub idle_closes: u64,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The root is not a readable directory.
    #[error("the root {path} is not a directory: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// What every connection shares.
#[derive(Debug)]
struct State {
    root: PathBuf,
    bundle_base: Url,
    idle_close: Option<Duration>,
    cache: cache::Cache,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    requests: AtomicU64,
    cache_hits: AtomicU64,
    redirects: AtomicU64,
    idle_closes: AtomicU64,
}

/// A reply, ready to send again from the cache.
#[derive(Debug, Clone)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

// === impl ServerConfig ===

impl ServerConfig {
    /// Serve `root` on `listen`, idle connections kept open, bundle base `file:///bundle/`.
    pub fn new(root: &Path, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            root: root.to_owned(),
            listen,
            idle_close: None,
            #[allow(clippy::expect_used)] // A constant that parses; tested in protocol.
            bundle_base: Url::parse(DEFAULT_BUNDLE_BASE).expect("the default bundle base parses"),
        }
    }
}

// === impl Server ===

impl Server {
    /// Listens on `config.listen` and serves in the background on the current runtime.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let root = std::fs::canonicalize(&config.root)
            .and_then(|root| {
                if root.is_dir() { Ok(root) } else { Err(io::ErrorKind::NotADirectory.into()) }
            })
            .map_err(|source| ServerError::Root { path: config.root.clone(), source })?;
        let listen = |source| ServerError::Listen { addr: config.listen, source };
        let listener = TcpListener::bind(config.listen).await.map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        let state = Arc::new(State {
            root,
            bundle_base: config.bundle_base,
            idle_close: config.idle_close,
            cache: cache::Cache::default(),
            counters: Counters::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let accepting = tokio::spawn(http1::accept(listener, state.clone(), stopped));
        Ok(Server { addr, state, stop, accepting })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has done so far.
    pub fn stats(&self) -> ServerStats {
        let c = &self.state.counters;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: load(&c.accepted),
            connections_open: load(&c.open),
            requests: load(&c.requests),
            cache_hits: load(&c.cache_hits),
            redirects: load(&c.redirects),
            idle_closes: load(&c.idle_closes),
        }
    }

    /// Stops listening and closes every connection at once, as a server that exits would;
    /// returns when all are closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accepting.await;
        // Every connection task holds a receiver: this returns when the last one is gone.
        self.stop.closed().await;
    }
}
