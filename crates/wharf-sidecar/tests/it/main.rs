//! Tier-1 tests of the sidecar: the real servers on loopback, a temp CA dir, no Docker, no root.
//!
//! One binary for the crate (ripgrep's layout). [`Sidecar`] below starts the sidecar the way
//! `main` does, with `--gateway-ip 127.0.0.1` instead of `/etc/hosts`, listeners on ports the
//! OS picks, no socket marks, and two seams filled by fakes: a [`MockOrigDst`] says where each
//! intercepted connection "was going" (so no netfilter is needed), and an [`Interception`] of
//! the test's choosing. [`engine::FakeEngine`] stands in for the engine's egress listener.

mod binary;
mod ca;
mod dns;
mod egress;
mod engine;
mod ingress;
mod kernel;
mod netfilter;
mod start_sequence;
mod tls;
mod traffic;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use clap::Parser as _;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wharf_sidecar::config::Config;
use wharf_sidecar::intercept::{Interception, NoInterception};
use wharf_sidecar::orig_dst::MockOrigDst;
use wharf_sidecar::startup::{self, StartEnv};
use wharf_wire::head::ResponseHead;

/// A running sidecar; dropping it stops the accept loops and removes the CA dir.
struct Sidecar {
    /// The control port.
    addr: SocketAddr,
    /// The egress listener on 127.0.0.1 (intercepted TCP).
    egress_addr: SocketAddr,
    /// The DNS listener on 127.0.0.1 (UDP and TCP), with `--dns-enabled`.
    dns_addr: Option<SocketAddr>,
    /// The CA certificate, with `--tls-intercept`.
    ca_pem: Option<String>,
    /// Where "intercepted" connections were going.
    orig_dst: Arc<MockOrigDst>,
    ca_dir: TempDir,
    _stop: oneshot::Sender<()>,
}

/// A response read to EOF.
#[derive(Debug)]
struct Response {
    head: ResponseHead,
    body: Vec<u8>,
}

impl Sidecar {
    /// Starts with `--tls-intercept` and no token, plus `args`.
    async fn start(args: &[&str]) -> Sidecar {
        let args: Vec<&str> =
            std::iter::once("--tls-intercept").chain(args.iter().copied()).collect();
        Sidecar::start_without_ca(&args).await
    }

    /// Starts with `args` only: no CA unless they ask for one.
    async fn start_without_ca(args: &[&str]) -> Sidecar {
        Sidecar::start_with(args, Arc::new(NoInterception)).await
    }

    /// Starts with `args` only, setting up `interception`.
    async fn start_with(args: &[&str], interception: Arc<dyn Interception>) -> Sidecar {
        let ca_dir = tempfile::tempdir().unwrap();
        let config = config(&ca_dir, args);
        // Never dialled: the fake engine only reads it from the CONNECT head.
        let orig_dst = Arc::new(MockOrigDst::new("127.0.0.1:9".parse().unwrap()));
        let env = StartEnv {
            hosts_path: Path::new("/nonexistent/hosts"),
            resolv_conf_path: Path::new("/nonexistent/resolv.conf"),
            interception,
            orig_dst: orig_dst.clone(),
            now: SystemTime::now(),
        };
        let sidecar = startup::start(&config, env).await.unwrap();
        let addr = sidecar.control_addr().unwrap();
        let egress_addr = sidecar.egress_addrs()[0];
        let dns_addr = sidecar.dns_addrs().first().copied();
        let ca_pem = sidecar.ca().map(|ca| ca.cert_pem().to_owned());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(sidecar.serve(async move {
            let _ = stopped.await;
        }));
        Sidecar { addr, egress_addr, dns_addr, ca_pem, orig_dst, ca_dir, _stop: stop }
    }

    /// Sends `raw` in one write and reads the response to EOF.
    async fn send(&self, raw: &[u8]) -> Response {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(raw).await.unwrap();
        read_response(&mut stream).await
    }

    /// Sends a request with `headers` (each `Name: value`) and `body`, with Content-Length.
    async fn request(&self, method: &str, path: &str, headers: &[&str], body: &str) -> Response {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(&request_bytes(method, path, headers, body)).await.unwrap();
        read_response(&mut stream).await
    }

    /// `PUT /egress` with `body`; the status.
    async fn put_egress(&self, body: &str) -> u16 {
        self.request("PUT", "/egress", &[], body).await.status()
    }

    /// An app connection "to" `dst`, really to the egress listener.
    async fn connect_to(&self, dst: SocketAddr) -> TcpStream {
        self.orig_dst.set(dst);
        TcpStream::connect(self.egress_addr).await.unwrap()
    }
}

fn request_bytes(method: &str, path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: sidecar\r\n");
    for header in headers {
        raw.push_str(header);
        raw.push_str("\r\n");
    }
    if !body.is_empty() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw.into_bytes()
}

/// The flags every test sidecar gets: loopback, OS-picked ports, no marks, IPv4 only.
fn config(ca_dir: &TempDir, args: &[&str]) -> Config {
    let ca_dir = ca_dir.path().to_str().unwrap();
    let base = [
        "wharf-sidecar",
        "--gateway-ip",
        "127.0.0.1",
        "--http-ingress-address",
        "127.0.0.1:0",
        "--ca-dir",
        ca_dir,
        "--egress-listen-port",
        "0",
        "--dns-listen-port",
        "0",
        "--own-mark",
        "0",
        "--disable-ipv6",
    ];
    Config::try_parse_from(base.iter().chain(args)).unwrap()
}

impl Response {
    fn status(&self) -> u16 {
        self.head.status()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

async fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let (head, used) = ResponseHead::parse(&raw)
        .unwrap()
        .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(&raw)));
    assert_eq!(head.header("connection"), Some("close"));
    let body = raw[used..].to_vec();
    assert_eq!(head.content_length(), Some(body.len() as u64), "Content-Length matches the body");
    Response { head, body }
}

/// A loopback server that echoes each connection and half-closes when the client does.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.into_split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    addr
}

/// An address with nothing listening: bound, then released.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
