//! Tests for the DNS codec: round trips, captured messages at every prefix, hostile pointers.

use std::fmt::Write as _;

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::*;

/// `www.example.com A`, answered with a CNAME to `edge.example.com` and two `A` records, plus an
/// EDNS OPT record. Hand-assembled in the shape a recursive resolver sends, with compression
/// pointers inside the CNAME data and to a name inside record data.
const RESPONSE_CNAME: &[u8] = include_bytes!("../../testdata/dns_response_cname.bin");
/// `Example.COM AAAA` as `dig` sends it: `RD` and `AD` set, an EDNS OPT record with a cookie.
const QUERY_EDNS: &[u8] = include_bytes!("../../testdata/dns_query_edns.bin");

fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "{}", line.join(" "));
    }
    out
}

fn check_hex(bytes: &[u8], expect: Expect) {
    expect.assert_eq(&hex(bytes));
}

/// Every strict prefix of `bytes` is an error (and does not panic); the whole is not.
fn check_all_prefixes<T: std::fmt::Debug>(bytes: &[u8], parse: fn(&[u8]) -> Result<T, DnsError>) {
    for end in 0..bytes.len() {
        let got = parse(&bytes[..end]);
        assert_eq!(got.unwrap_err(), DnsError::Truncated, "prefix of {end} bytes");
    }
    assert!(parse(bytes).is_ok());
}

