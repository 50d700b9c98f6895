//! The DNS server: allow-list answers, forwarding to a stub upstream, failures, and the log.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use wharf_wire::control::DnsDecision;
use wharf_wire::dns::{self, Answer, Reply, Response, rcode, rtype};

use crate::Sidecar;
use crate::engine::FakeEngine;

/// A loopback resolver on UDP and TCP: `real.test` has `A 192.0.2.1`, names under `nx.` do not
/// exist, and `slow.test` is never answered. Reports every name it is asked, and how.
struct StubUpstream {
    addr: SocketAddr,
    asked: mpsc::UnboundedReceiver<String>,
}

impl StubUpstream {
    async fn start() -> StubUpstream {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, asked) = mpsc::unbounded_channel();
        let tcp = TcpListener::bind(addr).await.unwrap();
        let tcp_tx = tx.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let len = stream.read_u16().await.unwrap();
                let mut raw = vec![0u8; usize::from(len)];
                stream.read_exact(&mut raw).await.unwrap();
                let query = dns::parse_query(&raw).unwrap();
                let name = query.questions[0].name.clone();
                let _ = tcp_tx.send(format!("tcp:{name}"));
                if let Some(reply) = stub_answer(&query, &name) {
                    stream.write_u16(reply.len() as u16).await.unwrap();
                    stream.write_all(&reply).await.unwrap();
                }
            }
        });
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let query = dns::parse_query(&buf[..n]).unwrap();
                let name = query.questions[0].name.clone();
                let _ = tx.send(name.clone());
                if let Some(reply) = stub_answer(&query, &name) {
                    socket.send_to(&reply, peer).await.unwrap();
                }
            }
        });
        StubUpstream { addr, asked }
    }

    fn asked(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(name) = self.asked.try_recv() {
            names.push(name);
        }
        names
    }
}

fn stub_answer(query: &dns::Query, name: &str) -> Option<Vec<u8>> {
    let real = [Answer::ip(name, "192.0.2.1".parse().unwrap(), 300)];
    let reply = match name {
        "slow.test" => return None,
        n if n.starts_with("nx.") => {
            Reply { rcode: rcode::NXDOMAIN, authoritative: false, answers: &[] }
        }
        _ => Reply { rcode: rcode::NOERROR, authoritative: false, answers: &real },
    };
    Some(dns::encode_answer(query, &reply).unwrap())
}

async fn dns_sidecar(
    engine: &FakeEngine,
    upstream: Option<&StubUpstream>,
    args: &[&str],
) -> Sidecar {
    let port = engine.port_arg();
    let upstream = upstream.map(|u| u.addr.to_string());
    let mut all = vec!["--dns-enabled", "--http-egress-port", port.as_str()];
    if let Some(upstream) = &upstream {
        all.extend(["--dns-upstream", upstream.as_str()]);
    }
    all.extend_from_slice(args);
    Sidecar::start(&all).await
}

/// Asks the sidecar over UDP; the raw answer.
async fn ask_raw(sidecar: &Sidecar, name: &str, qtype: u16) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let query = dns::encode_query(0x5151, name, qtype).unwrap();
    socket.send_to(&query, sidecar.dns_addr.unwrap()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("no dns answer")
        .unwrap();
    assert_eq!(from, sidecar.dns_addr.unwrap(), "the answer comes from where the query went");
    buf.truncate(n);
    buf
}

async fn ask(sidecar: &Sidecar, name: &str, qtype: u16) -> Response {
    let response = dns::parse_response(&ask_raw(sidecar, name, qtype).await).unwrap();
    assert_eq!(response.id, 0x5151);
    response
}

fn ips(response: &Response) -> Vec<String> {
    response.ips().map(|ip| ip.to_string()).collect()
}

fn is_synthetic(response: &Response, expected: &[&str]) -> bool {
    response.rcode == rcode::NOERROR
        && response.flags & dns::FLAG_AA != 0
        && ips(response) == expected
        && response.answers.iter().all(|a| a.ttl == 60)
}

#[tokio::test]
async fn internet_off_answers_by_the_allow_list_and_never_forwards() {
    let engine = FakeEngine::start().await;
    let mut upstream = StubUpstream::start().await;
    let sidecar = dns_sidecar(&engine, Some(&upstream), &[]).await;
    let body = r#"{"internet": {"enabled": false}, "dns": {"allowHostnames": ["*.allowed.test", "Exact.test", "a?c.test"]}}"#;
    assert_eq!(sidecar.put_egress(body).await, 204);

    assert!(is_synthetic(&ask(&sidecar, "api.allowed.test", rtype::A).await, &["11.0.0.1"]));
    assert!(is_synthetic(&ask(&sidecar, "api.allowed.test", rtype::AAAA).await, &["fd00::1"]));
    assert!(is_synthetic(
        &ask(&sidecar, "x.allowed.test", rtype::ANY).await,
        &["11.0.0.1", "fd00::1"]
    ));
    assert!(is_synthetic(&ask(&sidecar, "EXACT.test.", rtype::A).await, &["11.0.0.1"]));
    // Other types of an allowed name: it exists, with nothing of that type.
    assert!(is_synthetic(&ask(&sidecar, "api.allowed.test", 15).await, &[]));
    for denied in ["denied.test", "allowed.test", "abc.test"] {
        let response = ask(&sidecar, denied, rtype::A).await;
        assert_eq!(response.rcode, rcode::NXDOMAIN, "{denied}");
        assert_ne!(response.flags & dns::FLAG_AA, 0);
    }
    assert_eq!(upstream.asked(), Vec::<String>::new());
}

