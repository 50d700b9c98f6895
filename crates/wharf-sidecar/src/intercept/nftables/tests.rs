//! The encoding against what `nft` 1.0.6 sends for the same ruleset text.
//!
//! Each `testdata/nft_*.bin` is the batch `nft` 1.0.6 sent for a file holding
//! `table inet wharf`, `delete table inet wharf` and then our rendering of the ruleset
//! (`ruleset(..).to_string()`, which is valid nft input). To regenerate one after changing the
//! rules, run in a scratch namespace, as root:
//! `ip netns exec NS strace -e trace=sendmsg -e write=all -s 0 nft -f FILE` and keep the bytes
//! of the one `sendmsg` (the batch). `nft` numbers the batch from 0 and asks for no
//! acknowledgements; ours differ only in `NLM_F_ACK`, which the comparison clears.

use expect_test::expect;

use super::*;
use crate::intercept::InterceptParams;
use crate::intercept::rules::tests::params;
use crate::intercept::rules::{Plan, TcpMode, ruleset};
use crate::intercept::{DnsInterception, IpFamilies};

fn v4_only() -> InterceptParams {
    InterceptParams {
        families: IpFamilies::V4Only,
        tcp_listeners: vec!["127.0.0.1:15001".parse().unwrap()],
        ..params()
    }
}

/// Encodes the ruleset for `params` and `mode` and compares it with `nft`'s bytes.
fn check(params: InterceptParams, mode: TcpMode, nft: &[u8]) {
    let ruleset = ruleset(&Plan::new(&params).unwrap(), mode);
    let ours = without_acks(&NftBatch::replace(&ruleset).encode(0));
    // Compare readable dumps first, for a useful diff; then the bytes.
    assert_eq!(dump(&ours), dump(nft));
    assert_eq!(ours, nft);
}

#[test]
fn tproxy_both_families_matches_nft() {
    check(params(), TcpMode::Tproxy, include_bytes!("../testdata/nft_tproxy_both.bin"));
}

#[test]
fn redirect_both_families_matches_nft() {
    let params = InterceptParams { internet: true, ..params() };
    check(params, TcpMode::Redirect, include_bytes!("../testdata/nft_redirect_both.bin"));
}

#[test]
fn tproxy_v4_only_matches_nft() {
    let params = InterceptParams { dns: DnsInterception::Off, ..v4_only() };
    check(params, TcpMode::Tproxy, include_bytes!("../testdata/nft_tproxy_v4.bin"));
}

#[test]
fn redirect_v4_only_matches_nft() {
    check(v4_only(), TcpMode::Redirect, include_bytes!("../testdata/nft_redirect_v4.bin"));
}

#[test]
fn tproxy_to_unspecified_listener_matches_nft() {
    let params = InterceptParams {
        tcp_listeners: vec!["0.0.0.0:15001".parse().unwrap()],
        dns: DnsInterception::Off,
        ..v4_only()
    };
    check(params, TcpMode::Tproxy, include_bytes!("../testdata/nft_tproxy_unspec.bin"));
}

#[test]
fn every_message_asks_for_an_ack_but_the_batch_markers() {
    let batch = NftBatch::set_internet(true);
    let bytes = batch.encode(41);
    let flags: Vec<String> =
        messages(&bytes).map(|m| format!("seq {} flags {:#06x}", seq(m), flags(m))).collect();
    expect![[r#"
        seq 41 flags 0x0001
        seq 42 flags 0x0005
        seq 43 flags 0x0c05
        seq 44 flags 0x0001"#]]
    .assert_eq(&flags.join("\n"));
    assert_eq!(batch.index_of(41, 41), None, "the batch begin is no message of ours");
    assert_eq!(batch.index_of(41, 42), Some(0));
    assert_eq!(batch.index_of(41, 43), Some(1));
    assert_eq!(batch.index_of(41, 44), None, "the batch end neither");
    assert_eq!(batch.index_of(41, 7), None);
}

#[test]
fn gate_batch() {
    let dumped = dump(&NftBatch::set_internet(false).encode(0));
    expect![[r#"
        type 0x0010 flags 0x0001 seq 0 hdr 00 00 00 0a
        type 0x0a08 flags 0x0005 seq 1 hdr 01 00 00 00
          1: 77 68 61 72 66 00
          2: 69 6e 74 65 72 6e 65 74 00
        type 0x0a06 flags 0x0c05 seq 2 hdr 01 00 00 00
          1: 77 68 61 72 66 00
          2: 69 6e 74 65 72 6e 65 74 00
          4 {
            1 {
              1: 63 6f 75 6e 74 65 72 00
              2 {
              }
            }
            1 {
              1: 72 65 6a 65 63 74 00
              2 {
                1: 00 00 00 02
                2: 03
              }
            }
          }
        type 0x0011 flags 0x0001 seq 3 hdr 00 00 00 0a
    "#]]
    .assert_eq(&dumped);
}

#[test]
fn messages_describe_themselves() {
    let plan = Plan::new(&v4_only()).unwrap();
    let batch = NftBatch::replace(&ruleset(&plan, TcpMode::Redirect));
    let lines: Vec<String> = batch.messages().iter().take(5).map(ToString::to_string).collect();
    expect![[r#"
        add table inet wharf
        delete table inet wharf
        add table inet wharf
        add chain inet wharf internet
        add chain inet wharf rewrite { type nat hook output priority -110; policy accept; }"#]]
    .assert_eq(&lines.join("\n"));
    assert_eq!(
        NftBatch::set_internet(true).messages()[0].to_string(),
        "flush chain inet wharf internet"
    );
}

// === helpers: walking netlink bytes ===

fn messages(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if bytes.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
        let (message, rest) = bytes.split_at(len.div_ceil(4) * 4);
        bytes = rest;
        Some(&message[..len])
    })
}

fn flags(message: &[u8]) -> u16 {
    u16::from_ne_bytes([message[6], message[7]])
}

fn seq(message: &[u8]) -> u32 {
    u32::from_ne_bytes(message[8..12].try_into().unwrap())
}

fn without_acks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages(bytes) {
        let start = out.len();
        out.extend_from_slice(message);
        let cleared = flags(message) & !crate::intercept::netlink::NLM_F_ACK;
        out[start + 6..start + 8].copy_from_slice(&cleared.to_ne_bytes());
    }
    out
}

/// One line per message and per attribute, nested attributes indented.
fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for message in messages(bytes) {
        let kind = u16::from_ne_bytes([message[4], message[5]]);
        out.push_str(&format!(
            "type {kind:#06x} flags {:#06x} seq {} hdr {}\n",
            flags(message),
            seq(message),
            hex(&message[16..20])
        ));
        dump_attrs(&message[20..], 1, &mut out);
    }
    out
}

fn dump_attrs(mut bytes: &[u8], depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    while bytes.len() >= 4 {
        let len = u16::from_ne_bytes([bytes[0], bytes[1]]) as usize;
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
        let body = &bytes[4..len];
        if kind & 0x8000 != 0 {
            out.push_str(&format!("{indent}{} {{\n", kind & 0x3fff));
            dump_attrs(body, depth + 1, out);
            out.push_str(&format!("{indent}}}\n"));
        } else {
            out.push_str(&format!("{indent}{kind}: {}\n", hex(body)));
        }
        bytes = &bytes[(len.div_ceil(4) * 4).min(bytes.len())..];
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}
