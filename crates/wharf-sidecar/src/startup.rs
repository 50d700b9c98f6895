//! The startup sequence, in proxy-everything's order, failing closed at every step.
//!
//! 1. Resolve the egress gateway (flag, else `/etc/hosts`).
//! 2. With `--tls-intercept`, generate the CA and write it to `<ca-dir>`.
//! 3. Bind the control listener.
//! 4. Check that the sidecar may mark its own sockets (`--own-mark`), then bind the egress
//!    listeners and, with `--dns-enabled`, the DNS listeners; pick the DNS upstream.
//! 5. Set up interception with the listeners' addresses, the DNS port, the mark, the families
//!    and the initial internet flag. Only its success yields the [`Intercepting`] proof that
//!    [`ControlServer::serve`] requires, so nothing is accepted before it.
//!
//! Any error ends the start, and `main` exits non-zero: the sidecar never runs unenforced.
//!
//! The internet starts **on** unless `--internet-initially false`: proxy-everything's default,
//! kept for compatibility. The engine always sends a full `PUT /egress`, internet flag included,
//! before it starts the app, so the app never runs under the default.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::accept::shutdown_channel;
use crate::ca::{CaError, InterceptionCa};
use crate::config::{Config, DnsUpstream};
use crate::control::{BindError, ControlParams, ControlServer};
use crate::dns::{DnsParams, DnsServer};
use crate::egress::{EgressParams, EgressServer};
use crate::egress_state::{Egress, EgressState};
use crate::gateway::{self, EgressGateway, GatewayError};
use crate::intercept::{
    DnsInterception, InterceptError, InterceptParams, Intercepting, Interception, IpFamilies,
    setup_interception,
};
use crate::listen::{DnsListeners, EgressListeners, ListenError};
use crate::marked::OwnMark;
use crate::orig_dst::OrigDstSource;
use crate::resolv;
use crate::tls::{TlsError, TlsTerminator};

/// What the start sequence takes from its environment, so tests can substitute it.
#[derive(Debug, Clone)]
pub struct StartEnv<'a> {
    /// The hosts file to find `host.docker.internal` in.
    pub hosts_path: &'a Path,
    /// The resolver configuration to find the DNS upstream in, without `--dns-upstream`.
    pub resolv_conf_path: &'a Path,
    /// The interception to set up.
    pub interception: Arc<dyn Interception>,
    /// Where intercepted connections' original destinations come from.
    pub orig_dst: Arc<dyn OrigDstSource>,
    /// The time the CA's validity is centred on.
    pub now: SystemTime,
}

