//! The host side of egress: the listener sidecars tunnel every intercepted connection to.
//!
//! It binds the bridge gateway address, where sidecars reach the host (`host.docker.internal`),
//! and falls back to 127.0.0.1 where that cannot be bound. Every request must carry a sidecar's
//! token (W6); the token names the container, whose policy decides (`wharf_policy::decide`):
//! a handler, pass-through from the host, or a refusal. Sidecars also post their DNS answers
//! here. Every connection and DNS answer becomes an event and a line of the egress log.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use wharf_policy::{Connection, Decision, Protocol, Table};

use crate::Error;
use crate::events::{Event, EventBus, EventKind};
use crate::params::ContainerId;

mod deny;
mod handler;
pub mod target;
mod tunnel;
pub mod why;

pub use deny::DenyList;
pub use target::Target;

/// How many egress and DNS events the log keeps, for all containers together.
const LOG_CAPACITY: usize = 10_000;

/// A container's egress policy, shared by its actor (which changes it) and the listener (which
/// reads it for every connection and every request, so a replaced mapping applies to tunnels
/// already open).
#[derive(Debug, Default)]
pub struct Policy {
    /// The ordered mappings.
    pub table: Table<Target>,
    /// Whether unmatched traffic may pass through.
    pub internet: bool,
}

impl Policy {
    /// The sidecar's whole config for this policy (`PUT /egress`): the engine's egress listener
    /// port, the DNS allow-list derived from the mappings, and the internet flag.
    pub fn update(&self, egress_port: u16) -> wharf_wire::control::EgressUpdate {
        use wharf_wire::control::{DnsUpdate, EgressUpdate, InternetUpdate};
        EgressUpdate {
            port: Some(u32::from(egress_port)),
            dns: Some(DnsUpdate { allow_hostnames: self.table.dns_allow_list() }),
            internet: Some(InternetUpdate { enabled: self.internet }),
        }
    }
}

/// A shared [`Policy`].
pub type SharedPolicy = Arc<RwLock<Policy>>;

/// What the policy says for one connection, with everything owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A handler takes it.
    Handler { target: Target, protocol: Protocol, rule: String },
    /// It goes to its destination.
    PassThrough,
    /// It is refused.
    Refuse,
}

/// One sidecar's registration: the container it serves and its policy.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) container: ContainerId,
    pub(crate) policy: SharedPolicy,
}

/// What the listener's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    pub(crate) deny: DenyList,
    pub(crate) events: Arc<EventBus>,
    log: Mutex<VecDeque<Event>>,
    pub(crate) client: Client<HttpConnector, hyper::body::Incoming>,
    /// The listener's own address, never a pass-through destination.
    pub(crate) addr: SocketAddr,
}

/// The bound listener; its accept loop stops when this is dropped.
#[derive(Debug)]
pub(crate) struct EgressListener {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

// === impl Policy ===

impl Policy {
    /// The verdict for `conn`.
    pub(crate) fn verdict(&self, conn: &Connection<'_>) -> Verdict {
        match wharf_policy::decide(&self.table, conn, self.internet) {
            Decision::Handle { mapping, .. } => Verdict::Handler {
                target: mapping.target.clone(),
                protocol: mapping.protocol,
                rule: rule_text(mapping),
            },
            Decision::PassThrough => Verdict::PassThrough,
            Decision::Refuse => Verdict::Refuse,
        }
    }
}

/// `https example.com:443` — how a mapping is named in the egress log.
pub(crate) fn rule_text(mapping: &wharf_policy::Mapping<Target>) -> String {
    let host_port = wharf_policy::HostPort { dest: mapping.dest.clone(), port: mapping.port };
    format!("{} {host_port}", mapping.protocol.as_str())
}

// === impl Shared ===

impl Shared {
    /// Registers a sidecar's token.
    pub(crate) fn register(&self, token: &str, route: Route) {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).insert(token.to_owned(), route);
    }

    /// Forgets a sidecar's token.
    pub(crate) fn unregister(&self, token: &str) {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner).remove(token);
    }

    pub(crate) fn route(&self, token: Option<&str>) -> Option<Route> {
        let token = token?;
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        // Compare in constant time: the token is a secret.
        routes
            .iter()
            .find(|(t, _)| wharf_wire::connect::token_matches(t, Some(token)))
            .map(|(_, r)| r.clone())
    }

    /// Publishes an egress or DNS event and keeps it in the log.
    pub(crate) fn record(&self, container: &ContainerId, kind: EventKind) {
        let event = self.events.emit_returning(Some(container), kind);
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(event);
    }

    /// The logged events of `container`, oldest first.
    pub(crate) fn log_of(&self, container: &ContainerId) -> Vec<Event> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().filter(|e| e.container.as_ref() == Some(container)).cloned().collect()
    }
}

// === impl EgressListener ===

impl EgressListener {
    /// Binds `gateway:0`, or `127.0.0.1:0` when there is no gateway or it cannot be bound.
    pub(crate) async fn bind(
        gateway: Option<IpAddr>,
        deny: DenyList,
        events: Arc<EventBus>,
    ) -> Result<EgressListener, Error> {
        let listener = match gateway {
            Some(ip) => match TcpListener::bind((ip, 0)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(%ip, error = %e, "cannot bind the egress listener on the bridge gateway; using 127.0.0.1");
                    loopback().await?
                }
            },
            None => loopback().await?,
        };
        let addr = listener.local_addr().map_err(state)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            deny,
            events,
            log: Mutex::new(VecDeque::new()),
            client,
            addr,
        });
        let task = tokio::spawn(tunnel::accept_loop(listener, Arc::clone(&shared)));
        Ok(EgressListener { shared, task })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// What its tasks share.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for EgressListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn loopback() -> Result<TcpListener, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(state)
}

fn state(e: std::io::Error) -> Error {
    Error::State { path: "egress listener".to_owned(), message: e.to_string() }
}

#[cfg(test)]
mod tests;
