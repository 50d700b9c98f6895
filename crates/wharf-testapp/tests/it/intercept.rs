//! `/intercept`, `/intercept-https` and `/intercept-tcp` against upstreams on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Setup, closed_port, get, http_upstream, serve_http, tls_acceptor};

#[tokio::test]
async fn fetches_host_and_path_through_x_host() {
    let upstream = http_upstream().await;
    let setup = Setup::new("");
    let addr = setup.start().await;
    let x_host = format!("{upstream}/hello/world");
    let reply = get(addr, "/intercept", &[("x-host", &x_host)]).await;
    assert_eq!(reply.summary(), format!("200 GET {upstream} /hello/world"));
}

#[tokio::test]
async fn resolves_names_from_the_hosts_file() {
    let upstream = http_upstream().await;
    let setup = Setup::new("127.0.0.1 upstream.test\n");
    let addr = setup.start().await;
    let x_host = format!("upstream.test:{}", upstream.port());
    let reply = get(addr, "/intercept", &[("x-host", &x_host)]).await;
    assert_eq!(reply.summary(), format!("200 GET {x_host} /"));
}

#[tokio::test]
async fn failures_say_fetch_failed() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let refused = format!("127.0.0.1:{}", closed_port().await);
    for x_host in [refused.as_str(), "no-such-host.test", "bad host"] {
        let reply = get(addr, "/intercept", &[("x-host", x_host)]).await;
        assert_eq!(reply.summary(), format!("500 {x_host} fetch failed"));
    }
}

#[tokio::test]
async fn https_trusts_the_given_ca_and_sends_sni() {
    let (ca_pem, upstream, snis) = tls_upstream("upstream.test").await;
    let mut setup = Setup::new("127.0.0.1 upstream.test\n");
    let ca_file = setup.path("ca.crt");
    std::fs::write(&ca_file, ca_pem).unwrap();
    setup.config.ca_files = vec![setup.path("not-injected-yet.crt"), ca_file];
    let addr = setup.start().await;
    let x_host = format!("upstream.test:{}/secure", upstream.port());
    let reply = get(addr, "/intercept-https", &[("x-host", &x_host)]).await;
    assert_eq!(reply.summary(), format!("200 GET upstream.test:{} /secure", upstream.port()));
    assert_eq!(*snis.lock().unwrap(), ["upstream.test"]);
}

#[tokio::test]
async fn https_without_the_ca_fails() {
    let (_ca_pem, upstream, _snis) = tls_upstream("upstream.test").await;
    let setup = Setup::new("127.0.0.1 upstream.test\n");
    let addr = setup.start().await;
    let x_host = format!("upstream.test:{}", upstream.port());
    let reply = get(addr, "/intercept-https", &[("x-host", &x_host)]).await;
    assert_eq!(reply.summary(), format!("500 {x_host} fetch failed"));
}

#[tokio::test]
async fn tcp_probe_returns_the_first_chunk() {
    let upstream = tcp_upstream(b"tcp binding: 500 got: ").await;
    let setup = Setup::new("");
    let addr = setup.start().await;
    let reply = get(addr, "/intercept-tcp", &[("x-tcp-target", &upstream.to_string())]).await;
    assert_eq!(reply.summary(), "200 tcp binding: 500 got: ping\n");
}

#[tokio::test]
async fn tcp_probe_errors() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    assert_eq!(get(addr, "/intercept-tcp", &[]).await.summary(), "400 Missing x-tcp-target header");
    let refused = format!("127.0.0.1:{}", closed_port().await);
    let reply = get(addr, "/intercept-tcp", &[("x-tcp-target", &refused)]).await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.body.starts_with(&format!("TCP error: connect to {refused}: ")),
        "{}",
        reply.body
    );
    let reply = get(addr, "/intercept-tcp", &[("x-tcp-target", "127.0.0.1")]).await;
    assert_eq!(reply.summary(), r#"500 TCP error: missing port in "127.0.0.1""#);
}

#[tokio::test(start_paused = true)]
async fn tcp_probe_times_out_after_five_seconds() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Accept and never answer.
        let (_stream, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let setup = Setup::new("");
    let addr = setup.start().await;
    let reply = get(addr, "/intercept-tcp", &[("x-tcp-target", &upstream.to_string())]).await;
    assert_eq!(reply.summary(), "500 TCP error: timed out after 5s");
}

/// A TCP server that answers each connection's first chunk with `prefix` + the chunk.
async fn tcp_upstream(prefix: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0; 1024];
            let len = stream.read(&mut buf).await.unwrap();
            let mut answer = prefix.to_vec();
            answer.extend_from_slice(&buf[..len]);
            stream.write_all(&answer).await.unwrap();
        }
    });
    addr
}

/// An HTTPS server for `name` on loopback, with a certificate from a fresh CA. Returns the CA
/// in PEM, the address, and the server names clients sent.
async fn tls_upstream(name: &str) -> (String, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let (ca_pem, acceptor) = tls_acceptor(name);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let snis = Arc::new(Mutex::new(Vec::new()));
    let seen = snis.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                // A client that does not trust us aborts the handshake; that is a test case.
                if let Ok(tls) = acceptor.accept(stream).await {
                    seen.lock().unwrap().extend(tls.get_ref().1.server_name().map(str::to_owned));
                    serve_http(TokioIo::new(tls)).await;
                }
            });
        }
    });
    (ca_pem, addr, snis)
}
