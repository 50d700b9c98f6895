//! Tests for the ClientHello parser: captured hellos at every prefix and split, hostile inputs.

use proptest::prelude::*;

use super::*;

/// `openssl s_client -servername example.com -alpn h2,http/1.1` (TLS 1.3, one record).
const HELLO_TLS13: &[u8] = include_bytes!("../../testdata/client_hello_tls13.bin");
/// `openssl s_client -noservername`: no `server_name` extension, no ALPN.
const HELLO_NO_SNI: &[u8] = include_bytes!("../../testdata/client_hello_no_sni.bin");
/// `openssl s_client -servername www.Example.org -tls1_2 -no_ticket`: mixed-case name.
const HELLO_TLS12: &[u8] = include_bytes!("../../testdata/client_hello_tls12.bin");

fn info(sni: Option<&str>, alpn: &[&[u8]]) -> ClientHelloInfo {
    ClientHelloInfo { sni: sni.map(str::to_owned), alpn: alpn.iter().map(|p| p.to_vec()).collect() }
}

/// Every strict prefix of `bytes` is "incomplete"; the whole parses to `expected`.
fn check_all_prefixes(bytes: &[u8], expected: &ClientHelloInfo) {
    for end in 0..bytes.len() {
        assert_eq!(parse(&bytes[..end]), Ok(None), "prefix of {end} bytes");
    }
    assert_eq!(parse(bytes).as_ref(), Ok(&Some(expected.clone())));
}

/// The handshake message carried by a single-record capture.
fn handshake_of(record: &[u8]) -> &[u8] {
    &record[RECORD_HEADER_LEN..]
}

/// Frames `handshake` as records, cutting it at `cuts` (offsets into `handshake`).
fn frame(handshake: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&handshake.len())) {
        if end <= start {
            continue;
        }
        let fragment = &handshake[start..end];
        out.extend_from_slice(&[CONTENT_TYPE_HANDSHAKE, 3, 1]);
        out.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
        out.extend_from_slice(fragment);
        start = end;
    }
    out
}

