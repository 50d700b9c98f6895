//! `/bench`, `/bench-bulk` and `/bytes`: the load generator and the bulk source that
//! `wharf bench egress` runs inside containers, so every path it compares is driven by the
//! same client code.
//!
//! | route | does | answers |
//! |---|---|---|
//! | `GET /bytes?n=N` | serves `N` zero bytes (at most [`MAX_CHUNK`]) | the bytes |
//! | `GET /bench?url=http://H:P/path&n=N&concurrency=C&keepalive=B&samples=B` | `N` `GET`s to the URL from `C` workers (default 1), each on one kept-alive connection (`keepalive=true`, the default) or a new connection per request | [`LatencyReport`] |
//! | `GET /bench-bulk?url=http://H:P/bytes&bytes=N` | fetches `N` bytes from the URL's `/bytes` on one connection, [`MAX_CHUNK`] per request | [`BulkReport`] |
//!
//! A request's latency runs from just before it is sent (before the connect, when each request
//! has its own connection) to the last byte of the answer's body. A request that fails, times
//! out after [`REQUEST_TIMEOUT`] or answers other than 2xx is counted in `errors` and its
//! connection is dropped; it has no latency sample. Bad parameters answer 400.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::dial::Dialer;
use crate::errors;
use crate::query::param;
use crate::routes::{Body, json, text};
use crate::target::{HttpTarget, Scheme};

/// The largest `/bytes` answer, and the size of each request of a bulk fetch.
pub const MAX_CHUNK: u64 = 16 << 20;
/// The most requests one `/bench` may make.
pub const MAX_REQUESTS: u32 = 10_000_000;
/// The most workers one `/bench` may run.
pub const MAX_CONCURRENCY: u32 = 1024;
/// How long one request (one chunk, for bulk) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Zeros shared by every `/bytes` answer: sliced, never copied.
static ZEROS: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(vec![0; MAX_CHUNK as usize]));

/// What `/bench` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    /// Requests that succeeded.
    pub requests: u32,
    /// Requests that failed.
    pub errors: u32,
    /// The first failure, for the log.
    pub first_error: Option<String>,
    /// From the first request to the last answer, in µs.
    pub wall_us: u64,
    /// The latencies of the successful requests.
    pub summary: Summary,
    /// Every successful request's latency in µs, in completion order (with `samples=true`).
    pub samples_us: Option<Vec<u32>>,
}

/// Latency percentiles (nearest rank) and extremes, in µs; all 0 without samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Median.
    pub p50_us: u32,
    /// 90th percentile.
    pub p90_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Fastest.
    pub min_us: u32,
    /// Slowest.
    pub max_us: u32,
}

/// What `/bench-bulk` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkReport {
    /// Body bytes received.
    pub bytes: u64,
    /// Requests made.
    pub requests: u32,
    /// From the first request to the last byte, in µs.
    pub wall_us: u64,
    /// `bytes` per second of `wall_us`.
    pub bytes_per_sec: f64,
    /// Why the fetch stopped early, if it did.
    pub error: Option<String>,
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No connection.
    #[error("connect to {addr}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("http exchange")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("building the request")]
    Request(#[from] http::Error),
    /// The server answered with a non-success status.
    #[error("answered {0}")]
    Status(StatusCode),
    /// The answer's body was not as long as asked.
    #[error("expected {expected} body bytes, got {got}")]
    Short {
        /// Asked for.
        expected: u64,
        /// Received.
        got: u64,
    },
    /// No answer within [`REQUEST_TIMEOUT`].
    #[error("no answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
}

/// Where to send requests: an address, the `Host` header and the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

/// One worker's connection: kept between requests, or made anew for each.
struct Conn {
    keepalive: bool,
    sender: Option<http1::SendRequest<Empty<Bytes>>>,
}

/// Answers `/bytes`, `/bench` and `/bench-bulk`; anything else is 404.
pub async fn handle(dialer: &Dialer, path: &str, query: Option<&str>) -> Response<Body> {
    let answer = match path {
        "/bytes" => bytes(query),
        "/bench" => latency_route(dialer, query).await,
        "/bench-bulk" => bulk_route(dialer, query).await,
        _ => return text(StatusCode::NOT_FOUND, "no such bench route"),
    };
    answer.unwrap_or_else(|message| text(StatusCode::BAD_REQUEST, message))
}

/// A bad parameter, said in a sentence; the route answers it with 400.
type BadParam = String;