#[tokio::test]
async fn internet_on_forwards_and_synthesises_only_allowed_nxdomains() {
    let engine = FakeEngine::start().await;
    let mut upstream = StubUpstream::start().await;
    let sidecar = dns_sidecar(&engine, Some(&upstream), &[]).await;
    let body = r#"{"internet": {"enabled": true}, "dns": {"allowHostnames": ["*.allowed.test"]}}"#;
    assert_eq!(sidecar.put_egress(body).await, 204);

    // Relayed unchanged, whether allowed or not.
    let query =
        dns::parse_query(&dns::encode_query(0x5151, "real.test", rtype::A).unwrap()).unwrap();
    assert_eq!(
        ask_raw(&sidecar, "real.test", rtype::A).await,
        stub_answer(&query, "real.test").unwrap()
    );
    let denied_nx = ask(&sidecar, "nx.denied.test", rtype::A).await;
    assert_eq!((denied_nx.rcode, denied_nx.flags & dns::FLAG_AA), (rcode::NXDOMAIN, 0));
    // An allowed name the upstream does not know gets the synthetic answer.
    assert!(is_synthetic(&ask(&sidecar, "nx.allowed.test", rtype::A).await, &["11.0.0.1"]));
    assert_eq!(upstream.asked(), ["real.test", "nx.denied.test", "nx.allowed.test"]);
}

#[tokio::test]
async fn upstream_silence_and_absence_are_servfail() {
    let engine = FakeEngine::start().await;
    let upstream = StubUpstream::start().await;
    let sidecar = dns_sidecar(&engine, Some(&upstream), &["--dns-forward-timeout-ms", "200"]).await;
    assert_eq!(ask(&sidecar, "slow.test", rtype::A).await.rcode, rcode::SERVFAIL);

    // No --dns-upstream and no resolv.conf: nowhere to forward.
    let sidecar = dns_sidecar(&engine, None, &[]).await;
    assert_eq!(ask(&sidecar, "real.test", rtype::A).await.rcode, rcode::SERVFAIL);
}

/// Asks over TCP: one framed query, one framed answer.
async fn ask_tcp(sidecar: &Sidecar, name: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(sidecar.dns_addr.unwrap()).await.unwrap();
    let query = dns::encode_query(0x5151, name, rtype::A).unwrap();
    stream.write_u16(query.len() as u16).await.unwrap();
    stream.write_all(&query).await.unwrap();
    let len = stream.read_u16().await.unwrap();
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn dns_over_tcp_is_forwarded_over_tcp() {
    let engine = FakeEngine::start().await;
    let mut upstream = StubUpstream::start().await;
    let sidecar = dns_sidecar(&engine, Some(&upstream), &[]).await;
    let query =
        dns::parse_query(&dns::encode_query(0x5151, "real.test", rtype::A).unwrap()).unwrap();
    assert_eq!(ask_tcp(&sidecar, "real.test").await, stub_answer(&query, "real.test").unwrap());
    let synthetic = dns::parse_response(&ask_tcp(&sidecar, "nx.any.test").await).unwrap();
    assert!(is_synthetic(&synthetic, &["11.0.0.1"]), "`*` allows it");
    assert_eq!(upstream.asked(), ["tcp:real.test", "tcp:nx.any.test"]);
}

#[tokio::test]
async fn dns_over_tcp_is_answered_too() {
    let engine = FakeEngine::start().await;
    let sidecar = dns_sidecar(&engine, None, &["--internet-initially", "false"]).await;
    let mut stream = TcpStream::connect(sidecar.dns_addr.unwrap()).await.unwrap();
    for name in ["a.example", "b.example"] {
        let query = dns::encode_query(7, name, rtype::A).unwrap();
        stream.write_u16(query.len() as u16).await.unwrap();
        stream.write_all(&query).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut answer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut answer).await.unwrap();
        // Before any PUT the allow-list is `*`.
        assert!(is_synthetic(&dns::parse_response(&answer).unwrap(), &["11.0.0.1"]), "{name}");
    }
}

#[tokio::test]
async fn unreadable_queries_get_formerr() {
    let engine = FakeEngine::start().await;
    let sidecar = dns_sidecar(&engine, None, &[]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&[0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 9], sidecar.dns_addr.unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let response = dns::parse_response(&buf[..n]).unwrap();
    assert_eq!((response.id, response.rcode), (0xabcd, rcode::FORMERR));
}

#[tokio::test]
async fn answers_are_logged_to_the_engine_with_the_token() {
    let mut engine = FakeEngine::start().await;
    let sidecar = dns_sidecar(&engine, None, &["--control-token", "t0k"]).await;
    let body = r#"{"internet": {"enabled": false}, "dns": {"allowHostnames": ["*.allowed.test"]}}"#;
    assert_eq!(
        sidecar.request("PUT", "/egress", &["Authorization: Bearer t0k"], body).await.status(),
        204
    );
    ask(&sidecar, "a.allowed.test", rtype::AAAA).await;
    ask(&sidecar, "b.denied.test", rtype::A).await;

    let mut events = Vec::new();
    while events.len() < 2 {
        let post = engine.dns_log().await;
        assert_eq!(post.head.header("authorization"), Some("Bearer t0k"));
        assert_eq!(post.head.header("content-type"), Some("application/json"));
        events.extend(post.events);
    }
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.name.as_str(), e.qtype, e.decision, ips_of(&e.addresses), e.rule.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "a.allowed.test",
                rtype::AAAA,
                DnsDecision::Synthetic,
                vec!["fd00::1".to_owned()],
                Some("*.allowed.test")
            ),
            ("b.denied.test", rtype::A, DnsDecision::Nxdomain, vec![], None),
        ]
    );
    assert!(events.iter().all(|e| e.duration_ms < 5_000));
}

fn ips_of(addresses: &[std::net::IpAddr]) -> Vec<String> {
    addresses.iter().map(ToString::to_string).collect()
}