/// A ClientHello handshake message with these extensions (type, data), as a client builds it.
fn hello_with(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session_id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    let mut ext = Vec::new();
    for (kind, data) in extensions {
        ext.extend_from_slice(&kind.to_be_bytes());
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(data);
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

fn sni_ext(names: &[(u8, &[u8])]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    (EXT_SERVER_NAME, data)
}

fn alpn_ext(protocols: &[&[u8]]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for p in protocols {
        list.push(p.len() as u8);
        list.extend_from_slice(p);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    (EXT_ALPN, data)
}

fn parse_hello(extensions: &[(u16, Vec<u8>)]) -> Result<Option<ClientHelloInfo>, SniError> {
    parse(&frame(&hello_with(extensions), &[]))
}

#[test]
fn captured_hellos_at_every_prefix() {
    check_all_prefixes(HELLO_TLS13, &info(Some("example.com"), &[b"h2", b"http/1.1"]));
    check_all_prefixes(HELLO_NO_SNI, &info(None, &[]));
    check_all_prefixes(HELLO_TLS12, &info(Some("www.example.org"), &[]));
}

#[test]
fn a_hello_split_over_records_at_every_point() {
    let handshake = handshake_of(HELLO_TLS13);
    let expected = info(Some("example.com"), &[b"h2", b"http/1.1"]);
    for cut in 1..handshake.len() {
        check_all_prefixes(&frame(handshake, &[cut]), &expected);
    }
    // One byte per record: the header is spread over four records.
    let cuts: Vec<usize> = (1..handshake.len()).collect();
    check_all_prefixes(&frame(handshake, &cuts), &expected);
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut bytes = HELLO_TLS13.to_vec();
    bytes.extend_from_slice(&[0x17, 3, 3, 0, 2, 1, 2]);
    assert_eq!(parse(&bytes).unwrap().unwrap().sni.as_deref(), Some("example.com"));
}

#[test]
fn other_protocols_are_errors_from_the_first_bytes() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(SniError::NotHandshake(b'G')));
    assert_eq!(parse(b"G"), Err(SniError::NotHandshake(b'G')));
    assert_eq!(parse(b"SSH-2.0-OpenSSH_9.6\r\n"), Err(SniError::NotHandshake(b'S')));
    assert_eq!(parse(&[0x16, 0x02]), Err(SniError::Version(2, 0)));
    assert_eq!(parse(&[0x16, 3, 1, 0, 0]), Err(SniError::RecordLength(0)));
    assert_eq!(parse(&[0x16, 3, 1, 0x40, 1]), Err(SniError::RecordLength(16385)));
    // A ServerHello (type 2) is not what a client sends first.
    assert_eq!(parse(&[0x16, 3, 3, 0, 4, 2, 0, 0, 0]), Err(SniError::NotClientHello(2)));
    // An alert record in the middle of a fragmented hello.
    let mut bytes = frame(handshake_of(HELLO_TLS13), &[10]);
    bytes[RECORD_HEADER_LEN + 10] = 0x15;
    assert_eq!(parse(&bytes), Err(SniError::NotHandshake(0x15)));
}

#[test]
fn oversized_hellos_are_refused_before_they_arrive() {
    let header = [0x16, 3, 1, 0, 4, HANDSHAKE_CLIENT_HELLO, 0, 0x40, 0x01];
    assert_eq!(parse(&header), Err(SniError::TooLong(16385)));
    let at_limit = [0x16, 3, 1, 0, 4, HANDSHAKE_CLIENT_HELLO, 0, 0x40, 0x00];
    assert_eq!(parse(&at_limit), Ok(None));
}

#[test]
fn names_are_checked_and_normalised() {
    let name = |raw: &[u8]| parse_hello(&[sni_ext(&[(0, raw)])]).map(|i| i.unwrap().sni);
    assert_eq!(name(b"Example.COM."), Ok(Some("example.com".to_owned())));
    assert_eq!(name(b"a_b-c.example"), Ok(Some("a_b-c.example".to_owned())));
    for bad in [
        b"".as_slice(),
        b".",
        b"a..b",
        b".a",
        b"exa mple.com",
        b"example.com\r\nX-Evil: 1",
        b"caf\xc3\xa9.example",
        &[b'a'; 64],
    ] {
        assert_eq!(name(bad), Err(SniError::BadName), "{:?}", String::from_utf8_lossy(bad));
    }
    let tens: Vec<u8> =
        std::iter::repeat_n(b"abcdefghi.".as_slice(), 25).flatten().copied().collect();
    let longest = [tens.as_slice(), b"abc"].concat();
    assert_eq!(name(&longest).map(|n| n.map(|n| n.len())), Ok(Some(253)));
    assert_eq!(name(&[tens.as_slice(), b"abcd"].concat()), Err(SniError::BadName));
}

#[test]
fn ambiguous_extensions_are_errors() {
    let sni = sni_ext(&[(0, b"a.example")]);
    assert_eq!(parse_hello(&[sni.clone(), sni.clone()]), Err(SniError::DuplicateExtension(0)));
    assert_eq!(
        parse_hello(&[sni_ext(&[(0, b"a.example"), (0, b"b.example")])]),
        Err(SniError::Malformed("two host names"))
    );
    // Unknown name types are skipped.
    let other_type = parse_hello(&[sni_ext(&[(7, b"opaque"), (0, b"a.example")])]).unwrap();
    assert_eq!(other_type.unwrap().sni.as_deref(), Some("a.example"));
    assert_eq!(
        parse_hello(&[(EXT_SERVER_NAME, vec![0, 0])]),
        Err(SniError::Malformed("empty server_name_list"))
    );
    assert_eq!(parse_hello(&[alpn_ext(&[b""])]), Err(SniError::Malformed("empty protocol name")));
    assert_eq!(parse_hello(&[alpn_ext(&[])]), Err(SniError::Malformed("empty protocol_name_list")));
    assert_eq!(
        parse_hello(&[(EXT_SERVER_NAME, vec![0, 4, 0, 0, 5, b'a'])]),
        Err(SniError::Malformed("server name"))
    );
}

#[test]
fn truncated_fields_inside_a_complete_message_are_malformed() {
    let hello = hello_with(&[sni_ext(&[(0, b"a.example")]), alpn_ext(&[b"http/1.1"])]);
    // Shorten the declared handshake length (and the record) one byte at a time: the message
    // is "complete" but its fields no longer add up. No cut may panic or succeed wrongly.
    let bare_len = 2 + 32 + 1 + 4 + 2;
    for len in (0..hello.len() - HANDSHAKE_HEADER_LEN).filter(|&len| len != bare_len) {
        let mut msg = hello[..HANDSHAKE_HEADER_LEN + len].to_vec();
        msg[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        let got = parse(&frame(&msg, &[]));
        assert!(matches!(got, Err(SniError::Malformed(_))), "{len}: {got:?}");
    }
    // No extensions block at all is an SSL 3.0-style hello: valid, nameless.
    let bare = &hello[HANDSHAKE_HEADER_LEN..HANDSHAKE_HEADER_LEN + bare_len];
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO, 0, 0, bare.len() as u8];
    msg.extend_from_slice(bare);
    assert_eq!(parse(&frame(&msg, &[])), Ok(Some(ClientHelloInfo::default())));
}

fn host_label() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,20}"
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes);
        let mut tls = vec![0x16, 3, 1];
        tls.extend_from_slice(&bytes);
        let _ = parse(&tls);
    }

    #[test]
    fn mutated_captures_never_panic(index in 0..HELLO_TLS13.len(), byte in any::<u8>()) {
        let mut bytes = HELLO_TLS13.to_vec();
        bytes[index] = byte;
        let _ = parse(&bytes);
    }

    #[test]
    fn built_hellos_round_trip_through_any_framing(
        labels in proptest::collection::vec(host_label(), 1..4),
        alpn in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..12), 0..4),
        cuts in proptest::collection::vec(1usize..200, 0..4),
    ) {
        let name = labels.join(".");
        let alpn_refs: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
        let mut extensions = vec![sni_ext(&[(0, name.as_bytes())])];
        if !alpn.is_empty() {
            extensions.push(alpn_ext(&alpn_refs));
        }
        let hello = hello_with(&extensions);
        let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < hello.len()).collect();
        cuts.sort_unstable();
        let bytes = frame(&hello, &cuts);
        let expected = ClientHelloInfo { sni: Some(name), alpn };
        for end in 0..bytes.len() {
            prop_assert_eq!(parse(&bytes[..end]), Ok(None));
        }
        prop_assert_eq!(parse(&bytes), Ok(Some(expected)));
    }
}
