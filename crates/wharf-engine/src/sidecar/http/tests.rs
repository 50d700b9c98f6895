//! Tests for the control client against scripted loopback servers.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Serves one connection: reads a head (and a body if announced), then writes `answer`.
async fn one_shot(answer: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            if let Ok(Some((head, used))) = RequestHead::parse(&got) {
                let want = used + head.content_length().unwrap_or(0) as usize;
                if got.len() >= want || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        s.write_all(answer).await.unwrap();
        got
    });
    (addr, task)
}

fn ep(addr: SocketAddr) -> Endpoint {
    Endpoint { addr, token: "tok".to_owned() }
}

#[tokio::test]
async fn put_egress_sends_token_and_body() {
    let (addr, task) = one_shot(b"HTTP/1.1 204 No Content\r\n\r\n").await;
    let update = EgressUpdate { port: Some(4000), ..Default::default() };
    HttpControl::new(Duration::from_secs(5)).put_egress(&ep(addr), &update).await.unwrap();
    let sent = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(sent.starts_with("PUT /egress HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains("Authorization: Bearer tok\r\n"));
    assert!(sent.ends_with(r#"{"port":4000}"#));
}

#[tokio::test]
async fn get_ca_reads_the_body() {
    let (addr, _task) = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nPEM!\n").await;
    let pem = HttpControl::new(Duration::from_secs(5)).get_ca(&ep(addr)).await.unwrap();
    assert_eq!(pem, "PEM!\n");
}

#[tokio::test]
async fn connect_refused_is_a_400_rejection() {
    let (addr, _task) =
        one_shot(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nrefused").await;
    let err = HttpControl::new(Duration::from_secs(5))
        .connect(&ep(addr), AppPort::new(8081).unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(err, ControlError::Rejected { status: 400, body: "refused".to_owned() });
}

#[tokio::test]
async fn connect_keeps_bytes_that_follow_the_head() {
    let (addr, _task) = one_shot(b"HTTP/1.1 200 OK\r\n\r\nearly bytes").await;
    let mut io = HttpControl::new(Duration::from_secs(5))
        .connect(&ep(addr), AppPort::new(80).unwrap())
        .await
        .unwrap();
    let mut got = String::new();
    io.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "early bytes");
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let conn = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(conn);
    });
    let err = HttpControl::new(Duration::from_millis(100)).get_ca(&ep(addr)).await.unwrap_err();
    assert_eq!(err, ControlError::Timeout(addr));
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = HttpControl::new(Duration::from_secs(5)).get_ca(&ep(addr)).await.unwrap_err();
    assert!(matches!(err, ControlError::Unreachable { .. }), "{err:?}");
}
