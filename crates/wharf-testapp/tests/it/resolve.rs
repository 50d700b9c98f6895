//! The resolver against a stub DNS server on loopback, directly and through `/resolve`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use wharf_testapp::resolve::{NameServer, ResolveError, Resolver, ResolverConfig};
use wharf_testapp::target::Host;
use wharf_wire::dns::{self, Answer, Reply, rcode, rtype};

use crate::support::{Setup, dns_stub, get, silent_udp};

/// A DNS server on loopback serving a fixed zone, which ignores the first `drop_first` queries
/// and records every query as `"<name> <qtype>"`.
struct Stub {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    async fn start(drop_first: usize) -> Stub {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut buf = [0; 512];
            loop {
                let (len, peer) = socket.recv_from(&mut buf).await.unwrap();
                let query = dns::parse_query(&buf[..len]).unwrap();
                let count = {
                    let mut log = log.lock().unwrap();
                    let q = &query.questions[0];
                    log.push(format!("{} {}", q.name, q.qtype));
                    log.len()
                };
                if count > drop_first {
                    socket.send_to(&answer(&query), peer).await.unwrap();
                }
            }
        });
        Stub { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn resolver(&self, setup: &Setup) -> Resolver {
        let config =
            ResolverConfig { nameserver: NameServer::Fixed(self.addr), ..setup.resolver.clone() };
        Resolver::new(config)
    }
}

/// `v4.test` has an A record, `v6.test` only an AAAA record, `empty.test` neither; everything
/// else is NXDOMAIN.
fn answer(query: &dns::Query) -> Vec<u8> {
    let q = &query.questions[0];
    let ip: Option<IpAddr> = match (q.name.as_str(), q.qtype) {
        ("v4.test", rtype::A) => Some("10.9.8.7".parse().unwrap()),
        ("v6.test", rtype::AAAA) => Some("fd00::1".parse().unwrap()),
        ("v4.test" | "v6.test" | "empty.test", _) => None,
        _ => return dns::encode_nxdomain(query).unwrap(),
    };
    let answers: Vec<Answer> = ip.into_iter().map(|ip| Answer::ip(&q.name, ip, 60)).collect();
    dns::encode_answer(
        query,
        &Reply { rcode: rcode::NOERROR, authoritative: true, answers: &answers },
    )
    .unwrap()
}

fn name(name: &str) -> Host {
    Host::Name(name.to_owned())
}

async fn lookup(resolver: &Resolver, host: &str) -> String {
    match resolver.resolve(&name(host)).await {
        Ok(ips) => format!("{ips:?}"),
        Err(err) => format!("error: {err}"),
    }
}

#[tokio::test]
async fn a_then_aaaa_then_nxdomain() {
    let stub = Stub::start(0).await;
    let setup = Setup::new("");
    let resolver = stub.resolver(&setup);
    assert_eq!(lookup(&resolver, "V4.test.").await, "[10.9.8.7]");
    assert_eq!(lookup(&resolver, "v6.test").await, "[fd00::1]");
    assert_eq!(lookup(&resolver, "gone.test").await, "error: gone.test: no such host");
    assert_eq!(stub.seen(), ["v4.test 1", "v6.test 1", "v6.test 28", "gone.test 1"]);
}

#[tokio::test]
async fn hosts_file_and_literals_skip_dns() {
    let stub = Stub::start(0).await;
    let setup = Setup::new("10.1.1.1 v4.test\n");
    let resolver = stub.resolver(&setup);
    assert_eq!(lookup(&resolver, "v4.test").await, "[10.1.1.1]");
    let literal = resolver.resolve(&Host::Ip("::1".parse().unwrap())).await.unwrap();
    assert_eq!(literal, ["::1".parse::<IpAddr>().unwrap()]);
    assert!(stub.seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_lost_query_is_retried() {
    let stub = Stub::start(1).await;
    let setup = Setup::new("");
    assert_eq!(lookup(&stub.resolver(&setup), "v4.test").await, "[10.9.8.7]");
    assert_eq!(stub.seen(), ["v4.test 1", "v4.test 1"]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out() {
    let stub = Stub::start(usize::MAX).await;
    let setup = Setup::new("");
    let started = tokio::time::Instant::now();
    let err = stub.resolver(&setup).resolve(&name("v4.test")).await.unwrap_err();
    assert!(matches!(err, ResolveError::Timeout { .. }), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn route_against_the_dns_stub() {
    let mut setup = Setup::new("10.1.1.1 pinned.example.com\n");
    setup.resolver.nameserver = NameServer::Fixed(dns_stub().await);
    let addr = setup.start().await;
    let cases = [
        ("example.com", r#"200 {"addresses":["10.201.0.10"]}"#),
        ("WWW.example.com.", r#"200 {"addresses":["10.201.0.10"]}"#),
        ("v6.example.com", r#"200 {"addresses":["2001:db8::10"]}"#),
        ("x.wild.test", r#"200 {"addresses":["10.201.0.30"]}"#),
        ("pinned.example.com", r#"200 {"addresses":["10.1.1.1"]}"#),
        ("10.0.0.9", r#"200 {"addresses":["10.0.0.9"]}"#),
        ("nope.example.com", r#"502 {"error":"nxdomain"}"#),
    ];
    for (name, expect) in cases {
        let reply = get(addr, &format!("/resolve?name={name}"), &[]).await;
        assert_eq!(reply.summary(), expect, "{name}");
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    }
    let bad = [
        ("/resolve", r#"400 Missing "name" query param"#),
        ("/resolve?name=a%20b", r#"400 name is not a host name: invalid host in "a b""#),
    ];
    for (path, expect) in bad {
        assert_eq!(get(addr, path, &[]).await.summary(), expect);
    }
}

#[tokio::test]
async fn route_tells_nodata_from_nxdomain() {
    let stub = Stub::start(0).await;
    let mut setup = Setup::new("");
    setup.resolver.nameserver = NameServer::Fixed(stub.addr);
    let addr = setup.start().await;
    assert_eq!(
        get(addr, "/resolve?name=empty.test", &[]).await.summary(),
        r#"502 {"error":"nodata"}"#
    );
    assert_eq!(
        get(addr, "/resolve?name=gone.test", &[]).await.summary(),
        r#"502 {"error":"nxdomain"}"#
    );
    assert_eq!(stub.seen(), ["empty.test 1", "empty.test 28", "gone.test 1"]);
}

#[tokio::test(start_paused = true)]
async fn route_reports_other_errors() {
    let silent = silent_udp().await;
    let mut setup = Setup::new("");
    setup.resolver.nameserver = NameServer::Fixed(silent);
    let addr = setup.start().await;
    assert_eq!(
        get(addr, "/resolve?name=example.com", &[]).await.summary(),
        format!(r#"502 {{"error":"example.com: dns query to {silent} timed out"}}"#)
    );
}
