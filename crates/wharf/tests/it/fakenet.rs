//! The fake internet the egress and leak suites run against, and the handlers on the host.
//!
//! Nothing here ever contacts a public address or resolver:
//!
//! * [`FakeNet`]: a bridge network of our own (a /24 in 10.201.0.0/16) holding one test-app
//!   "server" (HTTP on 8080, the greeter on [`GREETING_PORT`], the TCP echo on
//!   [`TCP_ECHO_PORT`]), which pass-through reaches from the host; and, on Docker's default
//!   bridge, the stub DNS server (with the UDP echo on [`UDP_ECHO_PORT`]) that every egress
//!   daemon hands its sidecars as their upstream resolver ([`FakeNet::daemon`]). Docker
//!   isolates the two bridges from each other, so an app reaches the server only through the
//!   engine; and the engine never passes through to the default bridge, which is why the
//!   server lives on a network of our own.
//! * [`HttpBinding`], [`TcpBinding`], [`HostGreeter`]: handlers on 127.0.0.1 (the engine dials
//!   targets from the host), answering like workerd's `TestService`.
//!
//! One fake internet is shared by the tests that run at the same time and removed when the last
//! of them drops it (pass or fail: `Drop` runs during unwinding and when a timeout drops the
//! test). Everything it creates carries [`MANAGED`] and [`RUN_LABEL`] (this process's pid);
//! leftovers of a process that was killed are removed the next time one is built.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::docker::{ContainerSpec, DockerApi, NetworkMode, Resources};

use crate::harness::{TESTAPP, TestDaemon, docker, raw};

/// On everything wharf (and its tests) create.
const MANAGED: &str = wharf_engine::labels::MANAGED;
/// Names the test process that created a fake-internet object (its pid).
pub(crate) const RUN_LABEL: &str = "dev.wharf.it-fakenet";
/// The greeter's port on the server.
pub(crate) const GREETING_PORT: u16 = 2525;
/// The TCP echo's port on the server.
pub(crate) const TCP_ECHO_PORT: u16 = 7000;
/// The UDP echo's port on the stub.
pub(crate) const UDP_ECHO_PORT: u16 = 5353;
/// A TEST-NET-3 address the stub gives `tls.test`; nothing ever answers there.
pub(crate) const TLS_TEST_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// How long the fake servers may take to listen.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The fake internet.
#[derive(Debug)]
pub(crate) struct FakeNet {
    /// The network's name.
    pub(crate) network: String,
    /// The server on it: HTTP 8080, greeter, TCP echo. `real.test`, `greeter.test` and
    /// `*.wild.test` resolve to it at the stub.
    pub(crate) server: Ipv4Addr,
    /// The stub DNS server (53, UDP and TCP) and UDP echo, on the default bridge.
    pub(crate) stub: Ipv4Addr,
    /// The stub container's name, for its logs.
    pub(crate) stub_name: String,
    /// The default bridge's gateway (the host, as containers see it).
    pub(crate) gateway: Ipv4Addr,
    containers: Vec<String>,
}

impl FakeNet {
    /// The fake internet of the tests running now, built if there is none.
    pub(crate) async fn get() -> anyhow::Result<Arc<FakeNet>> {
        static SHARED: tokio::sync::Mutex<Weak<FakeNet>> =
            tokio::sync::Mutex::const_new(Weak::new());
        let mut shared = SHARED.lock().await;
        if let Some(net) = shared.upgrade() {
            return Ok(net);
        }
        let net = Arc::new(FakeNet::build().await?);
        *shared = Arc::downgrade(&net);
        Ok(net)
    }

    /// A daemon whose sidecars use the stub as their upstream resolver.
    pub(crate) async fn daemon(&self) -> anyhow::Result<TestDaemon> {
        TestDaemon::spawn_with_dns(vec![IpAddr::V4(self.stub)]).await
    }

