//! The intercepted-TCP path on loopback: what the engine is told, and each answer's outcome.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wharf_wire::connect::{X_TLS, X_TLS_SNI, answer};

use crate::engine::FakeEngine;
use crate::{Sidecar, closed_port};

/// A captured ClientHello for `example.com` (openssl, ALPN h2 and http/1.1).
pub(crate) const HELLO: &[u8] =
    include_bytes!("../../../wharf-wire/testdata/client_hello_tls13.bin");

async fn sidecar_for(engine: &FakeEngine, args: &[&str]) -> Sidecar {
    let port = engine.port_arg();
    let mut all = vec!["--http-egress-port", port.as_str()];
    all.extend_from_slice(args);
    Sidecar::start(&all).await
}

async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

/// Reads to EOF; the error kind if the connection was reset instead.
async fn read_to_end(stream: &mut TcpStream) -> Result<Vec<u8>, ErrorKind> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    read.unwrap().map(|_| buf).map_err(|e| e.kind())
}

#[tokio::test]
async fn the_connect_carries_dst_src_and_token_and_202_pumps_raw() {
    let mut engine = FakeEngine::start().await;
    let sidecar = sidecar_for(&engine, &["--control-token", "t0k"]).await;
    let dst: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let mut app = sidecar.connect_to(dst).await;
    app.write_all(b"\x00\x00\x00\x08hello").await.unwrap();

    let tunnel = engine.tunnel().await;
    assert_eq!(tunnel.head.target(), "127.0.0.1:5432");
    assert_eq!(tunnel.connect.dst, dst);
    assert_eq!(tunnel.connect.src, app.local_addr().unwrap());
    assert_eq!(tunnel.connect.token.as_deref(), Some("t0k"));
    assert_eq!(tunnel.head.header("proxy-authorization"), Some("Bearer t0k"));
    assert_eq!(
        (tunnel.connect.tls_sni.as_deref(), tunnel.connect.hostname.as_deref()),
        (None, None)
    );
    assert!(!tunnel.connect.tls);
    assert_eq!(tunnel.head.header(X_TLS), None);

    let mut upstream = tunnel.answer(answer::RAW, b"early;").await;
    assert_eq!(read_n(&mut upstream, 9).await, b"\x00\x00\x00\x08hello", "peeked bytes replayed");
    assert_eq!(read_n(&mut app, 6).await, b"early;", "bytes behind the answer reach the app");
    app.write_all(b"more").await.unwrap();
    assert_eq!(read_n(&mut upstream, 4).await, b"more");

    // Half-close each way.
    app.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut upstream).await, Ok(Vec::new()));
    upstream.write_all(b"bye").await.unwrap();
    upstream.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut app).await, Ok(b"bye".to_vec()));
}

#[tokio::test]
async fn http_on_any_port_sends_the_host_w10() {
    let mut engine = FakeEngine::start().await;
    let sidecar = sidecar_for(&engine, &[]).await;
    let mut app = sidecar.connect_to("127.0.0.1:8080".parse().unwrap()).await;
    let request = b"GET /x HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t\r\n\r\n";
    app.write_all(request).await.unwrap();

    let tunnel = engine.tunnel().await;
    assert_eq!(tunnel.connect.hostname.as_deref(), Some("Example.com"));
    assert_eq!(tunnel.connect.tls_sni, None);
    assert_eq!(tunnel.connect.token, None, "no --control-token, no token");
    // 200 to a plain-text connection: the engine serves HTTP on the raw tunnel.
    let mut upstream = tunnel.answer(answer::INTERCEPT, b"").await;
    assert_eq!(read_n(&mut upstream, request.len()).await, request);
    upstream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
    assert_eq!(read_n(&mut app, 27).await, b"HTTP/1.1 204 No Content\r\n\r\n");
}

#[tokio::test]
async fn a_silent_client_is_tunnelled_after_the_peek_timeout_w11() {
    let mut engine = FakeEngine::start().await;
    let sidecar = sidecar_for(&engine, &["--peek-timeout-ms", "100"]).await;
    let started = Instant::now();
    let mut app = sidecar.connect_to("127.0.0.1:25".parse().unwrap()).await;

    let tunnel = engine.tunnel().await;
    assert!(started.elapsed() >= Duration::from_millis(100), "{:?}", started.elapsed());
    assert_eq!(
        (tunnel.connect.tls_sni.as_deref(), tunnel.connect.hostname.as_deref()),
        (None, None)
    );
    let mut upstream = tunnel.answer(answer::RAW, b"220 mail.example ESMTP\r\n").await;
    assert_eq!(read_n(&mut app, 24).await, b"220 mail.example ESMTP\r\n", "the greeting arrives");
    app.write_all(b"EHLO app\r\n").await.unwrap();
    assert_eq!(read_n(&mut upstream, 10).await, b"EHLO app\r\n");
}

