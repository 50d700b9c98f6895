//! The harness: an [`Api`] over an engine built on `FakeDocker` and `FakeControl`, driven
//! in-process with `oneshot`, or served on a loopback listener when a test needs upgrades;
//! plus the loopback "apps" that the fake sidecar routes app ports to.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tower::ServiceExt;
use wharf_api::AppState;
use wharf_engine::docker::fake::FakeDocker;
use wharf_engine::sidecar::fake::FakeControl;
use wharf_engine::{Engine, EngineConfig, EngineName, images};

/// The one image the fake daemon has.
pub(crate) const IMAGE: &str = "app:1";

/// How long any single network step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test after [`STEP`].
pub(crate) async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut).await.expect("a step took longer than 10s")
}

/// Whether `task` is still blocked after every other task went idle. Under paused time the
/// clock jumps only when nothing can run, so `true` means blocked for good, not merely slow.
pub(crate) async fn blocked<T>(task: &mut JoinHandle<T>) -> bool {
    tokio::time::timeout(Duration::from_secs(3600), task).await.is_err()
}

/// The Docker name of the app container of `id` for an engine named `t`.
pub(crate) fn app_name(id: &str) -> String {
    format!("wharf-t-{id}")
}

/// An API over a fresh engine, its fakes and its state directory.
pub(crate) struct Api {
    pub(crate) docker: FakeDocker,
    pub(crate) control: FakeControl,
    state: AppState,
    _dir: tempfile::TempDir,
}

/// An API without a bearer token.
pub(crate) async fn api() -> Api {
    api_with_token(None).await
}

/// An API that wants `Authorization: Bearer <token>` when `token` is set.
pub(crate) async fn api_with_token(token: Option<&str>) -> Api {
    let docker = FakeDocker::new().with_image(IMAGE);
    let control = FakeControl::new();
    let dir = tempfile::tempdir().unwrap();
    let recipe = images::sidecar_recipe(b"sidecar", b"busybox");
    let mut config = EngineConfig::new(EngineName::new("t").unwrap(), dir.path(), recipe);
    config.readiness_timeout = Duration::from_secs(2);
    config.stop_grace = Duration::from_secs(5);
    // No warm pool: its background refill would make containers the tests do not expect.
    config.pool_min = 0;
    config.pool_max = 0;
    let engine =
        Engine::new(config, Arc::new(docker.clone()), Arc::new(control.clone())).await.unwrap();
    let state = AppState::new(engine, token.map(str::to_owned));
    Api { docker, control, state, _dir: dir }
}

impl Api {
    /// The router over this API's state.
    pub(crate) fn router(&self) -> Router {
        wharf_api::router(self.state.clone())
    }

    /// Sends `req` in-process and returns the response with its body unread.
    pub(crate) async fn send_raw(&self, req: Request<Body>) -> Response<Body> {
        self.router().oneshot(req).await.unwrap()
    }

    /// Sends `req` in-process and reads the whole answer.
    pub(crate) async fn send(&self, req: Request<Body>) -> Reply {
        Reply::read(self.send_raw(req).await).await
    }

    /// Sends `req` in a task of its own, for answers that wait for something the test does
    /// next; the answer is read without the step timeout.
    pub(crate) fn spawn(&self, req: Request<Body>) -> JoinHandle<Reply> {
        let router = self.router();
        tokio::spawn(async move { Reply::read_to_end(router.oneshot(req).await.unwrap()).await })
    }

