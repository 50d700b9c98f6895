//! `/ws`: disabled, echo, and relay to an upstream WebSocket server on loopback.

use std::net::{Ipv4Addr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use wharf_testapp::config::{WsMode, WsProxy};
use wharf_testapp::target::{Authority, Scheme};
use wharf_testapp::ws::accept_key;

use crate::support::{Setup, get, tls_acceptor};

type Client = WebSocketStream<TcpStream>;

#[tokio::test]
async fn disabled_by_default() {
    let setup = Setup::new("");
    let reply = get(setup.start().await, "/ws", &[]).await;
    assert_eq!(reply.summary(), "400 WebSocket not enabled (set WS_ENABLED=true)");
}

#[tokio::test]
async fn enabled_but_not_an_upgrade() {
    let mut setup = Setup::new("");
    setup.config.ws = WsMode::Echo;
    let reply = get(setup.start().await, "/ws", &[]).await;
    assert_eq!(reply.summary(), "400 Expected a WebSocket upgrade");
}

#[tokio::test]
async fn echoes_messages() {
    let mut setup = Setup::new("");
    setup.config.ws = WsMode::Echo;
    let mut ws = connect(setup.start().await).await;
    assert_eq!(round_trip(&mut ws, "Hello WebSocket!").await, "Echo: Hello WebSocket!");
    assert_eq!(round_trip(&mut ws, "again").await, "Echo: again");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn relays_to_the_proxy_target() {
    let upstream = upstream_ws("Binding 42").await;
    let mut setup = Setup::new("127.0.0.1 intercepted.test\n");
    let authority =
        Authority::parse_host_port(&format!("intercepted.test:{}", upstream.port())).unwrap();
    setup.config.ws = WsMode::Proxy(WsProxy { scheme: Scheme::Ws, authority });
    let mut ws = connect(setup.start().await).await;
    assert_eq!(
        round_trip(&mut ws, "Hello through intercept!").await,
        "Binding 42: Hello through intercept!"
    );
    assert_eq!(round_trip(&mut ws, "twice").await, "Binding 42: twice");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn relays_over_tls_when_secure() {
    let (ca_pem, upstream) = upstream_wss("intercepted.test", "Binding 99").await;
    let mut setup = Setup::new("127.0.0.1 intercepted.test\n");
    let ca_file = setup.path("ca.crt");
    std::fs::write(&ca_file, ca_pem).unwrap();
    setup.config.ca_files = vec![ca_file];
    let authority =
        Authority::parse_host_port(&format!("intercepted.test:{}", upstream.port())).unwrap();
    setup.config.ws = WsMode::Proxy(WsProxy { scheme: Scheme::Wss, authority });
    let mut ws = connect(setup.start().await).await;
    let reply = round_trip(&mut ws, "Hello through WSS intercept!").await;
    assert_eq!(reply, "Binding 99: Hello through WSS intercept!");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn accept_key_follows_rfc_6455() {
    let mut headers = HeaderMap::new();
    headers.insert("upgrade", "WebSocket".parse().unwrap());
    headers.insert("connection", "keep-alive, Upgrade".parse().unwrap());
    headers.insert("sec-websocket-version", "13".parse().unwrap());
    headers.insert("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap());
    assert_eq!(accept_key(&headers).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    headers.insert("sec-websocket-version", "8".parse().unwrap());
    assert_eq!(accept_key(&headers), None);
}

async fn connect(addr: SocketAddr) -> Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (ws, response) =
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["upgrade"], "websocket");
    ws
}

async fn round_trip(ws: &mut Client, text: &str) -> String {
    ws.send(Message::text(text)).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Text(reply) => reply.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// A WebSocket server on loopback answering `<prefix>: <msg>`, as the test worker does.
async fn upstream_ws(prefix: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(answer_with_prefix(stream, prefix));
        }
    });
    addr
}

/// [`upstream_ws`] over TLS for `name`. Returns the CA in PEM and the address.
async fn upstream_wss(name: &str, prefix: &'static str) -> (String, SocketAddr) {
    let (ca_pem, acceptor) = tls_acceptor(name);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(stream).await.unwrap();
            tokio::spawn(answer_with_prefix(tls, prefix));
        }
    });
    (ca_pem, addr)
}

async fn answer_with_prefix<S: AsyncRead + AsyncWrite + Unpin>(stream: S, prefix: &str) {
    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            ws.send(Message::text(format!("{prefix}: {text}"))).await.unwrap();
        }
    }
}
