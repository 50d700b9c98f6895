//! Ingress `CONNECT` tunnels, and the control token on every kind of request.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wharf_wire::connect::IngressConnect;

use crate::{Sidecar, closed_port, echo_server};

/// Opens a tunnel to `dst`, sending `early` in the same write as the head, and checks that the
/// 200 comes back followed by the echo of `early`.
async fn open_tunnel(sidecar: &Sidecar, head: &[u8], early: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(sidecar.addr).await.unwrap();
    stream.write_all(&[head, early].concat()).await.unwrap();
    let expected = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), early].concat();
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
    stream
}

#[tokio::test]
async fn connect_pumps_both_ways_with_half_close() {
    let sidecar = Sidecar::start(&[]).await;
    let dst = echo_server().await;
    let head = IngressConnect { dst, token: None }.encode();
    // Bytes sent right behind the head, before the 200 is read, go to the app first.
    let mut stream = open_tunnel(&sidecar, &head, b"early bytes;").await;

    stream.write_all(b"later").await.unwrap();
    let mut got = [0u8; 5];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"later");

    // Half-close: our FIN reaches the app, which echoes the rest and closes its side.
    stream.write_all(b" and last").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b" and last");
}

#[tokio::test]
async fn connect_target_is_ignored_in_favour_of_x_dst_addr() {
    let sidecar = Sidecar::start(&[]).await;
    let dst = echo_server().await;
    let head = format!("CONNECT whatever:1 HTTP/1.1\r\nX-Dst-Addr: {dst}\r\n\r\n");
    let mut stream = open_tunnel(&sidecar, head.as_bytes(), b"").await;
    stream.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
}

#[tokio::test]
async fn connect_to_a_closed_port_is_400_with_the_error() {
    let sidecar = Sidecar::start(&[]).await;
    let dst = closed_port().await;
    let response = sidecar.send(&IngressConnect { dst, token: None }.encode()).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().starts_with(&format!("dial {dst}: ")), "{}", response.text());
    assert!(response.text().contains("refused"), "{}", response.text());
}

#[tokio::test]
async fn connect_without_a_usable_x_dst_addr_is_400() {
    let sidecar = Sidecar::start(&[]).await;
    for (head, message) in [
        ("CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n", "missing X-Dst-Addr header"),
        ("CONNECT x HTTP/1.1\r\nX-Dst-Addr: localhost:80\r\n\r\n", "X-Dst-Addr must be"),
        ("CONNECT x HTTP/1.1\r\nX-Dst-Addr: 127.0.0.1\r\n\r\n", "X-Dst-Addr must be"),
        ("CONNECT x HTTP/1.1\r\nX-Dst-Addr: 127.0.0.1:99999\r\n\r\n", "X-Dst-Addr must be"),
    ] {
        let response = sidecar.send(head.as_bytes()).await;
        assert_eq!(response.status(), 400, "{head}");
        assert!(response.text().starts_with(message), "{head}: {}", response.text());
    }
}

#[tokio::test]
async fn malformed_heads_are_400() {
    let sidecar = Sidecar::start(&[]).await;
    let response = sidecar.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").await;
    assert_eq!(response.status(), 400);
    assert!(response.text().starts_with("malformed http head"), "{}", response.text());
    let mut huge = b"GET /egress HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.resize(70 * 1024, b'a');
    let response = sidecar.send(&huge).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.text(), "http head exceeds 65536 bytes");
}

#[tokio::test]
async fn token_mode_refuses_missing_and_wrong_tokens() {
    let sidecar = Sidecar::start(&["--control-token", "s3cret"]).await;
    let dst = echo_server().await;

    let missing = sidecar.send(&IngressConnect { dst, token: None }.encode()).await;
    assert_eq!(missing.status(), 407);
    assert_eq!(missing.head.header("proxy-authenticate"), Some("Bearer"));
    let wrong = sidecar.send(&IngressConnect { dst, token: Some("s3cre") }.encode()).await;
    assert_eq!(wrong.status(), 407);

    for (method, path, body) in [
        ("PUT", "/egress", r#"{"port": 5}"#),
        ("GET", "/egress", ""),
        ("GET", "/ca", ""),
        ("GET", "/nope", ""),
    ] {
        let missing = sidecar.request(method, path, &[], body).await;
        assert_eq!(missing.status(), 401, "{method} {path}");
        assert_eq!(missing.head.header("www-authenticate"), Some("Bearer"));
        let wrong = sidecar.request(method, path, &["Authorization: Bearer s3cret2"], body).await;
        assert_eq!(wrong.status(), 401, "{method} {path}");
    }
    // Nothing got through.
    let state = sidecar.request("GET", "/egress", &["Authorization: Bearer s3cret"], "").await;
    assert!(state.text().contains(r#""port":49121"#), "{}", state.text());
}

#[tokio::test]
async fn token_mode_serves_the_right_token() {
    let sidecar = Sidecar::start(&["--control-token", "s3cret"]).await;
    let dst = echo_server().await;
    let head = IngressConnect { dst, token: Some("s3cret") }.encode();
    drop(open_tunnel(&sidecar, &head, b"hi").await);

    let auth = ["Authorization: Bearer s3cret"];
    assert_eq!(sidecar.request("PUT", "/egress", &auth, r#"{"port": 5}"#).await.status(), 204);
    assert_eq!(sidecar.request("GET", "/egress", &auth, "").await.status(), 200);
    // Proxy-Authorization is accepted on plain requests too.
    let proxy_auth = ["Proxy-Authorization: Bearer s3cret"];
    assert_eq!(sidecar.request("GET", "/ca", &proxy_auth, "").await.status(), 200);
    assert_eq!(sidecar.request("GET", "/nope", &proxy_auth, "").await.status(), 404);
}

#[tokio::test]
async fn no_token_mode_asks_for_none() {
    let sidecar = Sidecar::start(&[]).await;
    assert_eq!(sidecar.request("PUT", "/egress", &[], r#"{"port": 5}"#).await.status(), 204);
    assert_eq!(sidecar.request("GET", "/ca", &[], "").await.status(), 200);
    // A token the sidecar does not ask for is ignored.
    let stray = ["Authorization: Bearer whatever"];
    assert_eq!(sidecar.request("GET", "/egress", &stray, "").await.status(), 200);
}