    /// `method path` with `body` (empty for none).
    pub(crate) async fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        self.send(request(method, path, body)).await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, "").await
    }

    pub(crate) async fn post(&self, path: &str, body: &str) -> Reply {
        self.call("POST", path, body).await
    }

    pub(crate) async fn put(&self, path: &str, body: &str) -> Reply {
        self.call("PUT", path, body).await
    }

    /// Starts `id` from [`IMAGE`] with `extra` fields merged into the body; asserts the 204.
    pub(crate) async fn start_with(&self, id: &str, extra: Value) {
        let mut body = json!({ "image": IMAGE });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let reply = self.post(&format!("/v1/containers/{id}/start"), &body.to_string()).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "start {id}: {}", reply.text());
        assert!(reply.body.is_empty(), "a 204 has no body: {}", reply.text());
    }

    /// Starts `id` from [`IMAGE`]; asserts the 204.
    pub(crate) async fn start(&self, id: &str) {
        self.start_with(id, json!({})).await;
    }

    /// Serves the router on a loopback listener, as `wharf serve --listen 127.0.0.1:0` does.
    pub(crate) async fn serve(&self) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(wharf_api::serve(listener, self.state.clone(), shutdown));
        Served { addr, _stop: stop, task }
    }
}

/// A request with an optional body.
pub(crate) fn request(method: &str, path: &str, body: &str) -> Request<Body> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    Request::builder().method(method).uri(path).body(Body::from(body.to_owned())).unwrap()
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) async fn read<B>(res: Response<B>) -> Reply
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        within(Reply::read_to_end(res)).await
    }

    /// [`Reply::read`] without the step timeout, for bodies that end only when the test
    /// makes them (under paused time, where a timeout would fire first).
    pub(crate) async fn read_to_end<B>(res: Response<B>) -> Reply
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("<not UTF-8>")
    }

    /// The body as JSON; fails the test when it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} answered a body that is not JSON ({e}): {:?}", self.status, self.text())
        })
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts the contract's error shape, `{"error": {"code", "message"}}` with a snake_case
    /// code and a non-empty message, and returns `(code, message)`.
    pub(crate) fn error(&self) -> (String, String) {
        self.try_error().unwrap_or_else(|why| panic!("{why}"))
    }

    /// `(code, message)` when this is an error in the contract's shape; otherwise what is wrong.
    pub(crate) fn try_error(&self) -> Result<(String, String), String> {
        let status = self.status;
        if !(status.is_client_error() || status.is_server_error()) {
            return Err(format!("expected an error, got {status}: {}", self.text()));
        }
        if !self.content_type().starts_with("application/json") {
            return Err(format!("not JSON ({:?}): {:?}", self.content_type(), self.text()));
        }
        let body: Value = serde_json::from_slice(&self.body)
            .map_err(|e| format!("not JSON ({e}): {:?}", self.text()))?;
        let detail = match body.as_object() {
            Some(outer) if outer.len() == 1 => outer.get("error").and_then(Value::as_object),
            _ => None,
        };
        let detail = detail.ok_or_else(|| format!("not {{\"error\": {{..}}}}: {body}"))?;
        let code = detail
            .get("code")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no string code: {body}"))?;
        let message = detail
            .get("message")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no string message: {body}"))?;
        let snake = !code.is_empty()
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !snake {
            return Err(format!("code {code:?} is not snake_case"));
        }
        if message.trim().is_empty() {
            return Err(format!("empty message: {body}"));
        }
        Ok((code.to_owned(), message.to_owned()))
    }

    /// `"400 invalid_id"` for an error (shape checked), `"204"` otherwise.
    pub(crate) fn summary(&self) -> String {
        if self.status.is_client_error() || self.status.is_server_error() {
            format!("{} {}", self.status.as_u16(), self.error().0)
        } else {
            self.status.as_u16().to_string()
        }
    }

    /// Like [`Reply::summary`], but an error outside the contract's shape is described
    /// rather than failing the test.
    pub(crate) fn describe(&self) -> String {
        match self.try_error() {
            Ok((code, _)) => format!("{} {code}", self.status.as_u16()),
            Err(_) if self.status.is_success() || self.status.is_informational() => {
                self.status.as_u16().to_string()
            }
            Err(why) => format!("{} {why}", self.status.as_u16()),
        }
    }

    /// Asserts `status` and the error `code`; returns the message.
    pub(crate) fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let (got, message) = self.error();
        assert_eq!(got, code, "{}", self.text());
        message
    }
}

