//! The DNS server the app's port-53 traffic is redirected to (engine spec §3.3, "DNS").
//!
//! The allow-list is the egress state's `dns.allowHostnames`, matched with wharf-policy's
//! [`allow_list_matches`](wharf_policy::allow_list_matches): the engine's glob dialect, where
//! only `*` is special (W33), and `*` alone allows every name. The first question decides.
//!
//! | internet | name allowed | upstream says | the app gets | [`DnsDecision`] |
//! |---|---|---|---|---|
//! | on | either | an answer other than NXDOMAIN | the upstream's answer, unchanged | `forwarded` |
//! | on | yes | NXDOMAIN | the synthetic answer | `synthetic` |
//! | on | no | NXDOMAIN | the upstream's NXDOMAIN | `forwarded` |
//! | on | either | nothing within the timeout, or garbage | SERVFAIL | `failed` |
//! | off | yes | (not asked) | the synthetic answer | `synthetic` |
//! | off | no | (not asked) | NXDOMAIN, authoritative | `nxdomain` |
//!
//! The synthetic answer is authoritative with TTL 60: `A 11.0.0.1` for A, `AAAA fd00::1` for
//! AAAA, both for ANY, and no records (NOERROR) for other types. Upstream is `--dns-upstream`,
//! else the first `nameserver` in /etc/resolv.conf; queries go there from a marked socket
//! ([`OwnMark`]) so interception lets them out, over UDP or TCP as the app asked.
//!
//! The server listens on UDP and TCP on loopback. Under REDIRECT, conntrack rewrites each reply's
//! source back to the address the app asked, so plain loopback sockets answer correctly. Every
//! answered question becomes a [`DnsEvent`] for the engine's egress log ([`log`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tracing::Instrument as _;
#[cfg(doc)]
use wharf_wire::control::{DnsDecision, DnsEvent};

use crate::accept::{AcceptBackoff, Shutdown};
use crate::config::{ControlToken, DnsUpstream};
use crate::egress_state::Egress;
use crate::gateway::EgressGateway;
use crate::listen::DnsListeners;
use crate::marked::OwnMark;

pub mod log;
mod resolver;

use resolver::Resolver;
pub use resolver::Transport;

/// How many UDP queries may be in flight at once; more are dropped (the app retries).
pub const MAX_IN_FLIGHT: usize = 512;
/// How long a DNS-over-TCP connection may sit idle between queries.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the DNS server needs besides its sockets.
#[derive(Debug, Clone)]
pub struct DnsParams {
    /// The egress state: internet flag and allow-list in force.
    pub egress: Egress,
    /// Where to forward while the internet is on; `None` answers SERVFAIL instead.
    pub upstream: Option<DnsUpstream>,
    /// How long forwarding may take before the app gets SERVFAIL.
    pub forward_timeout: Duration,
    /// The mark on forwarded queries and on the DNS log's connections.
    pub mark: OwnMark,
    /// Where the engine's egress listener is, for the DNS log.
    pub gateway: EgressGateway,
    /// The token for the engine (`--control-token`).
    pub token: Option<ControlToken>,
}

/// The DNS sockets, bound but not yet serving.
#[derive(Debug)]
pub struct DnsServer {
    listeners: DnsListeners,
    params: DnsParams,
}

// === impl DnsServer ===

impl DnsServer {
    /// The DNS server over `listeners`.
    pub fn new(listeners: DnsListeners, params: DnsParams) -> DnsServer {
        DnsServer { listeners, params }
    }

    /// The port the sockets are bound on.
    pub fn port(&self) -> u16 {
        self.listeners.port()
    }

    /// The UDP sockets' addresses.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.udp_addrs()
    }

    /// Answers queries until `shutdown`.
    pub(crate) async fn serve(self, shutdown: Shutdown) {
        let dns_log = log::DnsLog::spawn(log::DnsLogParams {
            gateway: self.params.gateway,
            egress: self.params.egress.clone(),
            token: self.params.token.clone(),
            mark: self.params.mark,
        });
        let resolver = Arc::new(Resolver::new(&self.params, dns_log));
        let mut tasks = Vec::new();
        for socket in self.listeners.udp {
            let (resolver, shutdown) = (Arc::clone(&resolver), shutdown.clone());
            tasks.push(tokio::spawn(udp_loop(Arc::new(socket), resolver, shutdown)));
        }
        for listener in self.listeners.tcp {
            let (resolver, shutdown) = (Arc::clone(&resolver), shutdown.clone());
            tasks.push(tokio::spawn(tcp_loop(listener, resolver, shutdown)));
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

async fn udp_loop(socket: Arc<UdpSocket>, resolver: Arc<Resolver>, shutdown: Shutdown) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let stop = shutdown.signalled();
    tokio::pin!(stop);
    let mut buf = vec![0u8; 65535];
    loop {
        let received = tokio::select! {
            () = &mut stop => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, peer) = match received {
            Ok(received) => received,
            // E.g. ECONNREFUSED left behind by an ICMP error for an earlier reply.
            Err(e) => {
                tracing::debug!(error = %e, "dns receive failed");
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            tracing::debug!(client.addr = %peer, "too many dns queries in flight; dropped one");
            continue;
        };
        let query = buf[..len].to_vec();
        let (socket, resolver) = (Arc::clone(&socket), Arc::clone(&resolver));
        let span = tracing::debug_span!("dns", client.addr = %peer);
        tokio::spawn(
            async move {
                if let Some(reply) = resolver.answer(&query, Transport::Udp).await
                    && let Err(e) = socket.send_to(&reply, peer).await
                {
                    tracing::debug!(error = %e, "sending the dns reply failed");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

async fn tcp_loop(listener: TcpListener, resolver: Arc<Resolver>, shutdown: Shutdown) {
    let mut backoff = AcceptBackoff::new("dns");
    let stop = shutdown.signalled();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                let resolver = Arc::clone(&resolver);
                let span = tracing::debug_span!("dns", client.addr = %peer, transport = "tcp");
                tokio::spawn(
                    async move {
                        if let Err(e) = serve_tcp(stream, &resolver).await {
                            tracing::debug!(error = %e, "dns over tcp ended");
                        }
                    }
                    .instrument(span),
                );
            }
            Err(e) => backoff.wait(&e).await,
        }
    }
}

/// Answers length-prefixed queries (RFC 1035 §4.2.2) until the client stops or idles.
async fn serve_tcp(mut stream: TcpStream, resolver: &Resolver) -> io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut query = vec![0u8; len];
        stream.read_exact(&mut query).await?;
        let Some(reply) = resolver.answer(&query, Transport::Tcp).await else { return Ok(()) };
        let Ok(reply_len) = u16::try_from(reply.len()) else { return Ok(()) };
        let mut framed = reply_len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        stream.write_all(&framed).await?;
    }
}
