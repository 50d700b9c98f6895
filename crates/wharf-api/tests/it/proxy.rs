//! `{ANY} /v1/containers/{id}/http/{port}/{path…}`, over a real loopback listener: the fake
//! sidecar routes the app port to the test's [`AppServer`].

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Api, AppServer, Served, api, echo_server, within};

const PORT: u16 = 9000;

async fn setup() -> (Api, AppServer, Served) {
    let api = api().await;
    let app = AppServer::start().await;
    api.control.route(PORT, app.addr);
    api.start("c1").await;
    let served = api.serve().await;
    (api, app, served)
}

#[tokio::test]
async fn method_path_query_headers_and_body_reach_the_app() {
    let (_api, _app, served) = setup().await;
    let req = served
        .request("PATCH", "/v1/containers/c1/http/9000/some/a%20b/path?x=1&y=%2F&x=2")
        .header("x-custom", "abc")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=5")
        .header(CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from_static(b"the request body")))
        .unwrap();
    let reply = served.send(req).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.headers.get("x-app").unwrap(), "yes");
    assert_eq!(reply.content_type(), "application/json");
    let seen = reply.json();
    assert_eq!(seen["method"], "PATCH", "{seen}");
    assert_eq!(seen["uri"], "/some/a%20b/path?x=1&y=%2F&x=2", "{seen}");
    assert_eq!(seen["body"], "the request body", "{seen}");
    let headers = &seen["headers"];
    assert_eq!(headers["x-custom"], "abc", "{seen}");
    assert_eq!(headers["content-type"], "text/plain", "{seen}");
    for hop in ["x-private", "keep-alive"] {
        assert_eq!(headers[hop], Value::Null, "hop-by-hop {hop} reached the app: {seen}");
    }
    assert_ne!(headers["connection"], "x-private", "{seen}");
}