/// The router served on a loopback port; stops when dropped.
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Served {
    /// A fresh HTTP/1.1 client connection (upgrades enabled).
    pub(crate) async fn client(&self) -> SendRequest<Full<Bytes>> {
        let stream = within(TcpStream::connect(self.addr)).await.unwrap();
        let (sender, conn) =
            within(hyper::client::conn::http1::handshake(TokioIo::new(stream))).await.unwrap();
        tokio::spawn(conn.with_upgrades());
        sender
    }

    /// A request to this server; `Host` is set as a client would.
    pub(crate) fn request(&self, method: &str, path: &str) -> http::request::Builder {
        Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header(http::header::HOST, self.addr.to_string())
    }

    /// Sends one request on a fresh connection and reads the whole answer.
    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        let mut client = self.client().await;
        let res = within(client.send_request(req)).await.unwrap();
        Reply::read(res).await
    }
}

/// A loopback TCP server that echoes every byte; the stand-in for an app's raw port.
pub(crate) async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

type AppBody = BoxBody<Bytes, Infallible>;

/// A loopback HTTP app: `/ws` is a WebSocket echo, `/stream` streams what the test sends on
/// [`AppServer::stream`], and every other request is answered `201` with `X-App: yes` and a
/// JSON echo of what arrived: `{"method", "uri", "headers": {name: value}, "body"}`.
pub(crate) struct AppServer {
    pub(crate) addr: SocketAddr,
    stream_rx: Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>,
}

impl AppServer {
    pub(crate) async fn start() -> AppServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream_rx: Arc<Mutex<Option<mpsc::Receiver<Bytes>>>> = Arc::default();
        let shared = stream_rx.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                let service =
                    hyper::service::service_fn(move |req| app_answer(req, shared.clone()));
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        });
        AppServer { addr, stream_rx }
    }

    /// The sender whose chunks the next `/stream` request answers with; dropping it ends
    /// that body.
    pub(crate) fn stream(&self) -> mpsc::Sender<Bytes> {
        let (tx, rx) = mpsc::channel(4);
        *self.stream_rx.lock().unwrap_or_else(PoisonError::into_inner) = Some(rx);
        tx
    }
}

async fn app_answer(
    mut req: Request<Incoming>,
    stream_rx: Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>,
) -> Result<Response<AppBody>, Infallible> {
    let full = |status: StatusCode, body: String| {
        let mut res = Response::new(Full::new(Bytes::from(body)).boxed());
        *res.status_mut() = status;
        res
    };
    match req.uri().path() {
        "/ws" => {
            let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
                return Ok(full(
                    StatusCode::BAD_REQUEST,
                    "expected a WebSocket upgrade".to_owned(),
                ));
            };
            let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes())).unwrap();
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else { return };
                let mut ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                while let Some(Ok(msg)) = ws.next().await {
                    let reply = match msg {
                        Message::Text(t) => Message::text(format!("echo: {t}")),
                        Message::Binary(b) => Message::Binary(b),
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        break;
                    }
                }
            });
            let mut res = full(StatusCode::SWITCHING_PROTOCOLS, String::new());
            res.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
            res.headers_mut().insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            res.headers_mut().insert(SEC_WEBSOCKET_ACCEPT, accept);
            Ok(res)
        }
        "/stream" => {
            let rx = stream_rx.lock().unwrap_or_else(PoisonError::into_inner).take();
            let Some(rx) = rx else {
                return Ok(full(StatusCode::INTERNAL_SERVER_ERROR, "no stream set up".to_owned()));
            };
            let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
            });
            Ok(Response::new(BodyExt::boxed(StreamBody::new(chunks))))
        }
        _ => {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let echo = json!({
                "method": method,
                "uri": uri,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut res = full(StatusCode::CREATED, echo.to_string());
            res.headers_mut().insert("x-app", HeaderValue::from_static("yes"));
            res.headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(res)
        }
    }
}
