//! The sidecar's own outbound sockets, marked (`SO_MARK`) so interception lets them through.
//!
//! Tunnels to the engine, DNS forwarding and the DNS log all leave the network namespace the app
//! shares. Interception catches every outbound TCP connection and UDP/53 packet *except* those
//! carrying [`OwnMark`]; without the mark the sidecar's DNS forwarding would come straight back
//! to its own DNS listener. Setting a mark needs `CAP_NET_ADMIN`, which the sidecar has.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::SockRef;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// The mark on the sidecar's own sockets; `0` means "set none" (unprivileged tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnMark(u32);

// === impl OwnMark ===

impl OwnMark {
    /// The mark `value`, or no marking for `0`.
    pub fn new(value: u32) -> OwnMark {
        OwnMark(value)
    }

    /// The numeric mark, as interception's rules match it (`0`: none).
    pub fn value(&self) -> u32 {
        self.0
    }

    /// Checks that this process may set the mark, so that a sidecar without `CAP_NET_ADMIN`
    /// fails at start rather than on every connection.
    pub fn probe(&self) -> io::Result<()> {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        self.apply(SockRef::from(&socket))
    }

    /// Opens a marked TCP connection to `addr`.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        self.apply(SockRef::from(&socket))?;
        let stream = socket.connect(addr).await?;
        // Tunnels carry interactive traffic; don't let Nagle hold back small writes.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Opens a marked UDP socket on an ephemeral port, connected to `peer`.
    pub async fn udp(&self, peer: SocketAddr) -> io::Result<UdpSocket> {
        let any: IpAddr = if peer.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind((any, 0)).await?;
        self.apply(SockRef::from(&socket))?;
        socket.connect(peer).await?;
        Ok(socket)
    }

    fn apply(&self, socket: SockRef<'_>) -> io::Result<()> {
        if self.0 == 0 {
            return Ok(());
        }
        socket.set_mark(self.0)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn unmarked_sockets_connect() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = OwnMark::new(0).connect(listener.local_addr().unwrap()).await.unwrap();
        assert!(stream.nodelay().unwrap());
        let udp = OwnMark::new(0).udp("127.0.0.1:53".parse().unwrap()).await.unwrap();
        assert_eq!(udp.peer_addr().unwrap().port(), 53);
        OwnMark::new(0).probe().unwrap();
    }

    #[tokio::test]
    async fn a_mark_is_set_or_refused_for_want_of_privilege() {
        // Root (or CAP_NET_ADMIN) sets it; anyone else is refused, and start-up says so.
        match OwnMark::new(100).probe() {
            Ok(()) => {
                let udp = OwnMark::new(100).udp("127.0.0.1:53".parse().unwrap()).await.unwrap();
                assert_eq!(SockRef::from(&udp).mark().unwrap(), 100);
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
    }
}
