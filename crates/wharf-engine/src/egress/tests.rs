//! Tier-1 tests of the egress listener, driven as a sidecar drives it: token, `CONNECT` heads,
//! answer codes, then bytes; handlers and upstreams are loopback servers run by the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wharf_policy::{HostPort, Mapping, Protocol};
use wharf_wire::connect::{EgressConnect, answer};
use wharf_wire::control::{DNS_LOG_PATH, DnsDecision, DnsEvent};
use wharf_wire::head::{RequestHead, ResponseHead};

use super::Target;
use crate::events::{EgressDecision, EventKind};
use crate::io_util;
use crate::testing::{Harness, harness, harness_with, id, params};

fn mapping(protocol: Protocol, host_port: &str, target: &str) -> Mapping<Target> {
    let hp = HostPort::parse(host_port, protocol).unwrap();
    Mapping {
        protocol,
        dest: hp.dest,
        port: hp.port,
        target: Target::parse(protocol, target).unwrap(),
    }
}

async fn listener_addr(h: &Harness) -> SocketAddr {
    h.engine.health().await.egress_listener
}

/// Sends an egress CONNECT; returns the answer and the stream (with any bytes after the head).
async fn tunnel(
    h: &Harness,
    dst: &str,
    sni: Option<&str>,
    hostname: Option<&str>,
    tls: bool,
    token: Option<String>,
) -> (u16, io_util::Prefixed<TcpStream>) {
    let mut stream = TcpStream::connect(listener_addr(h).await).await.unwrap();
    let head = EgressConnect {
        dst: dst.parse().unwrap(),
        src: "172.17.0.9:40000".parse().unwrap(),
        tls_sni: sni.map(str::to_owned),
        hostname: hostname.map(str::to_owned),
        tls,
        token,
    };
    stream.write_all(&head.encode()).await.unwrap();
    let (answer, rest) = io_util::read_head(&mut stream, 65536, ResponseHead::parse).await.unwrap();
    (answer.status(), io_util::Prefixed::new(rest, stream))
}

/// An HTTP handler on loopback: answers `from <name> <path>`, records each request head, and
/// answers an `Upgrade: echo` request with 101 then echoes raw bytes.
async fn handler(name: &'static str) -> (SocketAddr, Arc<Mutex<Vec<RequestHead>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                loop {
                    let Ok((head, _)) = io_util::read_head(&mut s, 65536, RequestHead::parse).await
                    else {
                        return;
                    };
                    record.lock().unwrap().push(head.clone());
                    if head.header("upgrade") == Some("echo") {
                        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").await.unwrap();
                        let (mut r, mut w) = s.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        return;
                    }
                    let body = format!("from {name} {}", head.target());
                    let res =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if s.write_all(res.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Sends one HTTP/1.1 request on `io` and reads one response body (Content-Length framed).
async fn http_get(io: &mut io_util::Prefixed<TcpStream>, host: &str, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    io.write_all(req.as_bytes()).await.unwrap();
    let (head, rest) = io_util::read_head(io, 65536, ResponseHead::parse).await.unwrap();
    let len = head.content_length().unwrap() as usize;
    let mut body = rest.to_vec();
    while body.len() < len {
        let mut buf = [0u8; 1024];
        let n = io.read(&mut buf).await.unwrap();
        body.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(body).unwrap()
}

async fn started(tweak: impl FnOnce(&mut crate::EngineConfig)) -> (Harness, String) {
    let h = harness_with(tweak).await;
    h.engine.start(&id("c1"), params()).await.unwrap();
    let token = h.token();
    (h, token)
}

/// Waits until the log holds `n` records for c1 (records are written when tunnels close).
async fn log_records(h: &Harness, n: usize) -> Vec<crate::events::Event> {
    for _ in 0..200 {
        let log = h.engine.egress_log(&id("c1"));
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.engine.egress_log(&id("c1"))
}

#[tokio::test]
async fn a_tunnel_without_the_sidecars_token_is_refused() {
    let (h, _token) = started(|_| {}).await;
    let (status, _) = tunnel(&h, "1.2.3.4:80", None, None, false, None).await;
    assert_eq!(status, answer::UNAUTHORIZED);
    let (status, _) =
        tunnel(&h, "1.2.3.4:80", None, None, false, Some("not-the-token".to_owned())).await;
    assert_eq!(status, answer::UNAUTHORIZED);
}

#[tokio::test]
async fn unmatched_traffic_is_refused_with_the_internet_off_and_logged() {
    let (h, token) = started(|_| {}).await;
    let (status, _) =
        tunnel(&h, "203.0.113.7:80", None, Some("example.com"), false, Some(token)).await;
    assert_eq!(status, answer::REFUSE);
    let log = log_records(&h, 1).await;
    let EventKind::Egress(record) = &log[0].kind else { panic!("{log:?}") };
    assert_eq!(record.decision, EgressDecision::Refused);
    assert_eq!(record.hostname.as_deref(), Some("example.com"));
    assert!(record.reason.as_deref().unwrap().contains("internet is off"));
}

#[tokio::test]
async fn an_http_handler_gets_each_request_and_replacements_apply_to_open_tunnels() {
    let (h, token) = started(|_| {}).await;
    let (a, seen_a) = handler("a").await;
    let (b, _) = handler("b").await;
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Http, "example.com", &format!("http://{a}")))
        .await
        .unwrap();
    let (status, mut io) =
        tunnel(&h, "11.0.0.1:80", None, Some("example.com"), false, Some(token)).await;
    assert_eq!(status, answer::INTERCEPT);
    assert_eq!(http_get(&mut io, "example.com", "/x?y=1").await, "from a /x?y=1");
    {
        let seen = seen_a.lock().unwrap();
        assert_eq!(seen[0].header("host"), Some("example.com"), "Host unchanged");
        assert_eq!(seen[0].header("forwarded"), Some("proto=http;host=example.com"));
        assert_eq!(seen[0].header("x-wharf-container"), Some("c1"));
    }
    // The same (protocol, destination, port) replaces the target in place, for this tunnel too.
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Http, "example.com", &format!("http://{b}")))
        .await
        .unwrap();
    assert_eq!(http_get(&mut io, "example.com", "/again").await, "from b /again");
    let (mappings, _) = h.engine.egress(&id("c1"));
    assert_eq!(mappings.len(), 1);
}

