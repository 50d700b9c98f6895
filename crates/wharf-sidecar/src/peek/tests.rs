//! Tests for first-byte detection: captured ClientHellos, HTTP heads, silence, and replay.

use tokio::io::{AsyncWriteExt as _, DuplexStream};

use super::*;

const HELLO: &[u8] = include_bytes!("../../../wharf-wire/testdata/client_hello_tls13.bin");
const PEEK: Duration = Duration::from_millis(150);

/// An app whose side of the connection is `app`; the sidecar reads the other end.
fn pair() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(1 << 20)
}

async fn peek_after(writes: &[(&[u8], Duration)], close: bool) -> Peeked {
    let (mut app, mut sidecar) = pair();
    let writes: Vec<(Vec<u8>, Duration)> = writes.iter().map(|(b, d)| (b.to_vec(), *d)).collect();
    let writer = tokio::spawn(async move {
        for (bytes, delay) in writes {
            tokio::time::sleep(delay).await;
            app.write_all(&bytes).await.unwrap();
        }
        if close {
            app.shutdown().await.unwrap();
        }
        // Keep the app's end open (unless closed) until the test is over.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(app);
    });
    let peeked = peek(&mut sidecar, PEEK).await.unwrap();
    writer.abort();
    peeked
}

#[tokio::test(start_paused = true)]
async fn a_client_hello_names_the_server() {
    let peeked = peek_after(&[(HELLO, Duration::ZERO)], false).await;
    assert_eq!(peeked.sni(), Some("example.com"));
    assert!(peeked.is_tls());
    let FirstBytes::Tls(info) = &peeked.first else { panic!("{peeked:?}") };
    assert_eq!(info.alpn, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(peeked.bytes, HELLO);
}

#[tokio::test(start_paused = true)]
async fn a_hello_in_pieces_is_waited_for() {
    let (a, b) = HELLO.split_at(7);
    let peeked = peek_after(&[(a, Duration::ZERO), (b, Duration::from_millis(500))], false).await;
    assert_eq!(peeked.sni(), Some("example.com"));
    assert_eq!(peeked.bytes, HELLO);
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_hello_is_plain_tcp_at_the_deadline_or_eof() {
    let part = &HELLO[..100];
    let started = Instant::now();
    let peeked = peek_after(&[(part, Duration::ZERO)], false).await;
    assert_eq!((peeked.first.clone(), peeked.bytes.as_slice()), (FirstBytes::Opaque, part));
    assert_eq!(started.elapsed(), COMPLETE_TIMEOUT);
    let peeked = peek_after(&[(part, Duration::ZERO)], true).await;
    assert_eq!((peeked.first, peeked.bytes.as_slice()), (FirstBytes::Opaque, part));
}

#[tokio::test(start_paused = true)]
async fn http_on_any_port_names_the_host() {
    let raw = b"GET /x HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n\r\nbody";
    let peeked = peek_after(&[(raw, Duration::ZERO)], false).await;
    assert_eq!(peeked.http_host(), Some("Example.com"));
    assert!(!peeked.is_tls());
    assert_eq!(peeked.bytes, raw, "the body read with the head is kept");

    // The head may come in pieces, the method itself split.
    let peeked = peek_after(
        &[
            (b"PO", Duration::ZERO),
            (b"ST / HTTP/1.1\r\nHost: a.test\r\n", Duration::from_millis(300)),
            (b"\r\n", Duration::from_millis(300)),
        ],
        false,
    )
    .await;
    assert_eq!(peeked.http_host(), Some("a.test"));
}

#[tokio::test(start_paused = true)]
async fn http_without_a_usable_host_is_still_http() {
    let peeked = peek_after(&[(b"GET / HTTP/1.0\r\n\r\n", Duration::ZERO)], false).await;
    assert_eq!(peeked.first, FirstBytes::Http { host: None });
}

#[tokio::test(start_paused = true)]
async fn silence_is_plain_tcp_after_the_peek_timeout() {
    let started = Instant::now();
    let peeked = peek_after(&[], false).await;
    assert_eq!(peeked, Peeked { bytes: Vec::new(), first: FirstBytes::Opaque });
    assert_eq!(started.elapsed(), PEEK);
    // A client that closes without a word is plain TCP at once.
    let started = Instant::now();
    let peeked = peek_after(&[], true).await;
    assert_eq!(peeked.first, FirstBytes::Opaque);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn other_protocols_are_plain_tcp_at_once() {
    for raw in [
        b"SSH-2.0-OpenSSH_9.6\r\n".as_slice(),
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GETX / HTTP/1.1\r\n\r\n",
        b"\x16\x01",
    ] {
        let started = Instant::now();
        let peeked = peek_after(&[(raw, Duration::ZERO)], false).await;
        assert_eq!(peeked.first, FirstBytes::Opaque, "{raw:?}");
        assert_eq!(peeked.bytes, raw);
        assert_eq!(started.elapsed(), Duration::ZERO, "{raw:?}");
    }
    // A known method with a broken head is plain TCP too.
    let peeked =
        peek_after(&[(b"GET / HTTP/1.1\r\nbad header\r\n\r\n", Duration::ZERO)], false).await;
    assert_eq!(peeked.first, FirstBytes::Opaque);
}

#[tokio::test(start_paused = true)]
async fn a_head_that_never_ends_is_cut_at_max_peek() {
    let mut raw = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    raw.resize(MAX_PEEK + 1000, b'a');
    let peeked = peek_after(&[(&raw, Duration::ZERO)], false).await;
    assert_eq!(peeked.first, FirstBytes::Opaque);
    assert!(peeked.bytes.len() <= MAX_PEEK + 1, "{}", peeked.bytes.len());
    assert!(raw.starts_with(&peeked.bytes));
}

#[test]
fn host_header_forms() {
    let host = |value: &str| {
        let raw = format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n");
        host_of(&RequestHead::parse(raw.as_bytes()).unwrap().unwrap().0)
    };
    assert_eq!(host("example.com").as_deref(), Some("example.com"));
    assert_eq!(host(" example.com:80 ").as_deref(), Some("example.com"));
    assert_eq!(host("10.0.0.1:8080").as_deref(), Some("10.0.0.1"));
    assert_eq!(host("[::1]:8080").as_deref(), Some("[::1]"));
    assert_eq!(host("[::1]").as_deref(), Some("[::1]"));
    assert_eq!(host("[::1").as_deref(), None);
    assert_eq!(host("").as_deref(), None);
    assert_eq!(host("a b").as_deref(), None);
    assert_eq!(host("caf\u{e9}.example").as_deref(), None);
}

#[tokio::test]
async fn rewind_replays_then_reads_on() {
    let (mut app, sidecar) = pair();
    app.write_all(b" world").await.unwrap();
    app.shutdown().await.unwrap();
    let mut rewound = Rewind::new(b"hello".to_vec(), sidecar);
    let mut first = [0u8; 3];
    rewound.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"hel");
    let mut rest = Vec::new();
    rewound.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"lo world");
}
