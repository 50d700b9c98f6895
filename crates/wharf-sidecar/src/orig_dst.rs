//! Where an intercepted connection was going: the kernel's answer, or a test's.
//!
//! With NAT REDIRECT the kernel rewrote the destination, and `SO_ORIGINAL_DST` reads the old one
//! back from conntrack. With TPROXY nothing was rewritten: the accepted socket's local address
//! *is* the original destination. [`KernelOrigDst`] asks the right question for the mode that
//! interception reports; [`MockOrigDst`] answers what a test told it, so the traffic path runs
//! on loopback without netfilter (STYLE habit 21).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use socket2::SockRef;
use tokio::net::TcpStream;

use crate::intercept::InterceptMode;

/// The destination an intercepted connection was originally sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrigDst(SocketAddr);

/// Finds the original destination of an accepted, intercepted connection.
pub trait OrigDstSource: Send + Sync + fmt::Debug {
    /// The original destination of `stream`, accepted while interception ran in `mode`.
    fn orig_dst(&self, stream: &TcpStream, mode: InterceptMode) -> io::Result<OrigDst>;
}

/// The kernel's answer: `SO_ORIGINAL_DST` under REDIRECT, the local address otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelOrigDst;

/// A scripted answer for tests: every connection was going to the address last set.
#[derive(Debug)]
pub struct MockOrigDst {
    dst: Mutex<SocketAddr>,
}

// === impl OrigDst ===

impl OrigDst {
    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.0
    }
}

impl From<SocketAddr> for OrigDst {
    fn from(addr: SocketAddr) -> OrigDst {
        OrigDst(addr)
    }
}

impl fmt::Display for OrigDst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// === impl KernelOrigDst ===

impl OrigDstSource for KernelOrigDst {
    fn orig_dst(&self, stream: &TcpStream, mode: InterceptMode) -> io::Result<OrigDst> {
        match mode {
            InterceptMode::Redirect => redirected_dst(stream).map(OrigDst),
            InterceptMode::Tproxy | InterceptMode::None => stream.local_addr().map(OrigDst),
        }
    }
}

/// `SO_ORIGINAL_DST` for the socket's family (`IP6T_SO_ORIGINAL_DST` for IPv6).
fn redirected_dst(stream: &TcpStream) -> io::Result<SocketAddr> {
    let sock = SockRef::from(stream);
    let raw = if stream.local_addr()?.is_ipv6() {
        sock.original_dst_v6()?
    } else {
        sock.original_dst_v4()?
    };
    raw.as_socket().ok_or_else(|| io::Error::other("SO_ORIGINAL_DST returned a non-IP address"))
}

// === impl MockOrigDst ===

impl MockOrigDst {
    /// Answers `dst` until told otherwise.
    pub fn new(dst: SocketAddr) -> MockOrigDst {
        MockOrigDst { dst: Mutex::new(dst) }
    }

    /// Answers `dst` for connections accepted from now on.
    pub fn set(&self, dst: SocketAddr) {
        *self.dst.lock().unwrap_or_else(|e| e.into_inner()) = dst;
    }
}

impl OrigDstSource for MockOrigDst {
    fn orig_dst(&self, _stream: &TcpStream, _mode: InterceptMode) -> io::Result<OrigDst> {
        Ok(OrigDst(*self.dst.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (client, accepted)
    }

    #[tokio::test]
    async fn tproxy_reads_the_local_address() {
        let (_client, accepted) = pair().await;
        let dst = KernelOrigDst.orig_dst(&accepted, InterceptMode::Tproxy).unwrap();
        assert_eq!(dst.addr(), accepted.local_addr().unwrap());
    }

    #[tokio::test]
    async fn redirect_asks_conntrack() {
        let (_client, accepted) = pair().await;
        // Without a NAT entry the kernel has no original destination to give (ENOENT), or, if
        // conntrack tracks loopback here, the unchanged one. Never anything else.
        match KernelOrigDst.orig_dst(&accepted, InterceptMode::Redirect) {
            Ok(dst) => assert_eq!(dst.addr(), accepted.local_addr().unwrap()),
            Err(e) => assert!(e.raw_os_error().is_some(), "{e}"),
        }
    }

    #[tokio::test]
    async fn the_mock_answers_what_it_was_told() {
        let (_client, accepted) = pair().await;
        let mock = MockOrigDst::new("192.0.2.1:443".parse().unwrap());
        assert_eq!(
            mock.orig_dst(&accepted, InterceptMode::Redirect).unwrap().to_string(),
            "192.0.2.1:443"
        );
        mock.set("[2001:db8::1]:22".parse().unwrap());
        assert_eq!(
            mock.orig_dst(&accepted, InterceptMode::Tproxy).unwrap().to_string(),
            "[2001:db8::1]:22"
        );
    }
}
