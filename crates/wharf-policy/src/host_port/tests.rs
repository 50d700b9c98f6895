//! Tests for `hostPort` parsing: every grammar case for each protocol, and round trips.

use std::net::{Ipv4Addr, Ipv6Addr};

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

fn show(raw: &str, protocol: Protocol) -> String {
    match HostPort::parse(raw, protocol) {
        Ok(hp) => {
            let dest = match &hp.dest {
                Destination::Cidr(net) => format!("Cidr({net})"),
                Destination::Host(glob) => format!("Host({glob})"),
            };
            format!("{dest} port={} => {hp}", hp.port)
        }
        Err(e) => format!("error: {e}"),
    }
}

/// Parses `raw` for each protocol. When all three agree (e.g. the same error) one line says so.
fn check(raw: &str, expect: Expect) {
    let lines = Protocol::ALL.map(|p| show(raw, p));
    let out = if lines.iter().all(|l| *l == lines[0]) {
        format!("all: {}\n", lines[0])
    } else {
        Protocol::ALL.iter().zip(&lines).map(|(p, l)| format!("{p}: {l}\n")).collect()
    };
    expect.assert_eq(&out);
}

#[test]
fn addresses() {
    check(
        "1.2.3.4",
        expect![[r#"
        http: Cidr(1.2.3.4/32) port=80 => 1.2.3.4:80
        https: Cidr(1.2.3.4/32) port=443 => 1.2.3.4:443
        tcp: Cidr(1.2.3.4/32) port=0 => 1.2.3.4:0
    "#]],
    );
    check(
        "1.2.3.4:8080",
        expect![[r#"
        all: Cidr(1.2.3.4/32) port=8080 => 1.2.3.4:8080
    "#]],
    );
    check(
        "1.2.3.4:0",
        expect![[r#"
        all: Cidr(1.2.3.4/32) port=0 => 1.2.3.4:0
    "#]],
    );
    check(
        "10.0.0.0/8:443",
        expect![[r#"
        all: Cidr(10.0.0.0/8) port=443 => 10.0.0.0/8:443
    "#]],
    );
    check(
        "10.1.2.3/8",
        expect![[r#"
        http: Cidr(10.0.0.0/8) port=80 => 10.0.0.0/8:80
        https: Cidr(10.0.0.0/8) port=443 => 10.0.0.0/8:443
        tcp: Cidr(10.0.0.0/8) port=0 => 10.0.0.0/8:0
    "#]],
    );
    check(
        "0.0.0.0/0",
        expect![[r#"
        http: Cidr(0.0.0.0/0) port=80 => 0.0.0.0/0:80
        https: Cidr(0.0.0.0/0) port=443 => 0.0.0.0/0:443
        tcp: Cidr(0.0.0.0/0) port=0 => 0.0.0.0/0:0
    "#]],
    );
}

#[test]
fn ipv6() {
    check(
        "[::1]",
        expect![[r#"
        http: Cidr(::1/128) port=80 => [::1]:80
        https: Cidr(::1/128) port=443 => [::1]:443
        tcp: Cidr(::1/128) port=0 => [::1]:0
    "#]],
    );
    check(
        "[::1]:443",
        expect![[r#"
        all: Cidr(::1/128) port=443 => [::1]:443
    "#]],
    );
    check(
        "[::1]:8080",
        expect![[r#"
        all: Cidr(::1/128) port=8080 => [::1]:8080
    "#]],
    );
    check(
        "::1",
        expect![[r#"
        http: Cidr(::1/128) port=80 => [::1]:80
        https: Cidr(::1/128) port=443 => [::1]:443
        tcp: Cidr(::1/128) port=0 => [::1]:0
    "#]],
    );
    check(
        "::/0",
        expect![[r#"
        http: Cidr(::/0) port=80 => [::/0]:80
        https: Cidr(::/0) port=443 => [::/0]:443
        tcp: Cidr(::/0) port=0 => [::/0]:0
    "#]],
    );
    check(
        "fe80::1",
        expect![[r#"
        http: Cidr(fe80::1/128) port=80 => [fe80::1]:80
        https: Cidr(fe80::1/128) port=443 => [fe80::1]:443
        tcp: Cidr(fe80::1/128) port=0 => [fe80::1]:0
    "#]],
    );
    check(
        "[fd00::/8]:443",
        expect![[r#"
        all: Cidr(fd00::/8) port=443 => [fd00::/8]:443
    "#]],
    );
    check(
        "::ffff:1.2.3.4",
        expect![[r#"
        http: Cidr(1.2.3.4/32) port=80 => 1.2.3.4:80
        https: Cidr(1.2.3.4/32) port=443 => 1.2.3.4:443
        tcp: Cidr(1.2.3.4/32) port=0 => 1.2.3.4:0
    "#]],
    );
    check(
        "[::ffff:1.2.3.4]:80",
        expect![[r#"
        all: Cidr(1.2.3.4/32) port=80 => 1.2.3.4:80
    "#]],
    );
    check(
        "::ffff:0:0/96",
        expect![[r#"
        http: Cidr(0.0.0.0/0) port=80 => 0.0.0.0/0:80
        https: Cidr(0.0.0.0/0) port=443 => 0.0.0.0/0:443
        tcp: Cidr(0.0.0.0/0) port=0 => 0.0.0.0/0:0
    "#]],
    );
}

#[test]
fn hostnames() {
    check(
        "*.example.com",
        expect![[r#"
        http: Host(*.example.com) port=80 => *.example.com:80
        https: Host(*.example.com) port=443 => *.example.com:443
        tcp: error: tcp hostPort "*.example.com" names the host "*.example.com"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
    check(
        "EXAMPLE.com:80",
        expect![[r#"
        http: Host(example.com) port=80 => example.com:80
        https: Host(example.com) port=80 => example.com:80
        tcp: error: tcp hostPort "EXAMPLE.com:80" names the host "EXAMPLE.com"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
    check(
        "example.com:0",
        expect![[r#"
        http: Host(example.com) port=0 => example.com:0
        https: Host(example.com) port=0 => example.com:0
        tcp: error: tcp hostPort "example.com:0" names the host "example.com"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
    check(
        "*",
        expect![[r#"
        http: Host(*) port=80 => *:80
        https: Host(*) port=443 => *:443
        tcp: error: tcp hostPort "*" names the host "*"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
    check(
        "localhost:8080",
        expect![[r#"
        http: Host(localhost) port=8080 => localhost:8080
        https: Host(localhost) port=8080 => localhost:8080
        tcp: error: tcp hostPort "localhost:8080" names the host "localhost"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
}

#[test]
fn errors() {
    check(
        "[::1",
        expect![[r#"
        all: error: hostPort "[::1" has an unclosed '['; write [addr]:port
    "#]],
    );
    check(
        "[::1]x",
        expect![[r#"
        all: error: hostPort "[::1]x" has "x" after ']'; write [addr] or [addr]:port
    "#]],
    );
    check(
        "[::1]:",
        expect![[r#"
        all: error: hostPort "[::1]:" ends in ':' with no port; write a port (0 for every port) or drop the ':'
    "#]],
    );
    check(
        "[1.2.3.4]:80",
        expect![[r#"
        all: error: hostPort "[1.2.3.4]:80" puts brackets around "1.2.3.4", which is not an IPv6 address or CIDR; brackets are only for IPv6, write host:port otherwise
    "#]],
    );
    check(
        "[example.com]:80",
        expect![[r#"
        all: error: hostPort "[example.com]:80" puts brackets around "example.com", which is not an IPv6 address or CIDR; brackets are only for IPv6, write host:port otherwise
    "#]],
    );
    check(
        "example.com:99999",
        expect![[r#"
        all: error: hostPort "example.com:99999" has port "99999"; a port is a number from 0 to 65535 (0 means every port)
    "#]],
    );
    check(
        "example.com:+80",
        expect![[r#"
        all: error: hostPort "example.com:+80" has port "+80"; a port is a number from 0 to 65535 (0 means every port)
    "#]],
    );
    check(
        ":80",
        expect![[r#"
        all: error: hostPort ":80" has no host; write <host>[:port], e.g. example.com:443
    "#]],
    );
    check(
        "",
        expect![[r#"
        all: error: hostPort "" has no host; write <host>[:port], e.g. example.com:443
    "#]],
    );
    check(
        "[]:80",
        expect![[r#"
        all: error: hostPort "[]:80" has no host; write <host>[:port], e.g. example.com:443
    "#]],
    );
    check(
        "example.com:",
        expect![[r#"
        all: error: hostPort "example.com:" ends in ':' with no port; write a port (0 for every port) or drop the ':'
    "#]],
    );
    check(
        "10.0.0.0/33",
        expect![[r#"
        all: error: "10.0.0.0/33" in hostPort "10.0.0.0/33" is not a valid CIDR; write <address>/<prefix length>, e.g. 10.0.0.0/8 or fd00::/8
    "#]],
    );
    check(
        "1.2.3.999:80",
        expect![[r#"
        all: error: hostname glob "1.2.3.999" ends in a numeric label, so it looks like an IP address but is not one; check the address
    "#]],
    );
    check(
        "::/0:80",
        expect![[r#"
        all: error: "::/0:80" in hostPort "::/0:80" has ':' but is not an IPv6 address or CIDR; write IPv6 with a port as [addr]:port and a hostname as name:port
    "#]],
    );
    check(
        "fe80::1%eth0",
        expect![[r#"
        all: error: "fe80::1%eth0" in hostPort "fe80::1%eth0" has ':' but is not an IPv6 address or CIDR; write IPv6 with a port as [addr]:port and a hostname as name:port
    "#]],
    );
    check(
        "a:b:c",
        expect![[r#"
        all: error: "a:b:c" in hostPort "a:b:c" has ':' but is not an IPv6 address or CIDR; write IPv6 with a port as [addr]:port and a hostname as name:port
    "#]],
    );
    check(
        "exa mple.com",
        expect![[r#"
        http: error: hostname glob "exa mple.com" contains ' '; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
        https: error: hostname glob "exa mple.com" contains ' '; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
        tcp: error: tcp hostPort "exa mple.com" names the host "exa mple.com"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
    check(
        "ex?mple.com:443",
        expect![[r#"
        http: error: hostname glob "ex?mple.com" contains '?'; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
        https: error: hostname glob "ex?mple.com" contains '?'; a glob holds letters, digits, '-', '_' and '.', and only '*' is a wildcard
        tcp: error: tcp hostPort "ex?mple.com:443" names the host "ex?mple.com"; TCP rules match addresses, so write an IP or CIDR, e.g. 203.0.113.7:5432 or 10.0.0.0/8
    "#]],
    );
}

fn net_v4() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, len)| IpNet::new(Ipv4Addr::from(a).into(), len).unwrap())
}

fn net_v6() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, len)| IpNet::new(Ipv6Addr::from(a).into(), len).unwrap())
}

pub(crate) fn glob() -> impl Strategy<Value = HostGlob> {
    "(\\*|[a-z0-9][a-z0-9_-]{0,8})(\\.(\\*|[a-z0-9_-]{1,8})){0,3}\\.[a-z]{2,5}|\\*"
        .prop_map(|raw| HostGlob::new(&raw).unwrap())
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        net_v4().prop_map(Destination::cidr),
        net_v6().prop_map(Destination::cidr),
        glob().prop_map(Destination::Host),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Http), Just(Protocol::Https), Just(Protocol::Tcp)]
}

proptest! {
    #[test]
    fn display_parses_back(dest in destination(), port in any::<u16>(), protocol in protocol()) {
        let hp = HostPort { dest, port };
        let shown = hp.to_string();
        match HostPort::parse(&shown, protocol) {
            Ok(back) => prop_assert_eq!(back, hp),
            Err(e) => {
                // Only tcp refuses, and only names.
                prop_assert_eq!(protocol, Protocol::Tcp);
                prop_assert!(matches!(e, PolicyError::TcpHostname { .. }), "{}", e);
            }
        }
    }

    #[test]
    fn parse_never_panics(raw in "\\PC{0,40}", protocol in protocol()) {
        crate::fuzz_logic(raw.as_bytes());
        let _ = HostPort::parse(&raw, protocol);
    }

    #[test]
    fn accepted_input_round_trips(raw in "[\\[\\]:./*0-9a-fA-F]{0,24}", protocol in protocol()) {
        if let Ok(hp) = HostPort::parse(&raw, protocol) {
            prop_assert_eq!(HostPort::parse(&hp.to_string(), protocol), Ok(hp));
        }
    }
}