/// A message whose first question's name is `name_bytes` (raw, starting at offset 12).
fn query_with_raw_name(name_bytes: &[u8]) -> Vec<u8> {
    let mut msg = vec![0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(name_bytes);
    msg.extend_from_slice(&[0, 1, 0, 1]);
    msg
}

#[test]
fn query_encodes_with_rd_and_class_in() {
    let bytes = encode_query(0xabcd, "Example.com.", rtype::A).unwrap();
    check_hex(
        &bytes,
        expect![[r#"
            ab cd 01 00 00 01 00 00 00 00 00 00 07 45 78 61
            6d 70 6c 65 03 63 6f 6d 00 00 01 00 01
        "#]],
    );
}

#[test]
fn query_round_trips() {
    let bytes = encode_query(7, "WWW.Example.com", rtype::AAAA).unwrap();
    let query = parse_query(&bytes).unwrap();
    expect![[r#"
        Query {
            id: 7,
            flags: 256,
            questions: [
                Question {
                    name: "www.example.com",
                    qtype: 28,
                    qclass: 1,
                },
            ],
        }
    "#]]
    .assert_debug_eq(&query);
}

#[test]
fn query_rejects_bad_names() {
    let check = |name: &str| encode_query(1, name, rtype::A).unwrap_err().to_string();
    let long_label = "a".repeat(64);
    assert_eq!(check(&long_label), "label of 64 bytes exceeds 63");
    let long_name = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".");
    assert_eq!(long_name.len(), 254);
    assert_eq!(check(&long_name), "name exceeds 255 bytes");
    assert_eq!(check("a..b"), r#"empty label in name "a..b""#);
    assert_eq!(check(".a"), r#"empty label in name ".a""#);
    assert_eq!(check("a\\"), r#"bad escape in name "a\\""#);
    assert_eq!(check("a\\256"), r#"bad escape in name "a\\256""#);
    // 253 characters is the longest name that fits.
    assert!(encode_query(1, &long_name[1..], rtype::A).is_ok());
}

#[test]
fn root_name_is_empty() {
    let query = parse_query(&encode_query(1, ".", rtype::ANY).unwrap()).unwrap();
    assert_eq!(query.questions[0].name, "");
}

#[test]
fn escaped_bytes_round_trip() {
    let bytes = query_with_raw_name(b"\x05a.b\\\x01\x03com\x00");
    let name = parse_query(&bytes).unwrap().questions.remove(0).name;
    assert_eq!(name, "a\\046b\\092\\001.com");
    assert_eq!(encode_query(0, &name, rtype::A).unwrap()[12..], bytes[12..]);
}

#[test]
fn captured_query_parses() {
    expect![[r#"
        Query {
            id: 4660,
            flags: 288,
            questions: [
                Question {
                    name: "example.com",
                    qtype: 28,
                    qclass: 1,
                },
            ],
        }
    "#]]
    .assert_debug_eq(&parse_query(QUERY_EDNS).unwrap());
}

#[test]
fn captured_response_parses() {
    expect![[r#"
        Response {
            id: 48879,
            flags: 33152,
            rcode: 0,
            questions: [
                Question {
                    name: "www.example.com",
                    qtype: 1,
                    qclass: 1,
                },
            ],
            answers: [
                Answer {
                    name: "www.example.com",
                    rtype: 5,
                    ttl: 300,
                    data: Other(
                        [
                            4,
                            101,
                            100,
                            103,
                            101,
                            192,
                            16,
                        ],
                    ),
                },
                Answer {
                    name: "edge.example.com",
                    rtype: 1,
                    ttl: 60,
                    data: A(
                        192.0.2.10,
                    ),
                },
                Answer {
                    name: "edge.example.com",
                    rtype: 1,
                    ttl: 60,
                    data: A(
                        198.51.100.7,
                    ),
                },
            ],
        }
    "#]]
    .assert_debug_eq(&parse_response(RESPONSE_CNAME).unwrap());
}

#[test]
fn every_prefix_is_truncated() {
    check_all_prefixes(RESPONSE_CNAME, parse_response);
    check_all_prefixes(QUERY_EDNS, parse_query);
}

#[test]
fn queries_and_responses_are_told_apart() {
    assert_eq!(parse_query(RESPONSE_CNAME), Err(DnsError::NotAQuery));
    assert_eq!(parse_response(QUERY_EDNS), Err(DnsError::NotAResponse));
}

#[test]
fn answer_round_trips() {
    let query = parse_query(QUERY_EDNS).unwrap();
    let answers = [
        Answer::ip("example.com", "2001:db8::1".parse().unwrap(), 30),
        Answer::ip("other.example", "10.0.0.1".parse().unwrap(), 5),
    ];
    let reply = Reply { rcode: rcode::NOERROR, authoritative: true, answers: &answers };
    let bytes = encode_answer(&query, &reply).unwrap();
    // The first answer's name is a pointer to the question (`c0 0c`).
    check_hex(
        &bytes,
        expect![[r#"
            12 34 85 80 00 01 00 02 00 00 00 00 07 65 78 61
            6d 70 6c 65 03 63 6f 6d 00 00 1c 00 01 c0 0c 00
            1c 00 01 00 00 00 1e 00 10 20 01 0d b8 00 00 00
            00 00 00 00 00 00 00 00 01 05 6f 74 68 65 72 07
            65 78 61 6d 70 6c 65 00 00 01 00 01 00 00 00 05
            00 04 0a 00 00 01
        "#]],
    );
    let response = parse_response(&bytes).unwrap();
    assert_eq!(response.id, query.id);
    assert_eq!(
        response.flags & (FLAG_QR | FLAG_AA | FLAG_RD | FLAG_TC),
        FLAG_QR | FLAG_AA | FLAG_RD
    );
    assert_eq!(response.questions, query.questions);
    assert_eq!(response.answers, answers);
    assert_eq!(response.ips().count(), 2);
}

#[test]
fn nxdomain_echoes_the_question() {
    let query = parse_query(&encode_query(99, "nope.example", rtype::A).unwrap()).unwrap();
    let response = parse_response(&encode_nxdomain(&query).unwrap()).unwrap();
    assert_eq!(response.rcode, rcode::NXDOMAIN);
    assert_eq!(response.id, 99);
    assert_ne!(response.flags & FLAG_AA, 0);
    assert_eq!(response.questions, query.questions);
    assert!(response.answers.is_empty());
}

#[test]
fn pointer_loops_are_errors() {
    // A name that is a pointer to itself.
    let self_loop = query_with_raw_name(&[0xC0, 0x0C]);
    assert_eq!(parse_query(&self_loop), Err(DnsError::PointerLoop { at: 12 }));
    // `a` then a pointer back to the `a`: each jump is backwards, but it revisits the name.
    let two_step = query_with_raw_name(&[1, b'a', 0xC0, 0x0C]);
    assert_eq!(parse_query(&two_step), Err(DnsError::PointerLoop { at: 14 }));
    // A pointer forwards.
    let forward = query_with_raw_name(&[0xC0, 0x20]);
    assert_eq!(parse_query(&forward), Err(DnsError::PointerLoop { at: 12 }));
}

#[test]
fn reserved_label_types_are_errors() {
    let bytes = query_with_raw_name(&[0x40, 0]);
    assert_eq!(parse_query(&bytes), Err(DnsError::BadLabel { at: 12 }));
}

#[test]
fn address_records_with_wrong_lengths_are_errors() {
    let mut bytes = RESPONSE_CNAME.to_vec();
    // The first A record's RDLENGTH (offset 0x3e) says 4; make it 3 and drop a byte.
    bytes[0x3f] = 3;
    bytes.remove(0x40);
    assert_eq!(parse_response(&bytes), Err(DnsError::BadRdata { rtype: rtype::A, len: 3 }));
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_query(&bytes);
        let _ = parse_response(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_mutated_messages(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        for original in [RESPONSE_CNAME, QUERY_EDNS] {
            let mut bytes = original.to_vec();
            for (at, value) in &edits {
                let len = bytes.len();
                bytes[at % len] = *value;
            }
            let _ = parse_query(&bytes);
            let _ = parse_response(&bytes);
        }
    }

    #[test]
    fn names_round_trip(labels in proptest::collection::vec("[a-z0-9_-]{1,20}", 0..8)) {
        let name = labels.join(".");
        let query = parse_query(&encode_query(1, &name, rtype::A).unwrap()).unwrap();
        prop_assert_eq!(&query.questions[0].name, &name);
    }
}
