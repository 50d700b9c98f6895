//! The `/connect` probe: connected, refused, reset right after accept, timed out.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use wharf_testapp::resolve::NameServer;

use crate::support::{Setup, closed_port, dns_stub, get, loopback_config, start_roles};

/// A server that accepts and keeps each connection open, reading until the client closes.
async fn holding_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0; 64];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// A server that accepts, as an intercepting sidecar does, and resets at once (`SO_LINGER` 0).
async fn resetting_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_zero_linger().unwrap();
            drop(stream);
        }
    });
    addr
}

async fn probe(addr: SocketAddr, target: &str) -> String {
    get(addr, &format!("/connect?target={target}"), &[]).await.summary()
}

#[tokio::test(start_paused = true)]
async fn connected_when_the_peer_keeps_the_connection() {
    let server = holding_server().await;
    let setup = Setup::new("127.0.0.1 held.test\n");
    let addr = setup.start().await;
    assert_eq!(probe(addr, &server.to_string()).await, "200 connected");
    assert_eq!(probe(addr, &format!("held.test:{}", server.port())).await, "200 connected");
}

#[tokio::test(start_paused = true)]
async fn connected_when_the_peer_answers_and_closes_gracefully() {
    let mut config = loopback_config();
    config.tcp_echo_port = Some(0);
    let echo = start_roles(&config).await.tcp_echo.unwrap();
    let setup = Setup::new("");
    let addr = setup.start().await;
    assert_eq!(probe(addr, &echo.to_string()).await, "200 connected");
}

#[tokio::test]
async fn refused_on_a_closed_port() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let target = format!("127.0.0.1:{}", closed_port().await);
    assert_eq!(probe(addr, &target).await, "502 refused");
}

// Real time: the reset must be seen within the probe's 300 ms window, which paused time could
// skip past before the kernel has delivered it.
#[tokio::test]
async fn reset_when_the_peer_accepts_then_resets() {
    let server = resetting_server().await;
    let setup = Setup::new("");
    let addr = setup.start().await;
    for _ in 0..5 {
        assert_eq!(probe(addr, &server.to_string()).await, "502 reset");
    }
}

#[tokio::test]
async fn reset_when_the_peer_accepts_then_closes_without_reading() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            drop(listener.accept().await.unwrap());
        }
    });
    let setup = Setup::new("");
    let addr = setup.start().await;
    assert_eq!(probe(addr, &server.to_string()).await, "502 reset");
}

#[tokio::test(start_paused = true)]
async fn timeout_when_the_syn_goes_unanswered() {
    // A listener with a full accept queue drops new SYNs, so the connect hangs.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let listener = socket.listen(0).unwrap();
    let server = listener.local_addr().unwrap();
    let _queued = TcpStream::connect(server).await.unwrap();
    let setup = Setup::new("");
    let addr = setup.start().await;
    let started = tokio::time::Instant::now();
    assert_eq!(probe(addr, &server.to_string()).await, "504 timeout");
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(3));
    drop(listener);
}

#[tokio::test]
async fn errors() {
    let mut setup = Setup::new("");
    setup.resolver.nameserver = NameServer::Fixed(dns_stub().await);
    let addr = setup.start().await;
    assert_eq!(
        probe(addr, "nope.example.com:80").await,
        "502 error: nope.example.com: no such host"
    );
    assert_eq!(get(addr, "/connect", &[]).await.summary(), r#"400 Missing "target" query param"#);
    assert_eq!(
        probe(addr, "10.0.0.1").await,
        r#"400 target must be HOST:PORT: missing port in "10.0.0.1""#
    );
}