#[tokio::test]
async fn every_method_and_the_root_path() {
    let (_api, _app, served) = setup().await;
    for (path, want) in [
        ("/v1/containers/c1/http/9000", "/"),
        ("/v1/containers/c1/http/9000/", "/"),
        ("/v1/containers/c1/http/9000?q=1", "/?q=1"),
        ("/v1/containers/c1/http/9000/c1/http/9000/x", "/c1/http/9000/x"),
    ] {
        for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
            let reply =
                served.send(served.request(method, path).body(Full::default()).unwrap()).await;
            assert_eq!(reply.status, 201, "{method} {path}: {}", reply.text());
            let seen = reply.json();
            assert_eq!(
                (&seen["method"], &seen["uri"]),
                (&json!(method), &json!(want)),
                "{method} {path}"
            );
        }
    }
    let reply = served
        .send(
            served.request("HEAD", "/v1/containers/c1/http/9000/h").body(Full::default()).unwrap(),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.headers.get("x-app").unwrap(), "yes");
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn the_answer_streams_back_as_the_app_sends_it() {
    let (_api, app, served) = setup().await;
    let chunks = app.stream();
    let mut client = served.client().await;
    let req =
        served.request("GET", "/v1/containers/c1/http/9000/stream").body(Full::default()).unwrap();
    let res = within(client.send_request(req)).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    // Each chunk arrives before the app sends the next one.
    for chunk in ["first chunk\n", "second chunk\n"] {
        chunks.send(Bytes::from(chunk)).await.unwrap();
        let mut got = Vec::new();
        while got.len() < chunk.len() {
            let frame = within(body.frame()).await.expect("the body ended early").unwrap();
            if let Ok(data) = frame.into_data() {
                got.extend_from_slice(&data);
            }
        }
        assert_eq!(got, chunk.as_bytes());
    }
    drop(chunks);
    let rest = within(body.collect()).await.unwrap().to_bytes();
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn a_websocket_through_the_proxy_echoes() {
    let (_api, _app, served) = setup().await;
    let stream = within(TcpStream::connect(served.addr)).await.unwrap();
    let url = format!("ws://{}/v1/containers/c1/http/9000/ws", served.addr);
    let (mut ws, res) = within(tokio_tungstenite::client_async(url, stream)).await.unwrap();
    assert_eq!(res.status(), 101);
    for text in ["hello", "again"] {
        within(ws.send(Message::text(text))).await.unwrap();
        let got = within(ws.next()).await.expect("the socket closed").unwrap();
        assert_eq!(got, Message::text(format!("echo: {text}")));
    }
    within(ws.send(Message::binary(vec![0u8, 1, 2, 255]))).await.unwrap();
    let got = within(ws.next()).await.expect("the socket closed").unwrap();
    assert_eq!(got, Message::binary(vec![0u8, 1, 2, 255]));
    within(ws.close(None)).await.unwrap();
}

#[tokio::test]
async fn proxy_errors_match_the_ports_errors() {
    let (api, _app, served) = setup().await;
    // A port nothing listens on.
    let reply = served
        .send(served.request("GET", "/v1/containers/c1/http/9001/x").body(Full::default()).unwrap())
        .await;
    let message = reply.assert_error(502, "port_not_listening");
    assert_eq!(message, "Container is not listening to port 9001");
    // A container that does not run.
    let reply = served
        .send(served.request("GET", "/v1/containers/c2/http/9000/x").body(Full::default()).unwrap())
        .await;
    reply.assert_error(409, "not_running");
    // The same in-process.
    api.get("/v1/containers/c1/http/9001/x").await.assert_error(502, "port_not_listening");
    api.get("/v1/containers/c2/http/9000/").await.assert_error(409, "not_running");
}

#[tokio::test]
async fn an_app_that_does_not_speak_http_is_a_json_error() {
    let api = api().await;
    // The echo server answers a request with the request itself: not an HTTP response.
    api.control.route(PORT, echo_server().await);
    api.start("c1").await;
    let served = api.serve().await;
    let reply = served
        .send(served.request("GET", "/v1/containers/c1/http/9000/").body(Full::default()).unwrap())
        .await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    reply.error();
}

#[tokio::test]
async fn a_percent_encoded_id_or_port_still_proxies_the_path() {
    let (_api, _app, served) = setup().await;
    // `%31` is `1` and `%30` is `0`: the same id and port, spelled differently (RFC 3986 §6.2.2.2).
    for path in ["/v1/containers/c%31/http/9000/x/y?q=1", "/v1/containers/c1/http/900%30/x/y?q=1"] {
        let reply = served.send(served.request("GET", path).body(Full::default()).unwrap()).await;
        assert_eq!(reply.status, 201, "{path}: {}", reply.text());
        assert_eq!(reply.json()["uri"], "/x/y?q=1", "{path}");
    }
}

/// Keep-alive tunnels are reused across proxied requests, and a new run never gets the old
/// run's connections.
#[tokio::test]
async fn proxied_requests_reuse_one_tunnel() {
    let (api, _app, served) = setup().await;
    for i in 0..5 {
        let path = format!("/v1/containers/c1/http/9000/n{i}");
        let reply = served.send(served.request("GET", &path).body(Full::default()).unwrap()).await;
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    assert_eq!(api.control.connects(), 1, "five requests, one tunnel");
    api.post("/v1/containers/c1/destroy", "").await;
    api.start("c1").await;
    let reply = served
        .send(
            served
                .request("GET", "/v1/containers/c1/http/9000/after")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(api.control.connects(), 2, "the restarted container gets a fresh tunnel");
}

/// An idle pooled connection the app closed is replaced by a fresh tunnel, and the request
/// still succeeds.
#[tokio::test]
async fn a_pooled_connection_the_app_closed_is_replaced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = api().await;
    // An app that answers one request per connection and then closes it, without saying so.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                // Closing here, after a keep-alive answer, leaves a stale pooled connection.
            });
        }
    });
    api.control.route(PORT, addr);
    api.start("c1").await;
    let served = api.serve().await;
    for _ in 0..3 {
        let reply = served
            .send(
                served
                    .request("GET", "/v1/containers/c1/http/9000/")
                    .body(Full::default())
                    .unwrap(),
            )
            .await;
        assert_eq!((reply.status.as_u16(), reply.text()), (200, "ok"));
        // Let the close reach the pooled connection before the next request.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(api.control.connects(), 3);
}
