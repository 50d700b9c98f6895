//! Tier-1 tests of the probe and fallback logic, against a fake kernel.

use std::sync::Arc;

use expect_test::{Expect, expect};

use super::fake::FakeNetlink;
use super::rules::tests::params;
use super::*;

#[derive(Debug)]
struct Failing;

impl Interception for Failing {
    fn setup(&self, _params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        Err(InterceptError::Step {
            step: "iptables -t mangle -N DIVERT".to_owned(),
            source: "exit status 4".into(),
        })
    }

    fn set_internet(&self, _enabled: bool) -> Result<(), InterceptError> {
        Ok(())
    }
}

#[test]
fn proof_only_on_success() {
    assert!(setup_interception(&NoInterception, &params()).is_ok());
    let err = setup_interception(&Failing, &params()).unwrap_err();
    assert_eq!(err.to_string(), "interception setup failed at iptables -t mangle -N DIVERT");
}

/// Runs `setup` against `kernel` and renders the outcome, the error's source chain and the
/// kernel's log.
fn check(kernel: FakeNetlink, modes: Modes, params: InterceptParams, expect: Expect) {
    let kernel = Arc::new(kernel);
    let interception = NetlinkInterception::with_netlink(Box::new(Arc::clone(&kernel)), modes);
    let outcome = match interception.setup(&params) {
        Ok(mode) => format!("mode: {}", mode.as_str()),
        Err(e) => format!("error: {}", chain(&e)),
    };
    expect.assert_eq(&format!("{outcome}\n{}", kernel.log()));
}

fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn tproxy_when_the_kernel_has_it() {
    check(
        FakeNetlink::default(),
        Modes::Probe,
        params(),
        expect![[r#"
            mode: tproxy
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 35 messages [internet, divert, deliver, rewrite, egress, control]: ok"#]],
    );
}

/// A restarted sidecar finds its fwmark rules in place: that is success, not an error.
#[test]
fn existing_fwmark_rules_are_fine() {
    check(
        FakeNetlink::with_rules_in_place(),
        Modes::Probe,
        InterceptParams { families: IpFamilies::V4Only, ..params() },
        expect![[r#"
            mode: tproxy
            route ip rule add fwmark 0x1 lookup 100 pref 100: errno 17
            route ip route replace local default dev lo table 100: ok
            commit 32 messages [internet, divert, deliver, rewrite, egress, control]: ok"#]],
    );
}

#[test]
fn redirect_when_tproxy_is_missing() {
    check(
        FakeNetlink::lacking(&[Feature::Tproxy]),
        Modes::Probe,
        params(),
        expect![[r#"
            mode: redirect
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 35 messages [internet, divert, deliver, rewrite, egress, control]: refused #14 (add rule inet wharf deliver iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to 127.0.0.1:15001 accept) errno 2
            commit 29 messages [internet, rewrite, egress, control]: ok"#]],
    );
}

#[test]
fn redirect_when_policy_routing_is_missing() {
    check(
        FakeNetlink::lacking(&[Feature::PolicyRouting]),
        Modes::Probe,
        params(),
        expect![[r#"
            mode: redirect
            route ip rule add fwmark 0x1 lookup 100 pref 100: errno 95
            commit 29 messages [internet, rewrite, egress, control]: ok"#]],
    );
}

#[test]
fn neither_tproxy_nor_nat_is_fatal() {
    check(
        FakeNetlink::lacking(&[Feature::Tproxy, Feature::Nat]),
        Modes::Probe,
        InterceptParams { dns: DnsInterception::Off, ..params() },
        expect![[r#"
            error: the kernel lacks nft_tproxy and nft_redir (NAT): cannot intercept TCP; refusing to run unenforced
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 29 messages [internet, divert, deliver, egress, control]: refused #13 (add rule inet wharf deliver iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to 127.0.0.1:15001 accept) errno 2
            commit 25 messages [internet, rewrite, egress, control]: refused #4 (add chain inet wharf rewrite { type nat hook output priority -110; policy accept; }) errno 2"#]],
    );
}

/// Without DNS interception TPROXY needs no NAT at all.
#[test]
fn tproxy_without_nat_when_dns_is_not_intercepted() {
    check(
        FakeNetlink::lacking(&[Feature::Nat]),
        Modes::Probe,
        InterceptParams { dns: DnsInterception::Off, ..params() },
        expect![[r#"
            mode: tproxy
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 29 messages [internet, divert, deliver, egress, control]: ok"#]],
    );
}

/// With it, a kernel without NAT cannot intercept DNS, and REDIRECT would not help.
#[test]
fn dns_needs_nat() {
    check(
        FakeNetlink::lacking(&[Feature::Nat]),
        Modes::Probe,
        params(),
        expect![[r#"
            error: the kernel lacks nft_redir (NAT): cannot intercept DNS; refusing to run unenforced
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 35 messages [internet, divert, deliver, rewrite, egress, control]: refused #6 (add chain inet wharf rewrite { type nat hook output priority -110; policy accept; }) errno 2"#]],
    );
}

#[test]
fn conntrack_is_needed_in_every_mode() {
    check(
        FakeNetlink::lacking(&[Feature::Conntrack]),
        Modes::Probe,
        params(),
        expect![[r#"
            error: the kernel lacks nft_ct (conntrack): cannot enforce the egress rules; refusing to run unenforced
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 35 messages [internet, divert, deliver, rewrite, egress, control]: refused #12 (add rule inet wharf divert ct direction reply return) errno 2"#]],
    );
}

#[test]
fn redirect_only_never_touches_policy_routing() {
    check(
        FakeNetlink::default(),
        Modes::RedirectOnly,
        params(),
        expect![[r#"
            mode: redirect
            commit 29 messages [internet, rewrite, egress, control]: ok"#]],
    );
    check(
        FakeNetlink::lacking(&[Feature::Nat]),
        Modes::RedirectOnly,
        params(),
        expect![[r#"
            error: the kernel lacks nft_redir (NAT): cannot intercept TCP; refusing to run unenforced
            commit 29 messages [internet, rewrite, egress, control]: refused #4 (add chain inet wharf rewrite { type nat hook output priority -110; policy accept; }) errno 2"#]],
    );
}

/// REDIRECT cannot reach a listener off 127.0.0.1, so it is not even tried.
#[test]
fn redirect_needs_a_loopback_listener() {
    let params = InterceptParams {
        families: IpFamilies::V4Only,
        tcp_listeners: vec!["127.0.0.3:15001".parse().unwrap()],
        ..params()
    };
    check(
        FakeNetlink::lacking(&[Feature::Tproxy]),
        Modes::Probe,
        params,
        expect![[r#"
            error: interception parameters are unusable: REDIRECT delivers to 127.0.0.1 and ::1, not to the listener at 127.0.0.3:15001
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            commit 32 messages [internet, divert, deliver, rewrite, egress, control]: refused #14 (add rule inet wharf deliver iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to 127.0.0.3:15001 accept) errno 2"#]],
    );
}

/// Anything but "unsupported" is fatal at once, naming the refused message.
#[test]
fn other_refusals_are_fatal() {
    check(
        FakeNetlink::refusing(1),
        Modes::Probe,
        params(),
        expect![[r#"
            error: interception setup failed at add table inet wharf: the kernel refused it: Operation not permitted (os error 1)
            route ip rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip route replace local default dev lo table 100: ok
            route ip -6 rule add fwmark 0x1 lookup 100 pref 100: ok
            route ip -6 route replace local default dev lo table 100: ok
            commit 35 messages [internet, divert, deliver, rewrite, egress, control]: refused #0 (add table inet wharf) errno 1"#]],
    );
}

#[test]
fn bad_params_touch_nothing() {
    check(
        FakeNetlink::default(),
        Modes::Probe,
        InterceptParams { own_mark: 0, ..params() },
        expect![[r#"
            error: interception parameters are unusable: own mark 0x0 is unusable: it must be non-zero and not 0x1
        "#]],
    );
}

#[test]
fn internet_gate_is_one_batch() {
    let kernel = Arc::new(FakeNetlink::default());
    let interception =
        NetlinkInterception::with_netlink(Box::new(Arc::clone(&kernel)), Modes::Probe);
    interception.set_internet(true).unwrap();
    interception.set_internet(false).unwrap();
    expect![[r#"
        commit 2 messages [flush internet, internet: accept]: ok
        commit 2 messages [flush internet, internet: counter reject with icmpx admin-prohibited]: ok"#]]
    .assert_eq(&kernel.log());

    let interception =
        NetlinkInterception::with_netlink(Box::new(FakeNetlink::refusing(2)), Modes::Probe);
    let err = interception.set_internet(true).unwrap_err();
    expect!["cannot open the internet gate at flush chain inet wharf internet: the kernel refused it: No such file or directory (os error 2)"]
        .assert_eq(&chain(&err));
}
