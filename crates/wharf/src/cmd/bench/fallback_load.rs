//! The three ways of asking the fallback service that `wharf bench fallback` compares, behind
//! one blocking [`Resolve`] trait, and the load loop that drives them from caller threads.
//!
//! * [`Naive`]: released workerd before PR #6115. A new TCP connection per resolution, and a
//!   301's body is never read. The client closes first, so every connection leaves a
//!   `TIME_WAIT` on a client port.
//! * [`Single`]: the seed's fix. One connection on a thread of its own, callers handing requests
//!   over through a single mutex slot (here behind a gate, so that concurrent callers wait
//!   their turn instead of crossing answers, spec §2.8), bodies drained, any failure retried once.
//! * [`Wharf`]: `wharf_fallback::client::BlockingClient`, the shared pool.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wharf_fallback::client::{BlockingClient, Client, ClientConfig, Stats};
use wharf_fallback::{Answer, Request, ResolveMethod, V1Request};

/// How long a baseline waits on a socket before calling it a failure, so nothing hangs.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// One way of asking.
pub(super) trait Resolve: Send + Sync {
    fn resolve(&self, request: &Request) -> Result<Answer, Failure>;

    /// The pool's counters, for the pooled client.
    fn pool_stats(&self) -> Option<Stats> {
        None
    }
}

/// A resolution that got no answer.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    message: String,
    /// The connect found no free local port (`EADDRNOTAVAIL`).
    addr_not_available: bool,
}

/// What one load run gathered.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Latency of every resolution that got the expected answer, µs.
    pub(super) us: Vec<u32>,
    pub(super) errors: u64,
    pub(super) addr_not_available: u64,
    pub(super) first_error: Option<String>,
    pub(super) wall: Duration,
    /// Failures among the resolutions made after idle gaps, when there were any.
    pub(super) gaps: Option<u64>,
}

/// The bench's workload: resolution `k` asks for module `k / 2`; even ones without the
/// extension, which the server answers with a 301 to the `.js` file (as workerd would then
/// ask), odd ones for the file itself. So half the answers are redirects.
pub(super) fn workload(k: u32, modules: u32) -> (Request, bool) {
    let i = (k / 2) % modules;
    let redirect = k.is_multiple_of(2);
    let (path, raw) = if redirect {
        (format!("/m{i}"), format!("./m{i}"))
    } else {
        (format!("/m{i}.js"), format!("./m{i}.js"))
    };
    (Request::V1(V1Request::new(&path, "/main.js", &raw, ResolveMethod::Import)), redirect)
}

/// Runs `requests` resolutions from `concurrency` caller threads, each asking its share in turn.
pub(super) fn run(
    resolver: Arc<dyn Resolve>,
    concurrency: u32,
    requests: u32,
    modules: u32,
) -> Outcome {
    let began = Instant::now();
    let callers: Vec<JoinHandle<Outcome>> = (0..concurrency)
        .map(|t| {
            let resolver = resolver.clone();
            std::thread::spawn(move || caller(&*resolver, t, concurrency, requests, modules))
        })
        .collect();
    let mut total = Outcome::default();
    for caller in callers {
        let outcome = caller.join().unwrap_or_else(|_| Outcome {
            errors: 1,
            first_error: Some("a caller thread panicked".to_owned()),
            ..Outcome::default()
        });
        total.merge(outcome);
    }
    total.wall = began.elapsed();
    total
}

/// [`run`] for the async API: `concurrency` tasks on the current runtime.
pub(super) async fn run_async(
    client: &Client,
    concurrency: u32,
    requests: u32,
    modules: u32,
) -> Outcome {
    let began = Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                for k in (t..requests).step_by(concurrency as usize) {
                    let (request, redirect) = workload(k, modules);
                    let began = Instant::now();
                    let answer = client.resolve(&request).await;
                    let us = u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX);
                    let failure = match answer {
                        Ok(Answer::Redirect(_)) if redirect => None,
                        Ok(Answer::Module(_)) if !redirect => None,
                        Ok(other) => Some(Failure::new(format!("wrong answer: {other:?}"))),
                        Err(e) => Some(Failure {
                            addr_not_available: e.is_addr_not_available(),
                            message: e.to_string(),
                        }),
                    };
                    match failure {
                        None => outcome.us.push(us),
                        Some(failure) => outcome.fail(failure),
                    }
                }
                outcome
            })
        })
        .collect();
    let mut total = Outcome::default();
    for caller in callers {
        let outcome = caller.await.unwrap_or_else(|_| Outcome {
            errors: 1,
            first_error: Some("a caller task panicked".to_owned()),
            ..Outcome::default()
        });
        total.merge(outcome);
    }
    total.wall = began.elapsed();
    total
}