/// A started sidecar: interception in force, every listener bound, not yet serving.
#[derive(Debug)]
pub struct Sidecar {
    gateway: EgressGateway,
    ca: Option<Arc<InterceptionCa>>,
    egress: Egress,
    control: ControlServer,
    egress_server: EgressServer,
    dns: Option<DnsServer>,
    intercepting: Intercepting,
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No egress gateway address.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The interception CA could not be made or written.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The TLS server could not be built around the CA.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The control listener could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// An egress or DNS listener could not be bound.
    #[error("{0}; without IPv6 in the container, pass --disable-ipv6")]
    Listen(#[from] ListenError),
    /// The sidecar may not mark its sockets, so interception would catch its own traffic.
    #[error(
        "setting SO_MARK {mark} on the sidecar's own sockets (needs CAP_NET_ADMIN; --own-mark 0 sets none)"
    )]
    Mark {
        /// The mark asked for.
        mark: u32,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The bound listener has no address (should not happen).
    #[error("reading the control listener's address")]
    LocalAddr(#[source] io::Error),
    /// Interception could not be set up.
    #[error(transparent)]
    Intercept(#[from] InterceptError),
}

/// The listeners interception delivers to.
#[derive(Debug)]
struct Traffic {
    egress: EgressListeners,
    dns: Option<DnsListeners>,
    dns_port: u16,
}

/// What every step after the CA shares.
#[derive(Debug)]
struct Common<'c> {
    config: &'c Config,
    gateway: EgressGateway,
    egress: Egress,
    mark: OwnMark,
}

/// Runs the start sequence for `config`.
pub async fn start(config: &Config, env: StartEnv<'_>) -> Result<Sidecar, StartError> {
    let gateway = gateway::resolve(config.gateway_ip, env.hosts_path)?;
    tracing::info!(%gateway, "egress gateway");
    let ca = generate_ca(config, env.now)?;
    let tls = ca.as_ref().map(|ca| TlsTerminator::new(Arc::clone(ca)).map(Arc::new)).transpose()?;

    let initial = EgressState::initial(config.http_egress_port, config.internet_initially);
    let common = Common {
        config,
        gateway,
        egress: Egress::new(initial),
        mark: OwnMark::new(config.own_mark),
    };
    let params = ControlParams {
        token: config.control_token.clone(),
        ca_dir: config.ca_dir.clone(),
        egress: common.egress.clone(),
        interception: Arc::clone(&env.interception),
    };
    let control = ControlServer::bind(config.http_ingress_address, params).await?;
    let control_addr = control.local_addr().map_err(StartError::LocalAddr)?;

    common.mark.probe().map_err(|source| StartError::Mark { mark: config.own_mark, source })?;
    let traffic = bind_traffic(config).await?;
    let dns_port = traffic.dns_port;
    let egress_server = EgressServer::new(traffic.egress, egress_params(&common, &env, tls));
    let dns = traffic
        .dns
        .map(|listeners| DnsServer::new(listeners, dns_params(&common, env.resolv_conf_path)));

    let params = InterceptParams {
        gateway,
        docker_gateway_cidr: config.docker_gateway_cidr,
        control_addr,
        families: families(config),
        dns: if config.dns_enabled { DnsInterception::On } else { DnsInterception::Off },
        tcp_listeners: egress_server.local_addrs(),
        dns_port,
        own_mark: common.mark.value(),
        internet: config.internet_initially,
    };
    let intercepting = setup_interception(env.interception.as_ref(), &params)?;
    let egress = common.egress;
    Ok(Sidecar { gateway, ca, egress, control, egress_server, dns, intercepting })
}

/// With `--tls-intercept`, a fresh CA written to `<ca-dir>`.
fn generate_ca(config: &Config, now: SystemTime) -> Result<Option<Arc<InterceptionCa>>, CaError> {
    if !config.tls_intercept {
        return Ok(None);
    }
    let ca = InterceptionCa::generate(now)?;
    ca.write_to(&config.ca_dir)?;
    tracing::info!(dir = %config.ca_dir.display(), "interception ca written");
    Ok(Some(Arc::new(ca)))
}

fn egress_params(
    common: &Common<'_>,
    env: &StartEnv<'_>,
    tls: Option<Arc<TlsTerminator>>,
) -> EgressParams {
    EgressParams {
        gateway: common.gateway,
        egress: common.egress.clone(),
        token: common.config.control_token.clone(),
        mark: common.mark,
        peek_timeout: common.config.peek_timeout(),
        tls,
        orig_dst: Arc::clone(&env.orig_dst),
    }
}

fn dns_params(common: &Common<'_>, resolv_conf: &Path) -> DnsParams {
    DnsParams {
        egress: common.egress.clone(),
        upstream: dns_upstream(common.config, resolv_conf),
        forward_timeout: common.config.dns_forward_timeout(),
        mark: common.mark,
        gateway: common.gateway,
        token: common.config.control_token.clone(),
    }
}

fn families(config: &Config) -> IpFamilies {
    if config.disable_ipv6 { IpFamilies::V4Only } else { IpFamilies::Both }
}

async fn bind_traffic(config: &Config) -> Result<Traffic, ListenError> {
    let egress = EgressListeners::bind(families(config), config.egress_listen_port)?;
    tracing::info!(addrs = ?egress.local_addrs(), "egress listeners bound");
    if !config.dns_enabled {
        return Ok(Traffic { egress, dns: None, dns_port: config.dns_listen_port });
    }
    let dns = DnsListeners::bind(families(config), config.dns_listen_port).await?;
    tracing::info!(port = dns.port(), "dns listeners bound");
    Ok(Traffic { egress, dns_port: dns.port(), dns: Some(dns) })
}

/// `--dns-upstream`, else the first nameserver in `resolv_conf`; `None` (with a warning) if
/// neither names one, and forwarded queries then get SERVFAIL.
fn dns_upstream(config: &Config, resolv_conf: &Path) -> Option<DnsUpstream> {
    if let Some(upstream) = config.dns_upstream {
        return Some(upstream);
    }
    let found = std::fs::read_to_string(resolv_conf)
        .ok()
        .and_then(|text| resolv::first_nameserver(&text))
        .map(DnsUpstream::from);
    match found {
        Some(upstream) => tracing::info!(%upstream, "dns upstream from {}", resolv_conf.display()),
        None => tracing::warn!(
            path = %resolv_conf.display(),
            "no dns upstream (--dns-upstream or a nameserver); forwarded queries will fail"
        ),
    }
    found
}

// === impl Sidecar ===

impl Sidecar {
    /// The control listener's bound address.
    pub fn control_addr(&self) -> io::Result<SocketAddr> {
        self.control.local_addr()
    }

    /// The egress listeners' addresses (intercepted TCP arrives here).
    pub fn egress_addrs(&self) -> Vec<SocketAddr> {
        self.egress_server.local_addrs()
    }

    /// The DNS listeners' UDP addresses (with `--dns-enabled`; TCP is on the same ports).
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        self.dns.as_ref().map(DnsServer::udp_addrs).unwrap_or_default()
    }

    /// The egress gateway.
    pub fn gateway(&self) -> EgressGateway {
        self.gateway
    }

    /// The interception CA, with `--tls-intercept`.
    pub fn ca(&self) -> Option<&Arc<InterceptionCa>> {
        self.ca.as_ref()
    }

    /// The shared egress state.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Serves the control port, the egress listeners and DNS until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = shutdown_channel();
        let mode = self.intercepting.mode();
        let egress = tokio::spawn(self.egress_server.serve(mode, stopped.clone()));
        let dns = self.dns.map(|dns| tokio::spawn(dns.serve(stopped.clone())));
        let control = self.control.serve(self.intercepting, stopped.signalled());
        let trigger = async move {
            shutdown.await;
            stop.fire();
        };
        tokio::join!(control, trigger);
        let _ = egress.await;
        if let Some(dns) = dns {
            let _ = dns.await;
        }
    }
}
