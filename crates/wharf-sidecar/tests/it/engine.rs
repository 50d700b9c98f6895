//! A fake of the engine's egress listener: hands each `CONNECT` to the test, records DNS logs.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wharf_wire::connect::EgressConnect;
use wharf_wire::control::DnsEvent;
use wharf_wire::head::{RequestHead, ResponseHead};

/// How long a test waits for the sidecar to reach the fake engine.
const WAIT: Duration = Duration::from_secs(5);

/// The fake engine; its port goes in the sidecar's `--http-egress-port`.
pub(crate) struct FakeEngine {
    pub(crate) addr: SocketAddr,
    tunnels: mpsc::UnboundedReceiver<Tunnel>,
    dns_logs: mpsc::UnboundedReceiver<DnsLogPost>,
}

/// A `CONNECT` the sidecar sent, waiting for the test to answer it.
pub(crate) struct Tunnel {
    pub(crate) head: RequestHead,
    pub(crate) connect: EgressConnect,
    stream: TcpStream,
}

/// A `POST /dns-log` the sidecar sent.
#[derive(Debug)]
pub(crate) struct DnsLogPost {
    pub(crate) head: RequestHead,
    pub(crate) events: Vec<DnsEvent>,
}

impl FakeEngine {
    pub(crate) async fn start() -> FakeEngine {
        FakeEngine::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listens on `addr` (port 0: the OS picks).
    pub(crate) async fn start_on(addr: SocketAddr) -> FakeEngine {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tunnel_tx, tunnels) = mpsc::unbounded_channel();
        let (dns_tx, dns_logs) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tunnel_tx, dns_tx) = (tunnel_tx.clone(), dns_tx.clone());
                tokio::spawn(async move { serve(stream, tunnel_tx, dns_tx).await });
            }
        });
        FakeEngine { addr, tunnels, dns_logs }
    }

    /// The `--http-egress-port` flag pointing at this engine.
    pub(crate) fn port_arg(&self) -> String {
        self.addr.port().to_string()
    }

    /// The next `CONNECT`.
    pub(crate) async fn tunnel(&mut self) -> Tunnel {
        tokio::time::timeout(WAIT, self.tunnels.recv())
            .await
            .expect("the sidecar sent no CONNECT")
            .unwrap()
    }

    /// The next `POST /dns-log`.
    pub(crate) async fn dns_log(&mut self) -> DnsLogPost {
        tokio::time::timeout(WAIT, self.dns_logs.recv())
            .await
            .expect("the sidecar posted no dns log")
            .unwrap()
    }

    /// Whether a `CONNECT` arrived that no test took.
    pub(crate) fn has_tunnel(&mut self) -> bool {
        !self.tunnels.is_empty()
    }
}

impl Tunnel {
    /// Answers with `status`, then `early` bytes in the same write; the tunnel's stream.
    pub(crate) async fn answer(mut self, status: u16, early: &[u8]) -> TcpStream {
        let mut out = ResponseHead::new(status).encode();
        out.extend_from_slice(early);
        self.stream.write_all(&out).await.unwrap();
        self.stream
    }
}

async fn serve(
    mut stream: TcpStream,
    tunnels: mpsc::UnboundedSender<Tunnel>,
    dns_logs: mpsc::UnboundedSender<DnsLogPost>,
) {
    let mut buf = Vec::new();
    let (head, used) = loop {
        if let Some(parsed) = RequestHead::parse(&buf).unwrap() {
            break parsed;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0, "the sidecar closed before a whole head");
        buf.extend_from_slice(&chunk[..n]);
    };
    if head.method() == "CONNECT" {
        assert_eq!(used, buf.len(), "the sidecar sent bytes before the answer");
        let connect = EgressConnect::from_head(&head).unwrap();
        let _ = tunnels.send(Tunnel { head, connect, stream });
        return;
    }
    assert_eq!((head.method(), head.target()), ("POST", "/dns-log"));
    let len = head.content_length().unwrap() as usize;
    let mut body = buf[used..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0);
        body.extend_from_slice(&chunk[..n]);
    }
    let events = serde_json::from_slice(&body).unwrap();
    stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await.unwrap();
    let _ = dns_logs.send(DnsLogPost { head, events });
}