    /// The stub's log so far.
    pub(crate) fn stub_log(&self) -> String {
        std::process::Command::new("docker")
            .args(["logs", &self.stub_name])
            .output()
            .map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text
            })
            .unwrap_or_default()
    }

    async fn build() -> anyhow::Result<FakeNet> {
        remove_leftovers_of_dead_runs();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("wharf-it-fakenet-{pid}-{n}");
        let labels: BTreeMap<String, String> =
            [(MANAGED.to_owned(), "true".to_owned()), (RUN_LABEL.to_owned(), pid.to_string())]
                .into();
        let docker = BollardDocker::connect(None).await?;
        // From here on, `net` removes whatever was made if a later step fails.
        let mut net = FakeNet {
            network: prefix.clone(),
            server: Ipv4Addr::UNSPECIFIED,
            stub: Ipv4Addr::UNSPECIFIED,
            stub_name: format!("{prefix}-stub"),
            gateway: Ipv4Addr::UNSPECIFIED,
            containers: Vec::new(),
        };
        create_network(&docker, &prefix, &labels).await?;

        let server = format!("{prefix}-server");
        let env = [format!("GREETING_PORT={GREETING_PORT}"), format!("TCP_PORT={TCP_ECHO_PORT}")];
        net.containers.push(server.clone());
        let info = run(&docker, &server, NetworkMode::Named(prefix.clone()), &env, &labels).await?;
        net.server = v4(info.ip).with_context(|| format!("{server} has no IPv4 address"))?;

        let records = format!(
            "real.test={s},greeter.test={s},*.wild.test={s},tls.test={TLS_TEST_IP}",
            s = net.server
        );
        let env = [
            "DNS_STUB=1".to_owned(),
            format!("DNS_RECORDS={records}"),
            format!("UDP_PORT={UDP_ECHO_PORT}"),
        ];
        net.containers.push(net.stub_name.clone());
        let info = run(&docker, &net.stub_name, NetworkMode::Bridge, &env, &labels).await?;
        net.stub = v4(info.ip).context("the stub has no IPv4 address")?;
        net.gateway = v4(info.gateway).context("the stub has no gateway")?;

        let deadline = Instant::now() + READY_WITHIN;
        for port in [8080, GREETING_PORT, TCP_ECHO_PORT] {
            listening(SocketAddr::from((net.server, port)), deadline).await?;
        }
        for port in [8080, 53] {
            listening(SocketAddr::from((net.stub, port)), deadline).await?;
        }
        Ok(net)
    }
}

impl Drop for FakeNet {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(self.containers.iter().map(String::as_str));
            quiet_docker(&args);
        }
        quiet_docker(&["network", "rm", &self.network]);
    }
}

/// Creates the network on the first free /24 of 10.201.0.0/16 from a per-process start.
async fn create_network(
    docker: &BollardDocker,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<ipnet::Ipv4Net> {
    let start = std::process::id() as usize % 200;
    let mut last = None;
    for i in 0..40 {
        let third = 20 + (start + i * 7) % 230;
        let subnet: ipnet::Ipv4Net = format!("10.201.{third}.0/24").parse()?;
        match docker.create_network(name, subnet.into(), labels).await {
            Ok(_) => return Ok(subnet),
            // Most likely another network has this subnet: try the next.
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow!("no free /24 in 10.201.0.0/16 for {name}: {last:?}"))
}

/// Creates and starts a test-app container; returns its inspect.
async fn run(
    docker: &BollardDocker,
    name: &str,
    network: NetworkMode,
    env: &[String],
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<wharf_engine::docker::ContainerInfo> {
    let spec = ContainerSpec {
        name: name.to_owned(),
        image: TESTAPP.to_owned(),
        entrypoint: None,
        cmd: None,
        env: env.to_vec(),
        labels: labels.clone(),
        network,
        publish: Vec::new(),
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        extra_hosts: Vec::new(),
        dns: Vec::new(),
        sysctls: BTreeMap::new(),
        resources: Resources::default(),
    };
    docker.create_container(&spec).await.with_context(|| format!("creating {name}"))?;
    docker.start_container(name).await.with_context(|| format!("starting {name}"))?;
    Ok(docker.inspect_container(name).await?)
}

fn v4(ip: Option<IpAddr>) -> Option<Ipv4Addr> {
    match ip? {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// Waits until something accepts TCP connections at `addr` (from the host).
async fn listening(addr: SocketAddr, deadline: Instant) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(()),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => bail!("nothing listens at {addr}: {other:?}"),
        }
    }
}

fn quiet_docker(args: &[&str]) {
    let _ = std::process::Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes the containers and networks of fake internets whose process is gone (a test binary
/// that was killed before its `Drop` could run). Once per process.
fn remove_leftovers_of_dead_runs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = format!("label={RUN_LABEL}");
        let format = format!("{{{{.ID}}}} {{{{.Label \"{RUN_LABEL}\"}}}}");
        let dead = |listing: String| -> Vec<String> {
            listing
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(_, pid)| !std::path::Path::new(&format!("/proc/{pid}")).exists())
                .map(|(id, _)| id.to_owned())
                .collect()
        };
        let containers = dead(docker(&["ps", "-a", "--filter", &filter, "--format", &format]));
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            quiet_docker(&args);
        }
        for network in dead(docker(&["network", "ls", "--filter", &filter, "--format", &format])) {
            quiet_docker(&["network", "rm", &network]);
        }
    });
}

