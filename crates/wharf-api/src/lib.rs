//! wharf's public HTTP API, v1: the contract in `http-api.md`, served over a unix socket or TCP.
//!
//! # Brief overview
//!
//! * [`router`] builds the axum router over an [`AppState`] holding the
//!   [`wharf_engine::Engine`] and, for non-loopback TCP, a bearer token.
//! * [`dto`] holds the JSON shapes; [`validate`] turns request bodies into the engine's
//!   validated parameters; [`ApiError`] is the one place errors become responses.
//! * `routes/` has one file per area: containers, ports (raw TCP upgrade), the HTTP proxy,
//!   logs, and the system endpoints (health, events, metrics).
//!
//! ```
//! use wharf_api::ApiError;
//! let err = ApiError::bad_request("invalid_id", "container id must be …");
//! assert_eq!(err.status().as_u16(), 400);
//! ```
#![warn(missing_docs)]

use axum::Router;
use axum::routing::{any, get, post, put};
use wharf_engine::Engine;

pub mod dto;
mod error;
mod extract;
pub mod routes;
pub mod validate;

pub use error::{ApiError, ErrorBody, ErrorDetail};

/// Serves the API on `listener` (a `tokio::net::TcpListener` or `UnixListener`) until
/// `shutdown` resolves, then lets open requests finish. Upgrades (ports, proxied WebSockets)
/// are supported.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Keep-alive connections to apps for the HTTP proxy.
    pub tunnels: std::sync::Arc<routes::tunnels::Tunnels>,
}

impl AppState {
    /// State for `engine`, with an optional bearer token.
    pub fn new(engine: Engine, token: Option<String>) -> AppState {
        AppState { engine, token, tunnels: std::sync::Arc::default() }
    }
}

/// The v1 router.
pub fn router(state: AppState) -> Router {
    use routes::{containers as c, egress, logs, ports, proxy, system};
    let containers = Router::new()
        .route("/", get(c::list))
        .route("/{id}", get(c::status))
        .route("/{id}/start", post(c::start))
        .route("/{id}/wait", post(c::wait))
        .route("/{id}/destroy", post(c::destroy))
        .route("/{id}/signal", post(c::signal))
        .route("/{id}/labels", put(c::labels))
        .route("/{id}/inactivity-timeout", put(c::inactivity_timeout))
        .route("/{id}/egress", post(egress::set).get(egress::list))
        .route("/{id}/egress/why", get(egress::why))
        .route("/{id}/egress/log", get(egress::log))
        .route("/{id}/exec", post(c::exec))
        .route("/{id}/snapshots/directory", post(c::snapshot_directory))
        .route("/{id}/snapshots/container", post(c::snapshot_container))
        .route("/{id}/logs", get(logs::logs))
        .route("/{id}/ports/{port}", get(ports::upgrade))
        .route("/{id}/http/{port}", any(proxy::root))
        .route("/{id}/http/{port}/", any(proxy::root))
        .route("/{id}/http/{port}/{*path}", any(proxy::path));
    Router::new()
        .route("/v1/health", get(system::health))
        .route("/v1/events", get(system::events))
        .route("/metrics", get(system::metrics))
        .nest("/v1/containers", containers)
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), extract::authorize))
        .with_state(state)
}