/// `n` resolutions one after another, each after sleeping `gap`; returns how many failed.
pub(super) fn gaps(resolver: &dyn Resolve, n: u32, gap: Duration, modules: u32) -> u64 {
    (0..n)
        .filter(|&k| {
            std::thread::sleep(gap);
            let (request, redirect) = workload(k, modules);
            !matches!(
                (resolver.resolve(&request), redirect),
                (Ok(Answer::Redirect(_)), true) | (Ok(Answer::Module(_)), false)
            )
        })
        .count() as u64
}

/// [`gaps`] for the async API.
pub(super) async fn gaps_async(client: &Client, n: u32, gap: Duration, modules: u32) -> u64 {
    let mut failed = 0;
    for k in 0..n {
        tokio::time::sleep(gap).await;
        let (request, redirect) = workload(k, modules);
        let ok = matches!(
            (client.resolve(&request).await, redirect),
            (Ok(Answer::Redirect(_)), true) | (Ok(Answer::Module(_)), false)
        );
        failed += u64::from(!ok);
    }
    failed
}

fn caller(resolver: &dyn Resolve, t: u32, step: u32, requests: u32, modules: u32) -> Outcome {
    let mut outcome = Outcome::default();
    for k in (t..requests).step_by(step as usize) {
        let (request, redirect) = workload(k, modules);
        let began = Instant::now();
        let answer = resolver.resolve(&request);
        let us = u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX);
        match answer {
            Ok(Answer::Redirect(_)) if redirect => outcome.us.push(us),
            Ok(Answer::Module(_)) if !redirect => outcome.us.push(us),
            Ok(other) => outcome.fail(Failure::new(format!("wrong answer: {other:?}"))),
            Err(failure) => outcome.fail(failure),
        }
    }
    outcome
}

// === impl Outcome ===

impl Outcome {
    fn fail(&mut self, failure: Failure) {
        self.errors += 1;
        self.addr_not_available += u64::from(failure.addr_not_available);
        self.first_error.get_or_insert(failure.message);
    }