// === Handlers on the host ===

/// What an HTTP handler received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The URL the app asked for: `<proto>://<Host><path>`.
    pub(crate) url: String,
    /// The request's headers.
    pub(crate) headers: http::HeaderMap,
}

/// An HTTP handler: answers `hello binding: <id> <url>`, where the URL is rebuilt from the
/// `Forwarded` proto and the unchanged `Host`, as workerd's `TestService` sees `request.url`;
/// a WebSocket upgrade echoes each message as `Binding <id>: <msg>`.
#[derive(Debug)]
pub(crate) struct HttpBinding {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpBinding {
    /// Listens on 127.0.0.1.
    pub(crate) async fn spawn(id: &str) -> anyhow::Result<HttpBinding> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (id, log) = (Arc::<str>::from(id), Arc::clone(&seen));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (id, log) = (Arc::clone(&id), Arc::clone(&log));
                let service = service_fn(move |req| {
                    let (id, log) = (Arc::clone(&id), Arc::clone(&log));
                    async move { Ok::<_, Infallible>(answer(&id, &log, req)) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        });
        Ok(HttpBinding { addr, seen })
    }

    /// The mapping target: `http://127.0.0.1:<port>`.
    pub(crate) fn target(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn answer(id: &str, log: &Mutex<Vec<Seen>>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let forwarded = req.headers().get(header::FORWARDED).and_then(|v| v.to_str().ok());
    let proto = forwarded
        .and_then(|f| f.split(';').find_map(|p| p.trim().strip_prefix("proto=")))
        .unwrap_or("http")
        .to_owned();
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("?");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{proto}://{host}{path}");
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Seen { url: url.clone(), headers: req.headers().clone() });
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes()));
    if let Some(accept) = key {
        let upgrade = hyper::upgrade::on(&mut req);
        let id = id.to_owned();
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let reply = format!("Binding {id}: {}", text.as_str());
                    if ws.send(Message::text(reply)).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = res.headers_mut();
        headers.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
        if let Ok(v) = http::HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        return res;
    }
    Response::new(Full::new(Bytes::from(format!("hello binding: {id} {url}"))))
}

/// A TCP handler: reads a line and answers `tcp binding: <id> got: <line, trimmed>`, as
/// workerd's `TestService.connect` does. A TLS client (first byte 0x16) gets no answer: what it
/// sent is kept (see [`TcpBinding::received`]) until it stops for a moment, then it is closed.
#[derive(Debug)]
pub(crate) struct TcpBinding {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TcpBinding {
    /// Listens on 127.0.0.1.
    pub(crate) async fn spawn(id: &str) -> anyhow::Result<TcpBinding> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let (id, log) = (id.to_owned(), Arc::clone(&received));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (id, log) = (id.clone(), Arc::clone(&log));
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let idle = Duration::from_millis(500);
                        match tokio::time::timeout(idle, stream.read(&mut buf)).await {
                            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                        if got.first() != Some(&0x16) && got.contains(&b'\n') {
                            let line = String::from_utf8_lossy(&got);
                            let reply = format!("tcp binding: {id} got: {}", line.trim());
                            let _ = stream.write_all(reply.as_bytes()).await;
                            break;
                        }
                    }
                    log.lock().unwrap_or_else(PoisonError::into_inner).push(got);
                });
            }
        });
        Ok(TcpBinding { addr, received })
    }

    /// The mapping target: `127.0.0.1:<port>`.
    pub(crate) fn target(&self) -> String {
        self.addr.to_string()
    }

    /// What each finished connection sent.
    pub(crate) fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A server-speaks-first handler: greets `220 host greeter <id>`, answers the next line with
/// `221 bye`, closes.
#[derive(Debug)]
pub(crate) struct HostGreeter {
    addr: SocketAddr,
}

