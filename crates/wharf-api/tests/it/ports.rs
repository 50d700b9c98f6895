//! `GET /v1/containers/{id}/ports/{port}` with `Upgrade: tcp`, over a real loopback listener:
//! the fake sidecar routes the app port to an echo server of the test.

use bytes::Bytes;
use http::Request;
use http::header::{CONNECTION, UPGRADE};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Served, api, echo_server, within};

fn upgrade_request(served: &Served, path: &str) -> Request<Full<Bytes>> {
    served
        .request("GET", path)
        .header(CONNECTION, "Upgrade")
        .header(UPGRADE, "tcp")
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn an_upgrade_carries_bytes_both_ways() {
    let api = api().await;
    api.control.route(9000, echo_server().await);
    api.start("c1").await;
    let served = api.serve().await;

    let mut client = served.client().await;
    let res = within(client.send_request(upgrade_request(&served, "/v1/containers/c1/ports/9000")))
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers().get(UPGRADE).unwrap(), "tcp");
    let mut io = TokioIo::new(within(hyper::upgrade::on(res)).await.unwrap());
    for message in [&b"hello"[..], b"\x00\xffbinary\r\n\r\n", &[7u8; 100_000]] {
        within(io.write_all(message)).await.unwrap();
        let mut back = vec![0; message.len()];
        within(io.read_exact(&mut back)).await.unwrap();
        assert!(back == message, "echoed {} bytes differ", message.len());
    }
    // Closing our side ends the stream: the echo closes, and so does the tunnel.
    within(io.shutdown()).await.unwrap();
    let mut rest = Vec::new();
    within(io.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());

    // Two streams at once are independent.
    let mut a = served.client().await;
    let mut b = served.client().await;
    let ra = within(a.send_request(upgrade_request(&served, "/v1/containers/c1/ports/9000")))
        .await
        .unwrap();
    let rb = within(b.send_request(upgrade_request(&served, "/v1/containers/c1/ports/9000")))
        .await
        .unwrap();
    let mut a = TokioIo::new(within(hyper::upgrade::on(ra)).await.unwrap());
    let mut b = TokioIo::new(within(hyper::upgrade::on(rb)).await.unwrap());
    within(b.write_all(b"bee")).await.unwrap();
    within(a.write_all(b"ay")).await.unwrap();
    let (mut got_a, mut got_b) = ([0; 2], [0; 3]);
    within(a.read_exact(&mut got_a)).await.unwrap();
    within(b.read_exact(&mut got_b)).await.unwrap();
    assert_eq!((&got_a, &got_b), (b"ay", b"bee"));
}

#[tokio::test]
async fn upgrade_tokens_are_case_insensitive_and_may_be_listed() {
    let api = api().await;
    api.control.route(9000, echo_server().await);
    api.start("c1").await;
    let served = api.serve().await;
    let mut client = served.client().await;
    let req = served
        .request("GET", "/v1/containers/c1/ports/9000")
        .header(CONNECTION, "keep-alive, upgrade")
        .header(UPGRADE, "TCP")
        .body(Full::default())
        .unwrap();
    let res = within(client.send_request(req)).await.unwrap();
    assert_eq!(res.status(), 101);
    let mut io = TokioIo::new(within(hyper::upgrade::on(res)).await.unwrap());
    within(io.write_all(b"ping")).await.unwrap();
    let mut back = [0; 4];
    within(io.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"ping");
}

#[tokio::test]
async fn without_upgrade_headers_it_is_426() {
    let api = api().await;
    api.control.route(9000, echo_server().await);
    api.start("c1").await;
    api.get("/v1/containers/c1/ports/9000").await.assert_error(426, "upgrade_required");
    let served = api.serve().await;
    for (connection, upgrade) in [
        (None, None),
        (Some("Upgrade"), None),
        (None, Some("tcp")),
        (Some("Upgrade"), Some("websocket")),
    ] {
        let mut req = served.request("GET", "/v1/containers/c1/ports/9000");
        if let Some(c) = connection {
            req = req.header(CONNECTION, c);
        }
        if let Some(u) = upgrade {
            req = req.header(UPGRADE, u);
        }
        let reply = served.send(req.body(Full::default()).unwrap()).await;
        reply.assert_error(426, "upgrade_required");
    }
}

#[tokio::test]
async fn an_unrouted_port_is_port_not_listening() {
    let api = api().await;
    api.control.route(9000, echo_server().await);
    api.start("c1").await;
    let served = api.serve().await;
    for port in [9001, 1, 65535] {
        let reply =
            served.send(upgrade_request(&served, &format!("/v1/containers/c1/ports/{port}"))).await;
        let message = reply.assert_error(502, "port_not_listening");
        assert_eq!(message, format!("Container is not listening to port {port}"));
    }
}

#[tokio::test]
async fn a_container_that_does_not_run_is_409() {
    let api = api().await;
    api.control.route(9000, echo_server().await);
    let served = api.serve().await;
    // Never started.
    let reply = served.send(upgrade_request(&served, "/v1/containers/c1/ports/9000")).await;
    reply.assert_error(409, "not_running");
    // Started, then destroyed.
    api.start("c1").await;
    assert_eq!(api.post("/v1/containers/c1/destroy", "").await.status, 204);
    let reply = served.send(upgrade_request(&served, "/v1/containers/c1/ports/9000")).await;
    reply.assert_error(409, "not_running");
}