#[tokio::test]
async fn an_upgrade_through_a_handler_is_spliced() {
    let (h, token) = started(|_| {}).await;
    let (a, _) = handler("a").await;
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Http, "11.0.0.1:9999", &format!("http://{a}")))
        .await
        .unwrap();
    let (status, mut io) =
        tunnel(&h, "11.0.0.1:9999", None, Some("11.0.0.1:9999"), false, Some(token)).await;
    assert_eq!(status, answer::INTERCEPT);
    io.write_all(
        b"GET /ws HTTP/1.1\r\nHost: 11.0.0.1:9999\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = io_util::read_head(&mut io, 65536, ResponseHead::parse).await.unwrap();
    assert_eq!(head.status(), 101);
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn a_tcp_handler_gets_raw_bytes() {
    let (h, token) = started(|_| {}).await;
    let echo = echo_server().await;
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Tcp, "11.0.0.1:7777", &echo.to_string()))
        .await
        .unwrap();
    let (status, mut io) = tunnel(&h, "11.0.0.1:7777", None, None, false, Some(token)).await;
    assert_eq!(status, answer::RAW);
    io.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    drop(io);
    let log = log_records(&h, 1).await;
    let EventKind::Egress(record) = &log[0].kind else { panic!() };
    assert_eq!(
        (record.decision, record.rule.as_deref()),
        (EgressDecision::Handler, Some("tcp 11.0.0.1:7777"))
    );
    assert_eq!((record.bytes_up, record.bytes_down), (5, 5));
}

/// See: W9. A TCP mapping is not shadowed when the app speaks TLS with an SNI nothing maps.
#[tokio::test]
async fn a_tcp_rule_wins_over_pass_through_for_tls() {
    let (h, token) = started(|_| {}).await;
    let echo = echo_server().await;
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Tcp, "1.2.3.4:443", &echo.to_string()))
        .await
        .unwrap();
    let (status, _) = tunnel(&h, "1.2.3.4:443", Some("example.com"), None, true, Some(token)).await;
    assert_eq!(status, answer::RAW);
}

