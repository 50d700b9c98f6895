//! The load: HTTP requests from the host to the app (ingress), made on a thread of their own,
//! and the test app's `/bench` and `/bench-bulk` routes driven from the host (egress).
//!
//! The host client does what the test app's `/bench` does (`crates/wharf-testapp/src/bench.rs`):
//! `GET`s from `concurrency` workers, each on one kept-alive connection or a new connection per
//! request, timed from just before the request (or its connect) to the end of the answer.
//! It runs on its own single-threaded runtime, on its own OS thread, so that it competes with
//! the in-process engine as a separate client process would, and so that its CPU time can be
//! told apart from the engine's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wharf_engine::io_util::{self, BoxIo, Prefixed};
use wharf_wire::head::{MAX_HEAD_LEN, RequestHead, ResponseHead};

/// How long one request (one bulk chunk) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest chunk the test app's `/bytes` serves (`wharf_testapp::bench::MAX_CHUNK`).
pub(super) const MAX_CHUNK: u64 = 16 << 20;
/// How long a `/bench` or `/bench-bulk` run in a container may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(600);

/// How the host reaches the app.
#[derive(Debug, Clone)]
pub(super) enum Ingress {
    /// Straight to the app's port.
    Direct(SocketAddr),
    /// `GET /v1/containers/{id}/ports/{port}` with `Upgrade: tcp` on the API, then HTTP on the
    /// raw stream.
    Ports {
        /// The API's TCP address.
        api: SocketAddr,
        /// `/v1/containers/{id}/ports/{port}`.
        path: String,
    },
    /// `/v1/containers/{id}/http/{port}/…` on the API.
    Http {
        /// The API's TCP address.
        api: SocketAddr,
        /// `/v1/containers/{id}/http/{port}`.
        prefix: String,
    },
}

/// One latency run: what the host client or the test app's `/bench` measured.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Run {
    /// Latencies of successful requests, µs.
    #[serde(rename = "samples_us", default, deserialize_with = "samples")]
    pub(super) us: Vec<u32>,
    /// Failed requests.
    pub(super) errors: u32,
    /// The first failure.
    pub(super) first_error: Option<String>,
}

/// One bulk transfer.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Bulk {
    /// Bytes received.
    pub(super) bytes: u64,
    /// Bytes per second.
    pub(super) bytes_per_sec: f64,
    /// Why it stopped early.
    pub(super) error: Option<String>,
}

/// A dedicated OS thread running a current-thread runtime for the host client.
#[derive(Debug)]
pub(super) struct ClientThread {
    handle: tokio::runtime::Handle,
    tid: Option<u32>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

// === impl ClientThread ===

impl ClientThread {
    /// Starts the thread.
    pub(super) fn start() -> anyhow::Result<ClientThread> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-client".to_owned())
            .spawn(move || {
                let runtime =
                    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                let _ = ready_tx.send(Ok((runtime.handle().clone(), thread_id())));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .context("cannot start the client thread")?;
        let (handle, tid) = ready_rx
            .recv()
            .context("the client thread ended at once")?
            .context("cannot start the client runtime")?;
        Ok(ClientThread { handle, tid, stop: Some(stop), thread: Some(thread) })
    }

    /// The thread's Linux id, for its CPU time.
    pub(super) fn tid(&self) -> Option<u32> {
        self.tid
    }

    /// Runs `work` on the client thread and waits for it.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.handle.spawn(work).await.context("the client task failed")
    }
}

impl Drop for ClientThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// This thread's id, from `/proc/thread-self` (`<pid>/task/<tid>`).
fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

// === impl Ingress ===

impl Ingress {
    /// A new connection that speaks HTTP to the app.
    async fn connect(&self) -> anyhow::Result<BoxIo> {
        match self {
            Ingress::Direct(addr) => Ok(Box::new(tcp(*addr).await?)),
            Ingress::Http { api, .. } => Ok(Box::new(tcp(*api).await?)),
            Ingress::Ports { api, path } => {
                let mut stream = tcp(*api).await?;
                let request = RequestHead::new("GET", path)
                    .with_header("Host", "wharf")
                    .with_header("Connection", "Upgrade")
                    .with_header("Upgrade", "tcp")
                    .encode();
                stream.write_all(&request).await?;
                let (head, rest) =
                    io_util::read_head(&mut stream, MAX_HEAD_LEN, ResponseHead::parse).await?;
                if head.status() != 101 {
                    bail!("the ports upgrade answered {} {}", head.status(), head.reason());
                }
                Ok(Box::new(Prefixed::new(rest, stream)))
            }
        }
    }

