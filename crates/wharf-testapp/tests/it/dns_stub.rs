//! The `DNS_STUB` server, asked with the codec directly and through `/dns-query`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use wharf_testapp::dns_client::{read_tcp_message, write_tcp_message};
use wharf_wire::dns::{self, FLAG_AA, FLAG_QR, rtype};

use crate::support::{Setup, closed_port, closed_udp_addr, dns_stub, get, silent_udp};

/// `"<rcode> [<ips>]"`, after checking the id and the `QR` and `AA` bits.
fn summary(id: u16, answer: &[u8]) -> String {
    let response = dns::parse_response(answer).unwrap();
    assert_eq!(response.id, id);
    assert_eq!(response.flags & (FLAG_QR | FLAG_AA), FLAG_QR | FLAG_AA);
    let ips: Vec<String> = response.ips().map(|ip| ip.to_string()).collect();
    format!("{} [{}]", response.rcode, ips.join(","))
}

async fn ask_udp(server: SocketAddr, id: u16, name: &str, qtype: u16) -> String {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    socket.send_to(&dns::encode_query(id, name, qtype).unwrap(), server).await.unwrap();
    let mut buf = [0; 512];
    let (len, from) = socket.recv_from(&mut buf).await.unwrap();
    assert_eq!(from, server);
    summary(id, &buf[..len])
}

#[tokio::test]
async fn answers_over_udp() {
    let stub = dns_stub().await;
    assert_eq!(ask_udp(stub, 1, "example.com", rtype::A).await, "0 [10.201.0.10]");
    assert_eq!(ask_udp(stub, 2, "WWW.Example.COM", rtype::A).await, "0 [10.201.0.10]");
    assert_eq!(ask_udp(stub, 3, "v6.example.com", rtype::AAAA).await, "0 [2001:db8::10]");
    assert_eq!(ask_udp(stub, 4, "example.com", rtype::AAAA).await, "0 []");
    assert_eq!(ask_udp(stub, 5, "a.b.wild.test", rtype::A).await, "0 [10.201.0.30]");
    assert_eq!(ask_udp(stub, 6, "nope.example.com", rtype::A).await, "3 []");
    assert_eq!(ask_udp(stub, 7, "wild.test", rtype::AAAA).await, "3 []");
}

#[tokio::test]
async fn answers_over_tcp_several_queries_per_connection() {
    let stub = dns_stub().await;
    let mut stream = TcpStream::connect(stub).await.unwrap();
    let queries = [
        (10, "example.com", rtype::A, "0 [10.201.0.10]"),
        (11, "v6.example.com", rtype::AAAA, "0 [2001:db8::10]"),
        (12, "nope.example.com", rtype::AAAA, "3 []"),
    ];
    for (id, name, qtype, expect) in queries {
        write_tcp_message(&mut stream, &dns::encode_query(id, name, qtype).unwrap()).await.unwrap();
        let answer = read_tcp_message(&mut stream).await.unwrap().unwrap();
        assert_eq!(summary(id, &answer), expect, "{name}");
    }
    // A query split across writes, the length prefix itself split.
    let query = dns::encode_query(13, "www.example.com", rtype::A).unwrap();
    let mut framed = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    for chunk in [&framed[..1], &framed[1..7], &framed[7..]] {
        stream.write_all(chunk).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let answer = read_tcp_message(&mut stream).await.unwrap().unwrap();
    assert_eq!(summary(13, &answer), "0 [10.201.0.10]");
    // The client closes; the server closes too.
    stream.shutdown().await.unwrap();
    assert_eq!(read_tcp_message(&mut stream).await.unwrap(), None);
}

#[tokio::test]
async fn dns_query_route_over_both_transports() {
    let stub = dns_stub().await;
    let setup = Setup::new("");
    let addr = setup.start().await;
    let cases = [
        ("name=example.com", r#"200 {"rcode":0,"answers":["10.201.0.10"]}"#),
        ("name=Example.com.&type=a&transport=tcp", r#"200 {"rcode":0,"answers":["10.201.0.10"]}"#),
        ("name=v6.example.com&type=AAAA", r#"200 {"rcode":0,"answers":["2001:db8::10"]}"#),
        (
            "name=v6.example.com&type=AAAA&transport=tcp",
            r#"200 {"rcode":0,"answers":["2001:db8::10"]}"#,
        ),
        ("name=example.com&type=AAAA&transport=tcp", r#"200 {"rcode":0,"answers":[]}"#),
        ("name=x.wild.test&transport=udp", r#"200 {"rcode":0,"answers":["10.201.0.30"]}"#),
        ("name=nope.example.com", r#"200 {"rcode":3,"answers":[]}"#),
        ("name=nope.example.com&transport=tcp", r#"200 {"rcode":3,"answers":[]}"#),
    ];
    for (params, expect) in cases {
        let reply = get(addr, &format!("/dns-query?server={stub}&{params}"), &[]).await;
        assert_eq!(reply.summary(), expect, "{params}");
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    }
}

#[tokio::test]
async fn dns_query_route_errors() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let refused_udp = closed_udp_addr();
    let reply = get(addr, &format!("/dns-query?name=example.com&server={refused_udp}"), &[]).await;
    assert_eq!(
        reply.summary(),
        format!("502 DNS error: dns query to {refused_udp}: Connection refused (os error 111)")
    );
    let refused_tcp = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_port().await));
    let path = format!("/dns-query?name=example.com&server={refused_tcp}&transport=tcp");
    assert_eq!(
        get(addr, &path, &[]).await.summary(),
        format!("502 DNS error: dns query to {refused_tcp}: Connection refused (os error 111)")
    );

    let bad = [
        ("server=127.0.0.1", r#"400 Missing "name" query param"#),
        ("name=example.com", r#"400 Missing "server" query param"#),
        (
            "name=example.com&server=ns.example.com",
            r#"400 server must be IP[:PORT], got "ns.example.com""#,
        ),
        ("name=example.com&server=127.0.0.1&type=MX", r#"400 type must be A or AAAA, got "MX""#),
        (
            "name=example.com&server=127.0.0.1&transport=quic",
            r#"400 transport must be udp or tcp, got "quic""#,
        ),
    ];
    for (params, expect) in bad {
        assert_eq!(get(addr, &format!("/dns-query?{params}"), &[]).await.summary(), expect);
    }
}

#[tokio::test(start_paused = true)]
async fn dns_query_route_times_out_after_three_seconds() {
    let silent = silent_udp().await;
    let setup = Setup::new("");
    let addr = setup.start().await;
    let started = tokio::time::Instant::now();
    let reply = get(addr, &format!("/dns-query?name=example.com&server={silent}"), &[]).await;
    assert_eq!(reply.summary(), format!("502 DNS error: no answer from {silent} within 3s"));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}
