//! Policy routing for TPROXY (PURE): `ip rule add fwmark 0x1 lookup 100 pref 100` and
//! `ip route replace local default dev lo table 100`, per family, as rtnetlink messages.
//!
//! Both are idempotent: the rule is added with `NLM_F_EXCL` and "exists" counts as done (a fixed
//! preference makes an identical rule really identical); the route is a replace.

use std::fmt;

use super::netlink::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, Writer};
use super::rules::{DIVERT_MARK, DIVERT_RULE_PREF, DIVERT_TABLE, Family, LOOPBACK_IFINDEX};

const RTM_NEWROUTE: u16 = 24;
const RTM_NEWRULE: u16 = 32;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// `FR_ACT_TO_TBL`: look the destination up in the rule's table.
const FR_ACT_TO_TBL: u8 = 1;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;

/// `RTPROT_BOOT`, what `ip route` uses.
const RTPROT_BOOT: u8 = 3;
/// `RT_SCOPE_HOST`, what `ip route` gives an IPv4 local route.
const RT_SCOPE_HOST: u8 = 254;
/// `RT_SCOPE_UNIVERSE`, what `ip -6 route` gives any route (IPv6 ignores the scope).
const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RTN_LOCAL`: deliver locally.
const RTN_LOCAL: u8 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;

/// `EEXIST`: the rule is already there.
const EEXIST: i32 = 17;

/// One policy-routing change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteRequest {
    /// Packets marked [`DIVERT_MARK`] look up [`DIVERT_TABLE`].
    Rule(Family),
    /// Everything in [`DIVERT_TABLE`] is local, via `lo`.
    Route(Family),
}

// === impl RouteRequest ===

impl RouteRequest {
    /// The changes TPROXY needs, for IPv4 and, if `v6`, IPv6.
    pub(crate) fn for_tproxy(v6: bool) -> Vec<RouteRequest> {
        let mut requests = vec![RouteRequest::Rule(Family::V4), RouteRequest::Route(Family::V4)];
        if v6 {
            requests.extend([RouteRequest::Rule(Family::V6), RouteRequest::Route(Family::V6)]);
        }
        requests
    }

    /// Whether the kernel refusing this with `errno` still means it is in place.
    pub(crate) fn done_despite(&self, errno: i32) -> bool {
        matches!(self, RouteRequest::Rule(_)) && errno == EEXIST
    }

    /// The message, numbered `seq`.
    pub(crate) fn encode(&self, seq: u32) -> Vec<u8> {
        let mut w = Writer::default();
        match *self {
            RouteRequest::Rule(family) => encode_rule(&mut w, family, seq),
            RouteRequest::Route(family) => encode_route(&mut w, family, seq),
        }
        w.finish()
    }
}

fn encode_rule(w: &mut Writer, family: Family, seq: u32) {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE;
    w.message(RTM_NEWRULE, flags, seq, |w| {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        w.raw(&[af(family), 0, 0, 0, DIVERT_TABLE, 0, 0, FR_ACT_TO_TBL]);
        w.raw(&0u32.to_ne_bytes());
        w.attr_u32_ne(FRA_FWMARK, DIVERT_MARK);
        w.attr_u32_ne(FRA_PRIORITY, DIVERT_RULE_PREF);
    });
}

fn encode_route(w: &mut Writer, family: Family, seq: u32) {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE;
    // As iproute2 does it: IPv6 gets universe scope and an explicit `::/0`.
    let scope = match family {
        Family::V4 => RT_SCOPE_HOST,
        Family::V6 => RT_SCOPE_UNIVERSE,
    };
    w.message(RTM_NEWROUTE, flags, seq, |w| {
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        w.raw(&[af(family), 0, 0, 0, DIVERT_TABLE, RTPROT_BOOT, scope, RTN_LOCAL]);
        w.raw(&0u32.to_ne_bytes());
        if family == Family::V6 {
            w.attr(RTA_DST, &[0; 16]);
        }
        w.attr_u32_ne(RTA_OIF, LOOPBACK_IFINDEX);
    });
}

fn af(family: Family) -> u8 {
    match family {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    }
}

impl fmt::Display for RouteRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = |family| match family {
            Family::V4 => "ip",
            Family::V6 => "ip -6",
        };
        match *self {
            RouteRequest::Rule(family) => write!(
                f,
                "{} rule add fwmark {DIVERT_MARK:#x} lookup {DIVERT_TABLE} pref {DIVERT_RULE_PREF}",
                ip(family)
            ),
            RouteRequest::Route(family) => {
                write!(f, "{} route replace local default dev lo table {DIVERT_TABLE}", ip(family))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What iproute2 6.1 sends for the same commands (sequence numbers taken from it).
    #[test]
    fn matches_iproute2() {
        let rule = include_bytes!("testdata/iproute2_rule_add.bin");
        let route = include_bytes!("testdata/iproute2_route_replace.bin");
        let route6 = include_bytes!("testdata/iproute2_route6_replace.bin");
        assert_eq!(RouteRequest::Rule(Family::V4).encode(seq(rule)), rule);
        assert_eq!(RouteRequest::Route(Family::V4).encode(seq(route)), route);
        assert_eq!(RouteRequest::Route(Family::V6).encode(seq(route6)), route6);
    }

    #[test]
    fn v6_rule_differs_only_in_family() {
        let v4 = RouteRequest::Rule(Family::V4).encode(7);
        let mut v6 = RouteRequest::Rule(Family::V6).encode(7);
        assert_eq!(v6[16], AF_INET6);
        v6[16] = AF_INET;
        assert_eq!(v4, v6);
    }

    #[test]
    fn descriptions_and_tolerance() {
        let all: Vec<String> =
            RouteRequest::for_tproxy(true).iter().map(|r| r.to_string()).collect();
        expect_test::expect![[r#"
            ip rule add fwmark 0x1 lookup 100 pref 100
            ip route replace local default dev lo table 100
            ip -6 rule add fwmark 0x1 lookup 100 pref 100
            ip -6 route replace local default dev lo table 100"#]]
        .assert_eq(&all.join("\n"));
        assert_eq!(RouteRequest::for_tproxy(false).len(), 2);
        assert!(RouteRequest::Rule(Family::V4).done_despite(EEXIST));
        assert!(!RouteRequest::Route(Family::V4).done_despite(EEXIST));
        assert!(!RouteRequest::Rule(Family::V6).done_despite(1));
    }

    fn seq(message: &[u8]) -> u32 {
        u32::from_ne_bytes([message[8], message[9], message[10], message[11]])
    }
}
