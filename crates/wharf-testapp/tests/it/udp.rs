//! The `UDP_PORT` echo server and the `/udp` probe.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::support::{Setup, closed_udp_addr, get, loopback_config, silent_udp, start_roles};

async fn udp_echo() -> SocketAddr {
    let mut config = loopback_config();
    config.udp_echo_port = Some(0);
    start_roles(&config).await.udp_echo.unwrap()
}

#[tokio::test]
async fn echo_answers_each_datagram() {
    let echo = udp_echo().await;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    socket.connect(echo).await.unwrap();
    let mut buf = [0; 64];
    for data in ["hello", "", "second"] {
        socket.send(data.as_bytes()).await.unwrap();
        let len = socket.recv(&mut buf).await.unwrap();
        assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), format!("echo:{data}"));
    }
}

#[tokio::test]
async fn probe_returns_the_reply() {
    let echo = udp_echo().await;
    let setup = Setup::new("127.0.0.1 echo.test\n");
    let addr = setup.start().await;
    let reply = get(addr, &format!("/udp?target={echo}&data=hello+world"), &[]).await;
    assert_eq!(reply.summary(), "200 echo:hello world");
    let named = format!("/udp?target=echo.test:{}&data=by-name", echo.port());
    assert_eq!(get(addr, &named, &[]).await.summary(), "200 echo:by-name");
    let empty = format!("/udp?target={echo}");
    assert_eq!(get(addr, &empty, &[]).await.summary(), "200 echo:");
}

#[tokio::test(start_paused = true)]
async fn probe_times_out_after_two_seconds() {
    let silent = silent_udp().await;
    let setup = Setup::new("");
    let addr = setup.start().await;
    let started = tokio::time::Instant::now();
    let reply = get(addr, &format!("/udp?target={silent}&data=x"), &[]).await;
    assert_eq!(reply.summary(), "504 UDP timeout");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn probe_errors() {
    let setup = Setup::new("");
    let addr = setup.start().await;
    let closed = closed_udp_addr();
    let reply = get(addr, &format!("/udp?target={closed}&data=x"), &[]).await;
    assert_eq!(
        reply.summary(),
        format!("502 UDP error: udp exchange with {closed}: Connection refused (os error 111)")
    );
    let bad = [
        ("/udp", r#"400 Missing "target" query param"#),
        ("/udp?target=127.0.0.1", r#"400 target must be HOST:PORT: missing port in "127.0.0.1""#),
    ];
    for (path, expect) in bad {
        assert_eq!(get(addr, path, &[]).await.summary(), expect);
    }
}
