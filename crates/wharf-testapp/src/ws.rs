//! `/ws`: a WebSocket that echoes (`Echo: <msg>`) or relays to `ws[s]://<WS_PROXY_TARGET>/ws`.
//!
//! hyper answers the handshake with 101 and hands over the connection; tungstenite then speaks
//! the protocol on it (`WebSocketStream::from_raw_socket`).

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use http::header::{
    CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{Instrument, debug, debug_span, warn};

use crate::config::{WsMode, WsProxy};
use crate::dial::Dialer;
use crate::errors;
use crate::routes::{App, Body, text};

type ServerSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Accepts the upgrade (or refuses it) and starts the session in its own task.
pub fn handle(app: &App, mut parts: Parts) -> Response<Body> {
    let mode = app.ws().clone();
    if mode == WsMode::Disabled {
        return text(StatusCode::BAD_REQUEST, "WebSocket not enabled (set WS_ENABLED=true)");
    }
    let Some(accept) = accept_key(&parts.headers) else {
        return text(StatusCode::BAD_REQUEST, "Expected a WebSocket upgrade");
    };
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "connection cannot be upgraded");
    };
    let dialer = app.dialer().clone();
    tokio::spawn(session(on_upgrade, mode, dialer).instrument(debug_span!("ws")));
    switching_protocols(accept)
}

/// The `Sec-WebSocket-Accept` value, if `headers` ask for a version-13 WebSocket upgrade.
pub fn accept_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let version_13 = headers.get("sec-websocket-version").is_some_and(|v| v.as_bytes() == b"13");
    if !(has_token(UPGRADE, "websocket") && has_token(CONNECTION, "upgrade") && version_13) {
        return None;
    }
    let key = headers.get(SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()
}

fn switching_protocols(accept: HeaderValue) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

async fn session(on_upgrade: OnUpgrade, mode: WsMode, dialer: Dialer) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(err) => {
            debug!(error = %err, "websocket upgrade failed");
            return;
        }
    };
    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    let result = match mode {
        WsMode::Proxy(proxy) => relay_to(socket, &proxy, &dialer).await,
        WsMode::Echo | WsMode::Disabled => echo(socket).await,
    };
    if let Err(err) = result {
        debug!(error = %err, "websocket session ended with an error");
    }
}

/// Answers every data message with `Echo: <msg>` until the client closes.
pub async fn echo<S>(mut socket: WebSocketStream<S>) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Keep reading after a Close: tungstenite answers it, then the stream ends.
    while let Some(message) = socket.next().await {
        let reply = match message? {
            Message::Text(msg) => format!("Echo: {msg}"),
            Message::Binary(msg) => format!("Echo: {}", String::from_utf8_lossy(&msg)),
            _ => continue,
        };
        socket.send(Message::text(reply)).await?;
    }
    Ok(())
}

async fn relay_to(
    mut client: ServerSocket,
    proxy: &WsProxy,
    dialer: &Dialer,
) -> Result<(), WsError> {
    let url = format!("{}://{}/ws", proxy.scheme.as_str(), proxy.authority);
    let upstream = match dialer.connect(&proxy.authority, proxy.scheme).await {
        Ok(io) => {
            tokio_tungstenite::client_async(url.as_str(), io).await.map_err(|e| e.to_string())
        }
        Err(err) => Err(errors::chain(&err)),
    };
    match upstream {
        Ok((upstream, _response)) => relay(client, upstream).await,
        Err(message) => {
            warn!(%url, error = %message, "websocket upstream failed");
            let frame = CloseFrame { code: CloseCode::Error, reason: "upstream failed".into() };
            client.close(Some(frame)).await
        }
    }
}

/// Relays data and close messages both ways until either side closes.
pub async fn relay<A, B>(a: WebSocketStream<A>, b: WebSocketStream<B>) -> Result<(), WsError>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut a_tx, mut a_rx) = a.split();
    let (mut b_tx, mut b_rx) = b.split();
    let result = tokio::select! {
        r = forward(&mut a_rx, &mut b_tx) => r,
        r = forward(&mut b_rx, &mut a_tx) => r,
    };
    // One side is done; make sure the other hears about it. Errors here mean it already knows.
    let _ = a_tx.close().await;
    let _ = b_tx.close().await;
    result
}

/// Copies text, binary and close messages (pings stay on their own leg) until a close or EOF.
async fn forward<R, W>(rx: &mut R, tx: &mut W) -> Result<(), WsError>
where
    R: Stream<Item = Result<Message, WsError>> + Unpin,
    W: Sink<Message, Error = WsError> + Unpin,
{
    while let Some(message) = rx.next().await {
        let message = message?;
        let is_close = message.is_close();
        if message.is_text() || message.is_binary() || is_close {
            tx.send(message).await?;
        }
        if is_close {
            break;
        }
    }
    Ok(())
}
