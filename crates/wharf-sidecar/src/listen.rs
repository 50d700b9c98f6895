//! Binding the listeners that interception delivers to: intercepted TCP, and DNS.
//!
//! Both are bound at start, before interception is set up (its rules name their addresses), and
//! accept nothing until the sidecar serves. They sit on loopback, per family: `127.0.0.1` and,
//! unless `--disable-ipv6`, `[::1]`, all on one port each (when asked for port 0, the port the
//! first socket got is reused for the others, so interception has one port to redirect to).
//!
//! The TCP listeners carry `IP_TRANSPARENT`, which TPROXY needs to deliver connections for
//! foreign addresses and which is harmless under REDIRECT. Setting it needs `CAP_NET_ADMIN`;
//! without it (unprivileged tests) the listener is still bound, and a warning says TPROXY cannot
//! deliver to it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use crate::intercept::IpFamilies;

/// How many unaccepted connections the kernel queues per listener.
const BACKLOG: i32 = 1024;

/// The intercepted-TCP listeners, one per family.
#[derive(Debug)]
pub struct EgressListeners {
    listeners: Vec<TcpListener>,
}

/// The DNS listeners: UDP sockets and TCP listeners, one each per family, on one port.
#[derive(Debug)]
pub struct DnsListeners {
    /// The UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// The TCP listeners (DNS over TCP, for answers too big for UDP).
    pub tcp: Vec<TcpListener>,
}

/// A listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the {what} listener on {addr}")]
pub struct ListenError {
    /// Which listener (`egress`, `dns`).
    pub what: &'static str,
    /// The address asked for.
    pub addr: SocketAddr,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// The loopback addresses for `families`.
pub fn loopbacks(families: IpFamilies) -> Vec<IpAddr> {
    match families {
        IpFamilies::V4Only => vec![Ipv4Addr::LOCALHOST.into()],
        IpFamilies::Both => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
    }
}

// === impl EgressListeners ===

impl EgressListeners {
    /// Binds a transparent TCP listener on `port` of each loopback in `families`.
    pub fn bind(families: IpFamilies, port: u16) -> Result<EgressListeners, ListenError> {
        let mut listeners = Vec::new();
        let mut port = port;
        for ip in loopbacks(families) {
            let addr = SocketAddr::new(ip, port);
            let bound = bind_tcp(addr, Transparent::Yes).map_err(|source| ListenError {
                what: "egress",
                addr,
                source,
            })?;
            port = bound
                .local_addr()
                .map_err(|source| ListenError { what: "egress", addr, source })?
                .port();
            listeners.push(bound);
        }
        Ok(EgressListeners { listeners })
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// The listeners, to accept on.
    pub fn into_inner(self) -> Vec<TcpListener> {
        self.listeners
    }
}

// === impl DnsListeners ===

impl DnsListeners {
    /// Binds UDP and TCP on `port` of each loopback in `families`.
    pub async fn bind(families: IpFamilies, port: u16) -> Result<DnsListeners, ListenError> {
        let mut dns = DnsListeners { udp: Vec::new(), tcp: Vec::new() };
        let mut port = port;
        for ip in loopbacks(families) {
            let addr = SocketAddr::new(ip, port);
            let err = |source| ListenError { what: "dns", addr, source };
            let udp = UdpSocket::bind(addr).await.map_err(err)?;
            port = udp.local_addr().map_err(err)?.port();
            let addr = SocketAddr::new(ip, port);
            let err = |source| ListenError { what: "dns", addr, source };
            dns.tcp.push(bind_tcp(addr, Transparent::No).map_err(err)?);
            dns.udp.push(udp);
        }
        Ok(dns)
    }

    /// The port everything is bound on.
    pub fn port(&self) -> u16 {
        self.udp.first().and_then(|s| s.local_addr().ok()).map_or(0, |a| a.port())
    }

    /// The UDP sockets' addresses.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|s| s.local_addr().ok()).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transparent {
    Yes,
    No,
}

fn bind_tcp(addr: SocketAddr, transparent: Transparent) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    if transparent == Transparent::Yes {
        set_transparent(SockRef::from(&socket), addr);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn set_transparent(socket: SockRef<'_>, addr: SocketAddr) {
    let set = if addr.is_ipv6() {
        socket.set_ip_transparent_v6(true)
    } else {
        socket.set_ip_transparent_v4(true)
    };
    if let Err(e) = set {
        tracing::warn!(%addr, error = %e, "IP_TRANSPARENT refused; TPROXY cannot deliver to this listener");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_port_for_every_family() {
        let egress = EgressListeners::bind(IpFamilies::Both, 0).unwrap();
        let addrs = egress.local_addrs();
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs[0].ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
        assert_eq!(addrs[1].ip(), IpAddr::from(Ipv6Addr::LOCALHOST));
        assert_eq!(addrs[0].port(), addrs[1].port());

        let dns = DnsListeners::bind(IpFamilies::V4Only, 0).await.unwrap();
        assert_eq!(dns.udp_addrs().len(), 1);
        assert_eq!(dns.tcp[0].local_addr().unwrap().port(), dns.port());
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error_naming_the_listener() {
        let first = EgressListeners::bind(IpFamilies::V4Only, 0).unwrap();
        let port = first.local_addrs()[0].port();
        // SO_REUSEADDR does not let two sockets listen on one address.
        let err = EgressListeners::bind(IpFamilies::V4Only, port).unwrap_err();
        assert_eq!(err.to_string(), format!("binding the egress listener on 127.0.0.1:{port}"));
    }
}