#[tokio::test]
async fn tls_passes_through_untouched_on_202() {
    let mut engine = FakeEngine::start().await;
    let sidecar = sidecar_for(&engine, &[]).await;
    let mut app = sidecar.connect_to("127.0.0.1:443".parse().unwrap()).await;
    app.write_all(HELLO).await.unwrap();

    let tunnel = engine.tunnel().await;
    assert_eq!(tunnel.connect.tls_sni.as_deref(), Some("example.com"));
    assert_eq!(tunnel.head.header(X_TLS_SNI), Some("example.com"));
    assert!(tunnel.connect.tls);
    assert_eq!(tunnel.head.header(X_TLS), Some("1"));
    let mut upstream = tunnel.answer(answer::RAW, b"").await;
    assert_eq!(read_n(&mut upstream, HELLO.len()).await, HELLO, "the ClientHello, byte for byte");
}

#[tokio::test]
async fn without_tls_intercept_200_to_tls_is_raw() {
    let mut engine = FakeEngine::start().await;
    let port = engine.port_arg();
    let sidecar = Sidecar::start_without_ca(&["--http-egress-port", &port]).await;
    let mut app = sidecar.connect_to("127.0.0.1:443".parse().unwrap()).await;
    app.write_all(HELLO).await.unwrap();
    let tunnel = engine.tunnel().await;
    assert!(tunnel.connect.tls);
    let mut upstream = tunnel.answer(answer::INTERCEPT, b"").await;
    assert_eq!(read_n(&mut upstream, HELLO.len()).await, HELLO);
}

#[tokio::test]
async fn refusals_reset_the_app() {
    let mut engine = FakeEngine::start().await;
    let sidecar = sidecar_for(&engine, &[]).await;
    for status in [answer::REFUSE, answer::UNAUTHORIZED, 400, 502] {
        let mut app = sidecar.connect_to("127.0.0.1:80".parse().unwrap()).await;
        app.write_all(b"GET / HTTP/1.1\r\nHost: denied.example\r\n\r\n").await.unwrap();
        let tunnel = engine.tunnel().await;
        assert_eq!(tunnel.connect.hostname.as_deref(), Some("denied.example"));
        let _upstream = tunnel.answer(status, b"").await;
        assert_eq!(read_to_end(&mut app).await, Err(ErrorKind::ConnectionReset), "{status}");
    }
}

#[tokio::test]
async fn an_unreachable_engine_resets_the_app() {
    let closed = closed_port().await.port().to_string();
    let sidecar = Sidecar::start(&["--http-egress-port", &closed]).await;
    let mut app = sidecar.connect_to("127.0.0.1:80".parse().unwrap()).await;
    app.write_all(b"x").await.unwrap();
    assert_eq!(read_to_end(&mut app).await, Err(ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn a_put_port_moves_new_tunnels() {
    let mut old = FakeEngine::start().await;
    let mut new = FakeEngine::start().await;
    let sidecar = sidecar_for(&old, &[]).await;
    let port = new.addr.port();
    assert_eq!(sidecar.put_egress(&format!(r#"{{"port": {port}}}"#)).await, 204);
    let mut app = sidecar.connect_to("127.0.0.1:80".parse().unwrap()).await;
    app.write_all(b"x").await.unwrap();
    let _tunnel = new.tunnel().await;
    assert!(!old.has_tunnel());
}

#[tokio::test]
async fn a_direct_connection_to_the_listener_is_reset() {
    let mut engine = FakeEngine::start().await;
    let sidecar = sidecar_for(&engine, &[]).await;
    // What TPROXY mode reports for a connection that was not intercepted.
    let mut app = sidecar.connect_to(sidecar.egress_addr).await;
    assert_eq!(read_to_end(&mut app).await, Err(ErrorKind::ConnectionReset));
    assert!(!engine.has_tunnel());
}
