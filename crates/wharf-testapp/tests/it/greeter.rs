//! The `GREETING_PORT` server-speaks-first server and the `/tcp-greeting` probe.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::support::{Setup, closed_port, get, loopback_config, start_roles};

async fn greeter() -> SocketAddr {
    let mut config = loopback_config();
    config.greeting_port = Some(0);
    start_roles(&config).await.greeter.unwrap()
}

/// Reads as many bytes as `expect` has, and compares.
async fn expect_read(stream: &mut TcpStream, expect: &str) {
    let mut buf = vec![0; expect.len()];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(String::from_utf8(buf).unwrap(), expect);
}

#[tokio::test]
async fn greets_first_then_answers_lines_until_quit() {
    let mut stream = TcpStream::connect(greeter().await).await.unwrap();
    // The client has sent nothing; the greeting comes anyway.
    expect_read(&mut stream, "220 wharf-greeter ready\r\n").await;
    stream.write_all(b"HELO probe\r\nMAIL FROM:<a@b.test>\n").await.unwrap();
    expect_read(&mut stream, "250 HELO probe\r\n250 MAIL FROM:<a@b.test>\r\n").await;
    stream.write_all(b" quit \r\n").await.unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "221 bye\r\n");
}

#[tokio::test]
async fn probe_against_the_greeter() {
    let greeter = greeter().await;
    let setup = Setup::new("127.0.0.1 smtp.test\n");
    let addr = setup.start().await;
    let expect = "200 220 wharf-greeter ready\r\n221 bye\r\n";
    let reply = get(addr, &format!("/tcp-greeting?target={greeter}"), &[]).await;
    assert_eq!(reply.summary(), expect);
    let named = format!("/tcp-greeting?target=smtp.test:{}", greeter.port());
    assert_eq!(get(addr, &named, &[]).await.summary(), expect);
}

#[tokio::test(start_paused = true)]
async fn probe_never_speaks_first() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let server = listener.local_addr().unwrap();
    let (sent_early, early) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        // Paused time moves on only once every task is idle, the probe waiting to be greeted.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut buf = [0; 64];
        let before_greeting = match stream.try_read(&mut buf) {
            Ok(len) => len,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(err) => panic!("{err}"),
        };
        sent_early.send(before_greeting).unwrap();
        stream.write_all(b"220 custom\r\n").await.unwrap();
        let len = stream.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], b"QUIT\r\n");
        stream.write_all(b"221 later\r\n").await.unwrap();
    });
    let setup = Setup::new("");
    let addr = setup.start().await;
    let reply = get(addr, &format!("/tcp-greeting?target={server}"), &[]).await;
    assert_eq!(reply.summary(), "200 220 custom\r\n221 later\r\n");
    assert_eq!(early.await.unwrap(), 0, "the probe wrote before it was greeted");
}

#[tokio::test(start_paused = true)]
async fn probe_times_out_when_nobody_greets() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let server = listener.local_addr().unwrap();
    let setup = Setup::new("");
    let addr = setup.start().await;
    let started = tokio::time::Instant::now();
    let reply = get(addr, &format!("/tcp-greeting?target={server}"), &[]).await;
    assert_eq!(reply.summary(), "504 TCP timeout");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn probe_errors() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let closed = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_port().await));
    assert_eq!(
        get(addr, &format!("/tcp-greeting?target={closed}"), &[]).await.summary(),
        format!("502 TCP error: connect to {closed}: Connection refused (os error 111)")
    );

    // A server that closes without a word.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let mute = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.shutdown().await.unwrap();
        }
    });
    assert_eq!(
        get(addr, &format!("/tcp-greeting?target={mute}"), &[]).await.summary(),
        "502 TCP error: connection closed before the greeting"
    );
    assert_eq!(
        get(addr, "/tcp-greeting?target=x", &[]).await.summary(),
        r#"400 target must be HOST:PORT: missing port in "x""#
    );
}