#[tokio::test]
async fn pass_through_dials_the_destination_unless_it_is_denied() {
    let h = harness_with(|c| c.passthrough_deny = Vec::new()).await;
    let mut p = params();
    p.enable_internet = true;
    h.engine.start(&id("c1"), p).await.unwrap();
    let token = h.token();
    let echo = echo_server().await;
    let (status, mut io) =
        tunnel(&h, &echo.to_string(), None, None, false, Some(token.clone())).await;
    assert_eq!(status, answer::RAW);
    io.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi");
    // The Docker bridge (other containers' sidecars, the engine itself) is always refused.
    let (status, _) = tunnel(&h, "172.17.0.5:39001", None, None, false, Some(token)).await;
    assert_eq!(status, answer::REFUSE);
}

#[tokio::test]
async fn loopback_is_refused_by_default() {
    let h = harness().await;
    let mut p = params();
    p.enable_internet = true;
    h.engine.start(&id("c1"), p).await.unwrap();
    let echo = echo_server().await;
    let (status, _) = tunnel(&h, &echo.to_string(), None, None, false, Some(h.token())).await;
    assert_eq!(status, answer::REFUSE);
}

#[tokio::test]
async fn dns_answers_posted_by_the_sidecar_are_logged() {
    let (h, token) = started(|_| {}).await;
    let events = vec![DnsEvent {
        name: "example.com".to_owned(),
        qtype: 1,
        decision: DnsDecision::Synthetic,
        addresses: vec!["11.0.0.1".parse().unwrap()],
        rule: Some("example.com".to_owned()),
        duration_ms: 0,
    }];
    let body = serde_json::to_vec(&events).unwrap();
    let mut s = TcpStream::connect(listener_addr(&h).await).await.unwrap();
    let head = RequestHead::new("POST", DNS_LOG_PATH)
        .with_header("Authorization", &format!("Bearer {token}"))
        .with_header("Content-Length", &body.len().to_string());
    s.write_all(&head.encode()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let (answer, _) = io_util::read_head(&mut s, 65536, ResponseHead::parse).await.unwrap();
    assert_eq!(answer.status(), 204);
    let log = log_records(&h, 1).await;
    assert!(matches!(&log[0].kind, EventKind::Dns(e) if e.name == "example.com"));
}

#[tokio::test]
async fn mappings_set_before_start_apply_and_reach_the_sidecar_allow_list() {
    let h = harness().await;
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Https, "*.example.com", "http://127.0.0.1:9"))
        .await
        .unwrap();
    h.engine.start(&id("c1"), params()).await.unwrap();
    let last = h.control.puts().last().cloned().unwrap().1;
    assert_eq!(last.dns.unwrap().allow_hostnames, ["*.example.com"]);
    // Added while running: pushed at once; a CIDR without the synthetic address opens no names.
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Tcp, "10.0.0.0/8", "127.0.0.1:9"))
        .await
        .unwrap();
    let last = h.control.puts().last().cloned().unwrap().1;
    assert_eq!(last.dns.unwrap().allow_hostnames, ["*.example.com"]);
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Http, "0.0.0.0/0", "http://127.0.0.1:9"))
        .await
        .unwrap();
    let last = h.control.puts().last().cloned().unwrap().1;
    assert_eq!(last.dns.unwrap().allow_hostnames, ["*"]);
}

#[tokio::test]
async fn why_explains_without_connecting() {
    let h = harness().await;
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Https, "example.com", "http://127.0.0.1:9"))
        .await
        .unwrap();
    let why = h.engine.why(&id("c1"), "example.com", 443, Protocol::Https);
    assert_eq!((why.decision, why.rule.as_deref()), ("handler", Some("https example.com:443")));
    let why = h.engine.why(&id("c1"), "other.com", 443, Protocol::Https);
    assert_eq!(why.decision, "unresolvable");
    let why = h.engine.why(&id("c1"), "1.2.3.4", 22, Protocol::Tcp);
    assert_eq!(why.decision, "refused");
    // An HTTP request to a bare address carries that address as its Host.
    h.engine
        .set_egress(&id("c1"), mapping(Protocol::Http, "203.0.113.20", "http://127.0.0.1:9"))
        .await
        .unwrap();
    let why = h.engine.why(&id("c1"), "203.0.113.20", 80, Protocol::Http);
    assert_eq!((why.decision, why.rule.as_deref()), ("handler", Some("http 203.0.113.20:80")));
}