    fn merge(&mut self, other: Outcome) {
        self.us.extend(other.us);
        self.errors += other.errors;
        self.addr_not_available += other.addr_not_available;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

// === impl Failure ===

impl Failure {
    fn new(message: String) -> Failure {
        Failure { message, addr_not_available: false }
    }

    fn io(what: &str, e: &io::Error) -> Failure {
        Failure {
            message: format!("{what}: {e}"),
            addr_not_available: e.kind() == io::ErrorKind::AddrNotAvailable,
        }
    }
}

/// A new connection per resolution; 301 bodies not read.
#[derive(Debug)]
pub(super) struct Naive {
    pub(super) addr: SocketAddr,
}

impl Resolve for Naive {
    fn resolve(&self, request: &Request) -> Result<Answer, Failure> {
        let mut stream = connect(self.addr)?;
        stream.write_all(&wire(request)?).map_err(|e| Failure::io("write", &e))?;
        let raw = read_response(&mut stream, false).map_err(|e| Failure::io("read", &e))?;
        raw.answer(request)
        // The stream drops here: the client closes first.
    }
}

/// The seed's single slot.
#[derive(Debug)]
pub(super) struct Single {
    gate: Mutex<()>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    asked: Condvar,
    answered: Condvar,
}

#[derive(Debug, Default)]
struct Slot {
    request: Option<Vec<u8>>,
    response: Option<Result<Raw, Failure>>,
    shutdown: bool,
}

impl Single {
    pub(super) fn start(addr: SocketAddr) -> io::Result<Single> {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bench-single-slot".to_owned())
            .spawn(move || single_slot_thread(&worker, addr))?;
        Ok(Single { gate: Mutex::new(()), shared, thread: Some(thread) })
    }
}

impl Resolve for Single {
    fn resolve(&self, request: &Request) -> Result<Answer, Failure> {
        let bytes = wire(request)?;
        let _turn = lock(&self.gate);
        let mut slot = lock(&self.shared.slot);
        slot.request = Some(bytes);
        self.shared.asked.notify_one();
        let raw = loop {
            if let Some(response) = slot.response.take() {
                break response?;
            }
            slot = self.shared.answered.wait(slot).unwrap_or_else(PoisonError::into_inner);
        };
        drop(slot);
        raw.answer(request)
    }
}

impl Drop for Single {
    fn drop(&mut self) {
        lock(&self.shared.slot).shutdown = true;
        self.shared.asked.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The slot's thread: one connection, every body drained, up to two attempts per request.
fn single_slot_thread(shared: &Shared, addr: SocketAddr) {
    let mut conn: Option<TcpStream> = None;
    loop {
        let request = {
            let mut slot = lock(&shared.slot);
            loop {
                if slot.shutdown {
                    return;
                }
                if let Some(request) = slot.request.take() {
                    break request;
                }
                slot = shared.asked.wait(slot).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut result = exchange(&mut conn, addr, &request);
        if result.is_err() {
            conn = None;
            result = exchange(&mut conn, addr, &request);
        }
        if result.is_err() {
            conn = None;
        }
        lock(&shared.slot).response = Some(result);
        shared.answered.notify_one();
    }
}

fn exchange(
    conn: &mut Option<TcpStream>,
    addr: SocketAddr,
    request: &[u8],
) -> Result<Raw, Failure> {
    let stream = match conn {
        Some(stream) => stream,
        None => conn.insert(connect(addr)?),
    };
    stream.write_all(request).map_err(|e| Failure::io("write", &e))?;
    read_response(stream, true).map_err(|e| Failure::io("read", &e))
}

/// The pooled client.
#[derive(Debug)]
pub(super) struct Wharf {
    client: BlockingClient,
}

impl Wharf {
    pub(super) fn start(config: ClientConfig) -> io::Result<Wharf> {
        Ok(Wharf { client: BlockingClient::new(config)? })
    }
}

impl Resolve for Wharf {
    fn resolve(&self, request: &Request) -> Result<Answer, Failure> {
        self.client.resolve(request).map_err(|e| Failure {
            addr_not_available: e.is_addr_not_available(),
            message: e.to_string(),
        })
    }

    fn pool_stats(&self) -> Option<Stats> {
        Some(self.client.stats())
    }
}

/// The parts of a response the protocol needs.
#[derive(Debug)]
struct Raw {
    status: u16,
    location: Option<Vec<u8>>,
    body: Vec<u8>,
}

impl Raw {
    fn answer(&self, request: &Request) -> Result<Answer, Failure> {
        Answer::from_http(
            self.status,
            self.location.as_deref(),
            &self.body,
            request.effective_specifier(),
        )
        .map_err(|e| Failure::new(e.to_string()))
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let stream = TcpStream::connect(addr).map_err(|e| Failure::io("connect", &e))?;
    let configure = |s: &TcpStream| {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(SOCKET_TIMEOUT))?;
        s.set_write_timeout(Some(SOCKET_TIMEOUT))
    };
    configure(&stream).map_err(|e| Failure::io("configure", &e))?;
    Ok(stream)
}

/// The request as bytes, the way the client crate would send it.
fn wire(request: &Request) -> Result<Vec<u8>, Failure> {
    let http = request.to_http().map_err(|e| Failure::new(e.to_string()))?;
    let mut out = format!("{} {} HTTP/1.1\r\n", http.method(), http.uri()).into_bytes();
    for (name, value) in http.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(http.body());
    Ok(out)
}

/// Reads one `Content-Length` response. With `drain_redirects` false a 301's body is left
/// unread, as workerd did before PR #6115.
fn read_response(stream: &mut TcpStream, drain_redirects: bool) -> io::Result<Raw> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 16 << 10];
    let (head_len, status, location, length) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf).map_err(|e| invalid(e.to_string()))? {
            httparse::Status::Partial => continue,
            httparse::Status::Complete(head_len) => {
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| h.value.to_vec())
                };
                let length = header("content-length")
                    .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<usize>().ok())
                    .ok_or_else(|| {
                        invalid("the bench reads Content-Length responses only".to_owned())
                    })?;
                break (head_len, response.code.unwrap_or(0), header("location"), length);
            }
        }
    };
    if status == 301 && !drain_redirects {
        return Ok(Raw { status, location, body: Vec::new() });
    }
    while buf.len() < head_len + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(head_len + length);
    Ok(Raw { status, location, body: buf.split_off(head_len) })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
