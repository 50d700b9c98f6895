//! Golden tests of the ruleset for each mode and family setting, and of parameter checks.

use std::net::IpAddr;

use expect_test::{Expect, expect};

use super::*;
use crate::gateway::EgressGateway;

/// The parameters the sidecar passes in production, give or take the ports.
pub(crate) fn params() -> InterceptParams {
    InterceptParams {
        gateway: EgressGateway::from(IpAddr::from([172, 17, 0, 1])),
        docker_gateway_cidr: None,
        control_addr: "0.0.0.0:39001".parse().unwrap(),
        families: IpFamilies::Both,
        dns: DnsInterception::On,
        tcp_listeners: vec!["127.0.0.1:15001".parse().unwrap(), "[::1]:15001".parse().unwrap()],
        dns_port: 15053,
        own_mark: 100,
        internet: false,
    }
}

fn v4_only() -> InterceptParams {
    InterceptParams {
        families: IpFamilies::V4Only,
        tcp_listeners: vec!["127.0.0.1:15001".parse().unwrap()],
        ..params()
    }
}

fn check(params: InterceptParams, mode: TcpMode, expect: Expect) {
    let plan = Plan::new(&params).unwrap();
    expect.assert_eq(&ruleset(&plan, mode).to_string());
}

#[test]
fn tproxy_both_families() {
    check(
        params(),
        TcpMode::Tproxy,
        expect![[r#"
            table inet wharf {
            	chain internet {
            		counter reject with icmpx admin-prohibited
            	}

            	chain divert {
            		type route hook output priority -150; policy accept;
            		oif "lo" return
            		meta mark 0x00000064 return
            		ct direction reply return
            		meta l4proto tcp meta mark set 0x00000001
            	}

            	chain deliver {
            		type filter hook prerouting priority -150; policy accept;
            		iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to 127.0.0.1:15001 accept
            		iif "lo" meta mark 0x00000001 meta nfproto ipv6 meta l4proto tcp tproxy ip6 to [::1]:15001 accept
            	}

            	chain rewrite {
            		type nat hook output priority -110; policy accept;
            		meta mark 0x00000064 return
            		udp dport 53 redirect to :15053
            		ip daddr 127.0.0.0/8 tcp dport 53 redirect to :15053
            		ip6 daddr ::1 tcp dport 53 redirect to :15053
            	}

            	chain egress {
            		type filter hook output priority 0; policy accept;
            		meta mark 0x00000064 accept
            		ct direction reply accept
            		ip daddr 127.0.0.11 counter reject with icmpx admin-prohibited
            		oif "lo" accept
            		ip daddr 127.0.0.0/8 accept
            		ip6 daddr ::1 accept
            		meta mark 0x00000001 accept
            		icmpv6 type 130-136 accept
            		icmpv6 type 143 accept
            		meta l4proto udp jump internet
            		meta l4proto icmp jump internet
            		meta l4proto ipv6-icmp jump internet
            		meta l4proto tcp counter reject with tcp reset
            		counter reject with icmpx admin-prohibited
            	}

            	chain control {
            		type filter hook input priority 0; policy accept;
            		iif "lo" meta mark != 0x00000001 meta mark != 0x00000064 tcp dport 39001 ct state new counter reject with tcp reset
            	}
            }
        "#]],
    );
}

#[test]
fn redirect_both_families() {
    check(
        InterceptParams { internet: true, ..params() },
        TcpMode::Redirect,
        expect![[r#"
            table inet wharf {
            	chain internet {
            		accept
            	}

            	chain rewrite {
            		type nat hook output priority -110; policy accept;
            		meta mark 0x00000064 return
            		udp dport 53 redirect to :15053
            		ip daddr 127.0.0.0/8 tcp dport 53 redirect to :15053
            		ip6 daddr ::1 tcp dport 53 redirect to :15053
            		oif "lo" return
            		meta nfproto ipv4 meta l4proto tcp redirect to :15001
            		meta nfproto ipv6 meta l4proto tcp redirect to :15001
            	}

            	chain egress {
            		type filter hook output priority 0; policy accept;
            		meta mark 0x00000064 accept
            		ct direction reply accept
            		ip daddr 127.0.0.11 counter reject with icmpx admin-prohibited
            		oif "lo" accept
            		ip daddr 127.0.0.0/8 accept
            		ip6 daddr ::1 accept
            		icmpv6 type 130-136 accept
            		icmpv6 type 143 accept
            		meta l4proto udp jump internet
            		meta l4proto icmp jump internet
            		meta l4proto ipv6-icmp jump internet
            		meta l4proto tcp counter reject with tcp reset
            		counter reject with icmpx admin-prohibited
            	}

            	chain control {
            		type filter hook input priority 0; policy accept;
            		iif "lo" meta mark != 0x00000064 tcp dport 39001 ct state new counter reject with tcp reset
            	}
            }
        "#]],
    );
}

/// IPv4 only and no DNS: no IPv6 leaves at all, and TPROXY needs no NAT.
#[test]
fn tproxy_v4_only_without_dns() {
    check(
        InterceptParams { dns: DnsInterception::Off, ..v4_only() },
        TcpMode::Tproxy,
        expect![[r#"
            table inet wharf {
            	chain internet {
            		counter reject with icmpx admin-prohibited
            	}

            	chain divert {
            		type route hook output priority -150; policy accept;
            		oif "lo" return
            		meta mark 0x00000064 return
            		ct direction reply return
            		meta nfproto ipv4 meta l4proto tcp meta mark set 0x00000001
            	}

            	chain deliver {
            		type filter hook prerouting priority -150; policy accept;
            		iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to 127.0.0.1:15001 accept
            	}

            	chain egress {
            		type filter hook output priority 0; policy accept;
            		meta mark 0x00000064 accept
            		ct direction reply accept
            		oif "lo" accept
            		ip daddr 127.0.0.0/8 accept
            		ip6 daddr ::1 accept
            		meta mark 0x00000001 accept
            		meta nfproto ipv6 counter reject with icmpx admin-prohibited
            		meta l4proto udp jump internet
            		meta l4proto icmp jump internet
            		meta l4proto ipv6-icmp jump internet
            		meta l4proto tcp counter reject with tcp reset
            		counter reject with icmpx admin-prohibited
            	}

            	chain control {
            		type filter hook input priority 0; policy accept;
            		iif "lo" meta mark != 0x00000001 meta mark != 0x00000064 tcp dport 39001 ct state new counter reject with tcp reset
            	}
            }
        "#]],
    );
}

#[test]
fn redirect_v4_only() {
    check(
        v4_only(),
        TcpMode::Redirect,
        expect![[r#"
            table inet wharf {
            	chain internet {
            		counter reject with icmpx admin-prohibited
            	}

            	chain rewrite {
            		type nat hook output priority -110; policy accept;
            		meta mark 0x00000064 return
            		meta nfproto ipv4 udp dport 53 redirect to :15053
            		ip daddr 127.0.0.0/8 tcp dport 53 redirect to :15053
            		oif "lo" return
            		meta nfproto ipv4 meta l4proto tcp redirect to :15001
            	}

            	chain egress {
            		type filter hook output priority 0; policy accept;
            		meta mark 0x00000064 accept
            		ct direction reply accept
            		ip daddr 127.0.0.11 counter reject with icmpx admin-prohibited
            		oif "lo" accept
            		ip daddr 127.0.0.0/8 accept
            		ip6 daddr ::1 accept
            		meta nfproto ipv6 counter reject with icmpx admin-prohibited
            		meta l4proto udp jump internet
            		meta l4proto icmp jump internet
            		meta l4proto ipv6-icmp jump internet
            		meta l4proto tcp counter reject with tcp reset
            		counter reject with icmpx admin-prohibited
            	}

            	chain control {
            		type filter hook input priority 0; policy accept;
            		iif "lo" meta mark != 0x00000064 tcp dport 39001 ct state new counter reject with tcp reset
            	}
            }
        "#]],
    );
}

/// An unspecified listener address leaves the choice to the kernel (`lo`'s address).
#[test]
fn tproxy_to_unspecified_listener() {
    let params = InterceptParams {
        tcp_listeners: vec!["0.0.0.0:15001".parse().unwrap()],
        dns: DnsInterception::Off,
        ..v4_only()
    };
    let plan = Plan::new(&params).unwrap();
    let deliver = ruleset(&plan, TcpMode::Tproxy).chains.remove(2);
    expect![[r#"iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to :15001 accept"#]]
        .assert_eq(&deliver.rules[0].to_string());
    assert!(matches!(
        deliver.rules[0].lower()[8..],
        [Expr::Immediate { dreg: Reg(1), .. }, Expr::Tproxy { addr: None, port: Reg(1), .. }, _]
    ));
}

#[test]
fn gate_rules() {
    expect!["accept"].assert_eq(&gate_rule(true).to_string());
    expect!["counter reject with icmpx admin-prohibited"].assert_eq(&gate_rule(false).to_string());
}

#[test]
fn features_name_what_a_rule_needs() {
    let plan = Plan::new(&params()).unwrap();
    let rendered: Vec<String> = ruleset(&plan, TcpMode::Tproxy)
        .chains
        .iter()
        .map(|chain| {
            let rules: Vec<String> =
                chain.rules.iter().map(|r| format!("{:?}", r.features())).collect();
            format!("{}: {:?} {}", chain.name, chain.features(), rules.join(" "))
        })
        .collect();
    expect![[r#"
        internet: [] [Reject]
        divert: [] [] [] [Conntrack] []
        deliver: [] [Tproxy] [Tproxy]
        rewrite: [Nat] [] [Nat] [Nat] [Nat]
        egress: [] [] [Conntrack] [Reject] [] [] [] [] [] [] [] [] [] [Reject] [Reject]
        control: [] [Conntrack, Reject]"#]]
    .assert_eq(&rendered.join("\n"));
}

fn check_params(params: InterceptParams, expect: Expect) {
    let plan = Plan::new(&params).and_then(|plan| plan.check_redirect().map(|()| plan));
    let actual = match plan {
        Ok(plan) => format!("{plan:?}"),
        Err(e) => format!("error: {e}"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn params_are_checked() {
    check_params(
        params(),
        expect![[
            r#"Plan { v4_listener: 127.0.0.1:15001, v6_listener: Some([::1]:15001), dns_port: Some(15053), control_port: 39001, own_mark: 100, internet: false }"#
        ]],
    );
    check_params(
        InterceptParams { tcp_listeners: vec!["[::1]:15001".parse().unwrap()], ..params() },
        expect!["error: no IPv4 TCP listener to deliver intercepted connections to"],
    );
    check_params(
        InterceptParams { tcp_listeners: vec!["127.0.0.1:15001".parse().unwrap()], ..params() },
        expect!["error: IPv6 is intercepted but there is no IPv6 TCP listener"],
    );
    check_params(
        InterceptParams { tcp_listeners: vec!["127.0.0.1:0".parse().unwrap()], ..v4_only() },
        expect!["error: the IPv4 TCP listener has port 0"],
    );
    check_params(
        InterceptParams { dns_port: 0, ..params() },
        expect!["error: the DNS listener has port 0"],
    );
    check_params(
        InterceptParams { dns_port: 0, dns: DnsInterception::Off, ..v4_only() },
        expect![[
            r#"Plan { v4_listener: 127.0.0.1:15001, v6_listener: None, dns_port: None, control_port: 39001, own_mark: 100, internet: false }"#
        ]],
    );
    check_params(
        InterceptParams { control_addr: "127.0.0.1:0".parse().unwrap(), ..params() },
        expect!["error: the control listener has port 0"],
    );
    check_params(
        InterceptParams { own_mark: 0, ..params() },
        expect!["error: own mark 0x0 is unusable: it must be non-zero and not 0x1"],
    );
    check_params(
        InterceptParams { own_mark: DIVERT_MARK, ..params() },
        expect!["error: own mark 0x1 is unusable: it must be non-zero and not 0x1"],
    );
    check_params(
        InterceptParams { tcp_listeners: vec!["127.0.0.3:15001".parse().unwrap()], ..v4_only() },
        expect![
            "error: REDIRECT delivers to 127.0.0.1 and ::1, not to the listener at 127.0.0.3:15001"
        ],
    );
}