    /// The request target for the app's `path`.
    fn target(&self, path: &str) -> String {
        match self {
            Ingress::Http { prefix, .. } => format!("{prefix}{path}"),
            Ingress::Direct(_) | Ingress::Ports { .. } => path.to_owned(),
        }
    }
}

async fn tcp(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connect to {addr}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One worker's connection: kept between requests, or made anew for each.
struct Conn {
    keepalive: bool,
    sender: Option<http1::SendRequest<Empty<Bytes>>>,
}

impl Conn {
    /// One `GET`; returns the body length.
    async fn get(&mut self, route: &Ingress, path: &str) -> anyhow::Result<u64> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(route, path))
            .await
            .unwrap_or_else(|_| Err(anyhow!("no answer within {REQUEST_TIMEOUT:?}")));
        if result.is_err() || !self.keepalive {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, route: &Ingress, path: &str) -> anyhow::Result<u64> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            slot => slot.insert(handshake(route.connect().await?).await?),
        };
        sender.ready().await?;
        let request = Request::get(route.target(path))
            .header(header::HOST, "app")
            .header(header::USER_AGENT, "wharf-bench")
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        if !response.status().is_success() {
            bail!("answered {}", response.status());
        }
        body_len(response.into_body()).await
    }
}

async fn handshake(io: BoxIo) -> anyhow::Result<http1::SendRequest<Empty<Bytes>>> {
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn body_len(mut body: Incoming) -> anyhow::Result<u64> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

/// One `GET path` on `io`, a new connection; returns the body length.
pub(super) async fn get_on(io: BoxIo, path: &str) -> anyhow::Result<u64> {
    let mut sender = handshake(io).await?;
    let request = Request::get(path).header(header::HOST, "app").body(Empty::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("answered {}", response.status());
    }
    body_len(response.into_body()).await
}

/// `n` connections by `route`, each closed once made: for the ports upgrade, until the 101.
pub(super) async fn connects(route: Arc<Ingress>, n: u32) -> Run {
    let mut run = Run::default();
    for _ in 0..n {
        let began = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, route.connect()).await {
            Ok(Ok(_)) => run.us.push(micros(began.elapsed())),
            Ok(Err(e)) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(_) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| "timed out".to_owned());
            }
        }
    }
    run
}

