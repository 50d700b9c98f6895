//! The daemon: an [`Engine`] behind the v1 API on a unix socket or TCP, with graceful shutdown.
//!
//! `wharf serve`, `wharf demo` and the integration tests all run this same code.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wharf_api::AppState;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::sidecar::http::HttpControl;
use wharf_engine::{Engine, EngineConfig, EngineName};

use crate::artifacts::Recipes;
use crate::client::{Client, DaemonAddr};

/// How long open connections (event streams, followed logs) may take to finish at shutdown.
const SERVER_GRACE: Duration = Duration::from_secs(3);

/// Where the API listens.
#[derive(Debug, Clone)]
pub enum Listen {
    /// A unix socket at this path.
    Unix(PathBuf),
    /// A TCP address; port 0 picks one.
    Tcp(SocketAddr),
}

/// Everything a daemon needs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Engine instance name.
    pub name: EngineName,
    /// This engine's state directory.
    pub state_dir: PathBuf,
    /// Where to listen.
    pub listen: Listen,
    /// Bearer token; required for non-loopback TCP.
    pub token: Option<String>,
    /// The Docker endpoint (`None`: /var/run/docker.sock).
    pub docker_host: Option<String>,
    /// Debian's busybox-static, for the images.
    pub busybox: PathBuf,
    /// Upstream resolvers handed to sidecars.
    pub upstream_dns: Vec<IpAddr>,
    /// Remove owned containers on shutdown (off: leave them for the next start to adopt).
    pub reap_on_shutdown: bool,
    /// Kept sidecars and the warm pool.
    pub warmth: Warmth,
}

/// How warm sidecars are kept: the pool's bounds and the TTL (`wharf serve --pool-min`,
/// `--pool-max`, `--warm-ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warmth {
    /// The fewest ready sidecars the pool aims at.
    pub pool_min: usize,
    /// The most it holds; 0 turns it off.
    pub pool_max: usize,
    /// How long a kept or pooled sidecar waits to be claimed; zero keeps none.
    pub ttl: Duration,
}

impl Warmth {
    /// `wharf serve`'s defaults: a pool of 1 to 8, kept for 10 minutes.
    pub const DEFAULT: Warmth = Warmth { pool_min: 1, pool_max: 8, ttl: Duration::from_secs(600) };
    /// Every start makes its sidecar, and destroy removes it: workerd before seed 000.
    pub const OFF: Warmth = Warmth { pool_min: 0, pool_max: 0, ttl: Duration::ZERO };
    /// An id's sidecar is kept across destroy and start, with no pool: seed 000.
    pub const KEEP_ONLY: Warmth =
        Warmth { pool_min: 0, pool_max: 0, ttl: Duration::from_secs(600) };
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    engine: Engine,
    addr: DaemonAddr,
    token: Option<String>,
    stop: CancellationToken,
    server: JoinHandle<()>,
}

impl Daemon {
    /// Starts the engine (adopting what it left running) and the API server.
    pub async fn start(options: DaemonOptions) -> anyhow::Result<Daemon> {
        if let Listen::Tcp(addr) = options.listen
            && !addr.ip().is_loopback()
            && options.token.is_none()
        {
            bail!(
                "--listen {addr} is not a loopback address: add --token <secret> so that only callers with it can drive containers"
            );
        }
        let recipes = Recipes::load(&options.busybox)?;
        let docker = BollardDocker::connect(options.docker_host.as_deref()).await.context(
            "cannot reach the Docker daemon (is it running? set --docker-host or DOCKER_HOST)",
        )?;
        let mut config =
            EngineConfig::new(options.name.clone(), &options.state_dir, recipes.sidecar);
        config.upstream_dns = options.upstream_dns.clone();
        config.reap_on_shutdown = options.reap_on_shutdown;
        config.pool_min = options.warmth.pool_min;
        config.pool_max = options.warmth.pool_max;
        config.warm_ttl = options.warmth.ttl;
        let control = HttpControl::new(config.control_timeout);
        let engine = Engine::new(config, Arc::new(docker), Arc::new(control)).await?;
        let state = AppState::new(engine.clone(), options.token.clone());
        let stop = CancellationToken::new();
        let (addr, server) = match &options.listen {
            Listen::Unix(path) => {
                let listener = bind_unix(path).await?;
                let serve = wharf_api::serve(listener, state, stop.clone().cancelled_owned());
                (DaemonAddr::Unix(path.clone()), spawn_server(serve, stop.clone()))
            }
            Listen::Tcp(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                let bound = listener.local_addr()?;
                let serve = wharf_api::serve(listener, state, stop.clone().cancelled_owned());
                (DaemonAddr::Tcp(bound.to_string()), spawn_server(serve, stop.clone()))
            }
        };
        Ok(Daemon { engine, addr, token: options.token, stop, server })
    }

    /// Where the API listens.
    pub fn addr(&self) -> &DaemonAddr {
        &self.addr
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A client for this daemon.
    pub fn client(&self) -> Client {
        Client::new(self.addr.clone(), self.token.clone())
    }

    /// Stops accepting, lets open requests finish (up to a grace period), then shuts the engine
    /// down, reaping its containers when configured to.
    pub async fn stop(self) {
        self.stop.cancel();
        let mut server = self.server;
        if tokio::time::timeout(SERVER_GRACE, &mut server).await.is_err() {
            server.abort();
        }
        self.engine.shutdown().await;
        if let DaemonAddr::Unix(path) = &self.addr {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn spawn_server<F>(serve: F, stop: CancellationToken) -> JoinHandle<()>
where
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the API server failed");
            stop.cancel();
        }
    })
}

/// Binds the socket, replacing a stale file but never a live daemon's socket.
async fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            bail!(
                "another daemon already listens at {}; stop it or pick another --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    restrict(path)?;
    Ok(listener)
}

/// The socket drives containers: only its owner may use it.
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))
}
