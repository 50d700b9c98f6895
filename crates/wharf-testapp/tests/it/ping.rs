//! The `/ping` probe: an unprivileged ICMP echo to loopback, and its argument errors.
//!
//! Whether this host lets the test's group open ICMP datagram sockets is up to
//! `net.ipv4.ping_group_range` (containers allow every group; many hosts none), so the loopback
//! ping expects `pong` where the range admits our group and the socket's refusal otherwise.

use crate::support::{Setup, get};

/// Whether `net.ipv4.ping_group_range` admits this process's group.
fn ping_sockets_allowed() -> bool {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let bounds: Vec<u64> = range.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let gid: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    bounds[0] <= gid && gid <= bounds[1]
}

#[tokio::test]
async fn loopback_answers_where_ping_sockets_are_allowed() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let reply = get(addr, "/ping?host=127.0.0.1", &[]).await;
    if ping_sockets_allowed() {
        assert_eq!(reply.summary(), "200 pong");
    } else {
        assert_eq!(
            reply.summary(),
            "502 ping error: opening an ICMP socket: Permission denied (os error 13)"
        );
    }
    assert_eq!(reply.content_type.as_deref(), Some("text/plain; charset=utf-8"));
}

#[tokio::test]
async fn bad_arguments() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let cases = [
        ("/ping", r#"400 Missing "host" query param"#),
        ("/ping?host=", r#"400 Missing "host" query param"#),
        ("/ping?host=example.com", r#"400 host must be an IP address, got "example.com""#),
        ("/ping?host=1.2.3.4:80", r#"400 host must be an IP address, got "1.2.3.4:80""#),
    ];
    for (path, expect) in cases {
        assert_eq!(get(addr, path, &[]).await.summary(), expect, "{path}");
    }
}