fn bytes(query: Option<&str>) -> Result<Response<Body>, BadParam> {
    let n = number(query, "n", 0, MAX_CHUNK)?;
    let mut response = Response::new(Full::new(ZEROS.slice(..n as usize)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

async fn latency_route(dialer: &Dialer, query: Option<&str>) -> Result<Response<Body>, BadParam> {
    let requests = number(query, "n", 1, u64::from(MAX_REQUESTS))? as u32;
    let concurrency = match param(query, "concurrency") {
        None => 1,
        Some(_) => number(query, "concurrency", 1, u64::from(MAX_CONCURRENCY))? as u32,
    };
    let keepalive = switch(query, "keepalive", true)?;
    let samples = switch(query, "samples", false)?;
    let target = url(dialer, query).await?;
    let mut report = latency(&target, requests, concurrency, keepalive).await;
    info!(
        target = %target.addr, requests, concurrency, keepalive, errors = report.errors,
        p50_us = report.summary.p50_us, p99_us = report.summary.p99_us, "bench"
    );
    if !samples {
        report.samples_us = None;
    }
    Ok(json(&report))
}

async fn bulk_route(dialer: &Dialer, query: Option<&str>) -> Result<Response<Body>, BadParam> {
    let total = number(query, "bytes", 1, u64::MAX)?;
    let target = url(dialer, query).await?;
    let report = bulk(&target, total).await;
    info!(
        target = %target.addr, bytes = report.bytes, bytes_per_sec = report.bytes_per_sec,
        error = ?report.error, "bench-bulk"
    );
    Ok(json(&report))
}

/// `GET`s `target` `requests` times from `concurrency` workers and reports every latency.
pub async fn latency(
    target: &Target,
    requests: u32,
    concurrency: u32,
    keepalive: bool,
) -> LatencyReport {
    let tickets = AtomicU32::new(requests);
    let began = Instant::now();
    let workers = (0..concurrency.min(requests)).map(|_| worker(target, keepalive, &tickets));
    let tallies = futures_util::future::join_all(workers).await;
    let wall_us = micros(began.elapsed());
    let mut samples = Vec::with_capacity(requests as usize);
    let (mut errors, mut first_error) = (0, None);
    for tally in tallies {
        samples.extend(tally.samples);
        errors += tally.errors;
        first_error = first_error.or(tally.first_error);
    }
    LatencyReport {
        requests: samples.len() as u32,
        errors,
        first_error,
        wall_us,
        summary: Summary::of(&samples),
        samples_us: Some(samples),
    }
}

/// Fetches `total` bytes from `target` (a `/bytes` route), [`MAX_CHUNK`] per request, on one
/// kept-alive connection.
pub async fn bulk(target: &Target, total: u64) -> BulkReport {
    let mut conn = Conn { keepalive: true, sender: None };
    let (mut received, mut requests, mut error) = (0, 0, None);
    let began = Instant::now();
    while received < total {
        let chunk = (total - received).min(MAX_CHUNK);
        let path = format!("{}?n={chunk}", target.path);
        requests += 1;
        match conn.get(target, &path, chunk).await {
            Ok(n) => received += n,
            Err(err) => {
                error = Some(errors::chain(&err));
                break;
            }
        }
    }
    let wall_us = micros(began.elapsed());
    let bytes_per_sec = if wall_us == 0 { 0.0 } else { received as f64 * 1e6 / wall_us as f64 };
    BulkReport { bytes: received, requests, wall_us, bytes_per_sec, error }
}

#[derive(Default)]
struct Tally {
    samples: Vec<u32>,
    errors: u32,
    first_error: Option<String>,
}

async fn worker(target: &Target, keepalive: bool, tickets: &AtomicU32) -> Tally {
    let mut tally = Tally::default();
    let mut conn = Conn { keepalive, sender: None };
    while take(tickets) {
        let began = Instant::now();
        match conn.get(target, &target.path, 0).await {
            Ok(_) => tally.samples.push(micros(began.elapsed()).min(u64::from(u32::MAX)) as u32),
            Err(err) => {
                debug!(error = %errors::chain(&err), "bench request failed");
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| errors::chain(&err));
            }
        }
    }
    tally
}

/// Takes one request from the shared budget; `false` once it is spent.
fn take(tickets: &AtomicU32) -> bool {
    tickets.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

// === impl Conn ===

impl Conn {
    /// One `GET path`; returns the body length, which must be `expect` unless that is 0.
    async fn get(&mut self, target: &Target, path: &str, expect: u64) -> Result<u64, RequestError> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(target, path)).await;
        let result = result.unwrap_or(Err(RequestError::Timeout)).and_then(|got| {
            if expect != 0 && got != expect {
                Err(RequestError::Short { expected: expect, got })
            } else {
                Ok(got)
            }
        });
        if result.is_err() || !self.keepalive {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, target: &Target, path: &str) -> Result<u64, RequestError> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            slot => slot.insert(handshake(target.addr).await?),
        };
        sender.ready().await?;
        let request = Request::get(path)
            .header(HOST, &target.host)
            .header(USER_AGENT, "wharf-testapp-bench")
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        if !response.status().is_success() {
            return Err(RequestError::Status(response.status()));
        }
        body_len(response.into_body()).await
    }
}