/// `requests` `GET /`s from the host to the app, by `route`.
pub(super) async fn latency(
    route: Arc<Ingress>,
    requests: u32,
    concurrency: u32,
    keepalive: bool,
) -> Run {
    let tickets = Arc::new(AtomicU32::new(requests));
    let workers: Vec<_> = (0..concurrency.min(requests).max(1))
        .map(|_| {
            let (route, tickets) = (route.clone(), tickets.clone());
            tokio::spawn(async move {
                let mut run = Run::default();
                let mut conn = Conn { keepalive, sender: None };
                while take(&tickets) {
                    let began = Instant::now();
                    match conn.get(&route, "/").await {
                        Ok(_) => run.us.push(micros(began.elapsed())),
                        Err(e) => {
                            run.errors += 1;
                            run.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                run
            })
        })
        .collect();
    let mut total = Run::default();
    for worker in workers {
        match worker.await {
            Ok(run) => {
                total.us.extend(run.us);
                total.errors += run.errors;
                total.first_error = total.first_error.or(run.first_error);
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    total
}

/// Fetches `total` bytes of the app's `/bytes`, [`MAX_CHUNK`] per request, on one connection.
pub(super) async fn bulk(route: Arc<Ingress>, total: u64) -> Bulk {
    let mut conn = Conn { keepalive: true, sender: None };
    let (mut received, mut error) = (0, None);
    let began = Instant::now();
    while received < total {
        let chunk = (total - received).min(MAX_CHUNK);
        match conn.get(&route, &format!("/bytes?n={chunk}")).await {
            Ok(n) if n == chunk => received += n,
            Ok(n) => {
                error = Some(format!("expected {chunk} body bytes, got {n}"));
                break;
            }
            Err(e) => {
                error = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let secs = began.elapsed().as_secs_f64();
    let bytes_per_sec = if secs > 0.0 { received as f64 / secs } else { 0.0 };
    Bulk { bytes: received, bytes_per_sec, error }
}

/// The test app at `app` runs `/bench` against `url`.
pub(super) async fn remote_latency(
    app: SocketAddr,
    url: &str,
    requests: u32,
    concurrency: u32,
    keepalive: bool,
) -> anyhow::Result<Run> {
    let path = format!(
        "/bench?url={}&n={requests}&concurrency={concurrency}&keepalive={keepalive}&samples=true",
        encode(url)
    );
    get_json(app, &path).await
}

/// The test app at `app` runs `/bench-bulk` against `url`.
pub(super) async fn remote_bulk(app: SocketAddr, url: &str, bytes: u64) -> anyhow::Result<Bulk> {
    get_json(app, &format!("/bench-bulk?url={}&bytes={bytes}", encode(url))).await
}

/// `GET path` at `addr`, a 200 with JSON.
pub(super) async fn get_json<T: DeserializeOwned>(
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<T> {
    let (status, body) = get(addr, path, REMOTE_TIMEOUT).await?;
    if status != StatusCode::OK {
        bail!(
            "GET http://{addr}{path} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("GET http://{addr}{path}: not the JSON expected"))
}

/// `GET path` at `addr` on a new connection: the status and the body.
pub(super) async fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let work = async {
        let mut sender = handshake(Box::new(tcp(addr).await?)).await?;
        let request =
            Request::get(path).header(header::HOST, addr.to_string()).body(Empty::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(anyhow!("no answer from {addr} within {timeout:?}")))
}

/// Takes one request from the shared budget; `false` once it is spent.
fn take(tickets: &AtomicU32) -> bool {
    tickets.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// `samples_us` may be `null`.
fn samples<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    Ok(Option::<Vec<u32>>::deserialize(d)?.unwrap_or_default())
}

/// Percent-encodes a query value.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_decode_with_or_without_samples() {
        let run: Run =
            serde_json::from_str(r#"{"requests":2,"errors":1,"first_error":"x","wall_us":9,"summary":{},"samples_us":[5,7]}"#)
                .unwrap();
        assert_eq!((run.us, run.errors, run.first_error.as_deref()), (vec![5, 7], 1, Some("x")));
        let run: Run =
            serde_json::from_str(r#"{"errors":0,"first_error":null,"samples_us":null}"#).unwrap();
        assert!(run.us.is_empty());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("http://10.0.0.2:8080/bytes?n=1&x"),
            "http://10.0.0.2:8080/bytes%3Fn%3D1%26x"
        );
    }

    #[tokio::test]
    async fn client_thread_runs_work_and_stops() {
        let client = ClientThread::start().unwrap();
        let name = client.run(async { std::thread::current().name().map(str::to_owned) }).await;
        assert_eq!(name.unwrap().as_deref(), Some("bench-client"));
        assert!(client.tid().is_some());
        drop(client);
    }
}