impl HostGreeter {
    /// Listens on 127.0.0.1.
    pub(crate) async fn spawn(id: &str) -> anyhow::Result<HostGreeter> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let id = id.to_owned();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let greeting = format!("220 host greeter {id}\r\n");
                tokio::spawn(async move {
                    stream.write_all(greeting.as_bytes()).await?;
                    let mut line = Vec::new();
                    let mut byte = [0u8; 1];
                    while stream.read(&mut byte).await? == 1 && byte[0] != b'\n' {
                        line.push(byte[0]);
                    }
                    stream.write_all(b"221 bye\r\n").await?;
                    stream.shutdown().await
                });
            }
        });
        Ok(HostGreeter { addr })
    }

    /// The mapping target: `127.0.0.1:<port>`.
    pub(crate) fn target(&self) -> String {
        self.addr.to_string()
    }
}

// === The API, as the egress tests use it ===

/// `POST /v1/containers/{id}/egress`; requires 204.
pub(crate) async fn map(
    d: &TestDaemon,
    id: &str,
    protocol: &str,
    host_port: &str,
    target: &str,
) -> anyhow::Result<()> {
    let body = json!({"protocol": protocol, "hostPort": host_port, "target": target});
    let reply = d.request(Method::POST, &format!("/v1/containers/{id}/egress"), Some(body)).await?;
    ensure!(
        reply.status == StatusCode::NO_CONTENT,
        "mapping {protocol} {host_port} → {target}: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(())
}

/// `GET <path>` on the app's port 8080 through the API with `headers`; `"<status> <body>"`.
pub(crate) async fn app_get(
    d: &TestDaemon,
    id: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    let path = format!("/v1/containers/{id}/http/8080{path}");
    let (status, _, body) = raw(d.client().addr(), Method::GET, &path, headers, "").await?;
    Ok(format!("{} {}", status.as_u16(), String::from_utf8_lossy(&body)))
}

/// The app's `/intercept` (plain HTTP) of `x_host`.
pub(crate) async fn intercept(d: &TestDaemon, id: &str, x_host: &str) -> anyhow::Result<String> {
    app_get(d, id, "/intercept", &[("x-host", x_host)]).await
}

/// The app's `/intercept-https` of `x_host`.
pub(crate) async fn intercept_https(
    d: &TestDaemon,
    id: &str,
    x_host: &str,
) -> anyhow::Result<String> {
    app_get(d, id, "/intercept-https", &[("x-host", x_host)]).await
}

/// The app's `/connect?target=`.
pub(crate) async fn connect_probe(
    d: &TestDaemon,
    id: &str,
    target: &str,
) -> anyhow::Result<String> {
    app_get(d, id, &format!("/connect?target={target}"), &[]).await
}

/// `GET /v1/containers/{id}/egress/log`.
pub(crate) async fn egress_log(d: &TestDaemon, id: &str) -> anyhow::Result<Vec<Value>> {
    Ok(d.client().json(Method::GET, &format!("/v1/containers/{id}/egress/log"), None).await?)
}

/// Polls the egress log (events are written when a connection ends, DNS answers in batches)
/// until an event satisfies `want`; returns it.
pub(crate) async fn logged(
    d: &TestDaemon,
    id: &str,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = egress_log(d, id).await?;
        if let Some(event) = log.iter().find(|e| want(e)) {
            return Ok(event.clone());
        }
        if Instant::now() > deadline {
            bail!("no egress log event for {what} in {}", serde_json::to_string_pretty(&log)?);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /v1/containers/{id}/egress/why?to=…&protocol=…`.
pub(crate) async fn why(
    d: &TestDaemon,
    id: &str,
    to: &str,
    protocol: Option<&str>,
) -> anyhow::Result<Value> {
    let mut path = format!("/v1/containers/{id}/egress/why?to={to}");
    if let Some(p) = protocol {
        path.push_str(&format!("&protocol={p}"));
    }
    Ok(d.client().json(Method::GET, &path, None).await?)
}

/// Runs `cmd` in the app to the end; its stdout (the exit code must be 0).
pub(crate) async fn exec_ok(d: &TestDaemon, id: &str, script: &str) -> anyhow::Result<String> {
    let r = d.exec(id, json!({"cmd": ["/bin/sh", "-c", script]})).await?;
    ensure!(r["exitCode"] == 0, "`{script}` in {id}: {r}");
    Ok(r["stdout"].as_str().unwrap_or_default().to_owned())
}