async fn handshake(addr: SocketAddr) -> Result<http1::SendRequest<Empty<Bytes>>, RequestError> {
    let stream =
        TcpStream::connect(addr).await.map_err(|source| RequestError::Connect { addr, source })?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(err) = conn.await {
            debug!(error = %err, "bench connection ended with an error");
        }
    });
    Ok(sender)
}

/// Reads a body to its end without keeping it.
async fn body_len(mut body: Incoming) -> Result<u64, RequestError> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

// === impl Target ===

impl Target {
    /// Requests to `path` at `addr`, with `host` as the `Host` header.
    pub fn new(addr: SocketAddr, host: &str, path: &str) -> Target {
        Target { addr, host: host.to_owned(), path: path.to_owned() }
    }

    /// Parses `http://host[:port][/path]`, resolving the host with `dialer`'s resolver.
    pub async fn resolve(dialer: &Dialer, url: &str) -> Result<Target, String> {
        let rest =
            url.strip_prefix("http://").ok_or_else(|| format!("url {url:?} is not http://"))?;
        let parsed = HttpTarget::parse(rest, Scheme::Http).map_err(|e| e.to_string())?;
        let authority = parsed.authority();
        let ips =
            dialer.resolver().resolve(authority.host()).await.map_err(|e| errors::chain(&e))?;
        let ip = ips.first().ok_or_else(|| format!("{} has no address", authority.host()))?;
        let addr = SocketAddr::new(*ip, authority.port());
        Ok(Target::new(addr, &authority.host_header(Scheme::Http), parsed.path()))
    }
}

// === impl Summary ===

impl Summary {
    /// The summary of `samples` (µs), in any order.
    pub fn of(samples: &[u32]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let sum: u64 = sorted.iter().map(|&s| u64::from(s)).sum();
        Summary {
            p50_us: percentile(&sorted, 50.0),
            p90_us: percentile(&sorted, 90.0),
            p99_us: percentile(&sorted, 99.0),
            mean_us: sum as f64 / sorted.len() as f64,
            min_us: sorted[0],
            max_us: sorted[sorted.len() - 1],
        }
    }
}

/// The nearest-rank percentile `p` (0–100] of `sorted`, which is not empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// === parameters ===

/// `url`, required, resolved.
async fn url(dialer: &Dialer, query: Option<&str>) -> Result<Target, BadParam> {
    let url = param(query, "url").ok_or("url is required")?;
    Target::resolve(dialer, &url).await
}

/// `key` as a number from `min` to `max`; required.
fn number(query: Option<&str>, key: &str, min: u64, max: u64) -> Result<u64, BadParam> {
    let raw = param(query, key).ok_or_else(|| format!("{key} is required"))?;
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{key} must be a number from {min} to {max}, got {raw:?}")),
    }
}

/// `key` as `true` or `false`, `default` when absent.
fn switch(query: Option<&str>, key: &str, default: bool) -> Result<bool, BadParam> {
    match param(query, key).as_deref() {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(format!("{key} must be true or false, got {other:?}")),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u32> = (1..=100).rev().collect();
        let s = Summary::of(&samples);
        assert_eq!((s.p50_us, s.p90_us, s.p99_us, s.min_us, s.max_us), (50, 90, 99, 1, 100));
        assert!((s.mean_us - 50.5).abs() < 1e-9);
        assert_eq!(Summary::of(&[7]).p99_us, 7);
        assert_eq!(Summary::of(&[]), Summary::default());
        assert_eq!(percentile(&[1, 2], 50.0), 1);
        assert_eq!(percentile(&[1, 2], 51.0), 2);
    }

    #[test]
    fn tickets_run_out() {
        let tickets = AtomicU32::new(2);
        assert!(take(&tickets) && take(&tickets));
        assert!(!take(&tickets));
        assert_eq!(tickets.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn parameters() {
        assert_eq!(number(Some("n=5"), "n", 1, 10), Ok(5));
        assert_eq!(
            number(Some("n=0"), "n", 1, 10),
            Err(r#"n must be a number from 1 to 10, got "0""#.to_owned())
        );
        assert!(number(Some("n=x"), "n", 1, 10).is_err());
        assert_eq!(number(None, "n", 1, 10), Err("n is required".to_owned()));
        assert!(switch(None, "keepalive", true).unwrap());
        assert!(!switch(Some("keepalive=false"), "keepalive", true).unwrap());
        assert!(switch(Some("keepalive=maybe"), "keepalive", true).is_err());
    }
}
