//! The optional servers that make a test app part of the fake internet, next to its HTTP server:
//! the TCP echo (`TCP_PORT`), the UDP echo (`UDP_PORT`), the greeter (`GREETING_PORT`) and the
//! stub DNS server (`DNS_STUB=1`). Any combination can run in one process.
//!
//! [`Roles::bind`] binds every socket first, so a port that is taken fails the start instead of
//! a background task; [`Roles::spawn`] then serves them. They listen on the HTTP server's IP
//! (`0.0.0.0` in a container, loopback in tests). A port of 0 picks a free one, which
//! [`Roles::addrs`] reports.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::config::Config;
use crate::zone::Zone;
use crate::{dns_stub, greeter, tcp_echo, udp_echo};

/// How many times to look for a port free on both UDP and TCP when the DNS port is 0.
const DNS_PORT_ATTEMPTS: usize = 16;

/// A socket that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the {role} on {addr}")]
pub struct BindError {
    /// The server that needed it, e.g. `udp echo`.
    pub role: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// The bound, not yet served, sockets of the roles the configuration turns on.
#[derive(Debug)]
pub struct Roles {
    tcp_echo: Option<TcpListener>,
    udp_echo: Option<UdpSocket>,
    greeter: Option<TcpListener>,
    dns: Option<DnsSockets>,
}

/// Where each role listens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleAddrs {
    /// The TCP echo server.
    pub tcp_echo: Option<SocketAddr>,
    /// The UDP echo server.
    pub udp_echo: Option<SocketAddr>,
    /// The greeter.
    pub greeter: Option<SocketAddr>,
    /// The DNS stub, on UDP and TCP alike.
    pub dns: Option<SocketAddr>,
}

#[derive(Debug)]
struct DnsSockets {
    udp: UdpSocket,
    tcp: TcpListener,
    zone: Arc<Zone>,
}

// === impl Roles ===

impl Roles {
    /// Binds the sockets of every role `config` turns on, on `config.listen`'s IP.
    pub async fn bind(config: &Config) -> Result<Roles, BindError> {
        let ip = config.listen.ip();
        let tcp_echo = match config.tcp_echo_port {
            Some(port) => Some(bind_tcp("tcp echo", SocketAddr::new(ip, port)).await?),
            None => None,
        };
        let udp_echo = match config.udp_echo_port {
            Some(port) => Some(bind_udp("udp echo", SocketAddr::new(ip, port)).await?),
            None => None,
        };
        let greeter = match config.greeting_port {
            Some(port) => Some(bind_tcp("greeter", SocketAddr::new(ip, port)).await?),
            None => None,
        };
        let dns = match &config.dns_stub {
            Some(stub) => {
                let (udp, tcp) = bind_dns(ip, stub.port).await?;
                Some(DnsSockets { udp, tcp, zone: Arc::new(stub.zone.clone()) })
            }
            None => None,
        };
        Ok(Roles { tcp_echo, udp_echo, greeter, dns })
    }

    /// Where each role listens.
    pub fn addrs(&self) -> RoleAddrs {
        RoleAddrs {
            tcp_echo: self.tcp_echo.as_ref().and_then(|l| l.local_addr().ok()),
            udp_echo: self.udp_echo.as_ref().and_then(|s| s.local_addr().ok()),
            greeter: self.greeter.as_ref().and_then(|l| l.local_addr().ok()),
            dns: self.dns.as_ref().and_then(|d| d.udp.local_addr().ok()),
        }
    }

    /// Serves every bound socket in its own task, and logs where.
    pub fn spawn(self) {
        let addrs = self.addrs();
        if let Some(listener) = self.tcp_echo {
            log_listening("tcp echo", addrs.tcp_echo);
            tokio::spawn(tcp_echo::serve(listener));
        }
        if let Some(socket) = self.udp_echo {
            log_listening("udp echo", addrs.udp_echo);
            tokio::spawn(udp_echo::serve(socket));
        }
        if let Some(listener) = self.greeter {
            log_listening("greeter", addrs.greeter);
            tokio::spawn(greeter::serve(listener));
        }
        if let Some(DnsSockets { udp, tcp, zone }) = self.dns {
            log_listening("dns stub (udp and tcp)", addrs.dns);
            for record in zone.records() {
                info!(name = %record.pattern, ip = %record.ip, "dns stub record");
            }
            tokio::spawn(dns_stub::serve_udp(udp, zone.clone()));
            tokio::spawn(dns_stub::serve_tcp(tcp, zone));
        }
    }
}

fn log_listening(role: &str, addr: Option<SocketAddr>) {
    match addr {
        Some(addr) => info!(%addr, "{role} listening"),
        None => info!("{role} listening"),
    }
}

async fn bind_tcp(role: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError { role, addr, source })
}

async fn bind_udp(role: &'static str, addr: SocketAddr) -> Result<UdpSocket, BindError> {
    UdpSocket::bind(addr).await.map_err(|source| BindError { role, addr, source })
}

/// Binds UDP and TCP on the same port. For port 0, the port UDP picked may be taken on TCP;
/// then it tries again with another.
async fn bind_dns(ip: IpAddr, port: u16) -> Result<(UdpSocket, TcpListener), BindError> {
    let role = "dns stub";
    let mut attempt = 1;
    loop {
        let udp = bind_udp(role, SocketAddr::new(ip, port)).await?;
        let addr = udp.local_addr().map_err(|source| BindError {
            role,
            addr: SocketAddr::new(ip, port),
            source,
        })?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(err)
                if port == 0
                    && attempt < DNS_PORT_ATTEMPTS
                    && err.kind() == io::ErrorKind::AddrInUse =>
            {
                attempt += 1;
            }
            Err(source) => return Err(BindError { role, addr, source }),
        }
    }
}
