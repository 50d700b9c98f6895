//! The tier-2 harness: the gate, the images (built once per test binary), [`TestDaemon`] (an
//! in-process daemon on a unix socket or loopback TCP), [`Serve`] (the real `wharf serve`),
//! and the small HTTP helpers the tests share.
//!
//! Cleanup does not depend on a test passing: every daemon carries a [`Reaper`] whose `Drop`
//! force-removes each Docker container labelled with its engine name, so a panic or a timeout
//! (which drops the test body) still leaves `docker ps -a` empty. A passing test also calls
//! `stop`, which exercises the daemon's own reaping; the guard then finds nothing.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;
use wharf::artifacts::Recipes;
use wharf::client::{Client, ClientError, DaemonAddr, Reply};
use wharf::daemon::{Daemon, DaemonOptions, Listen, Warmth};
use wharf_engine::EngineName;
use wharf_engine::docker::bollard::BollardDocker;
use wharf_engine::images::ImageBuilder;
use wharf_engine::io_util::BoxIo;

/// The test app's image, as `Recipes::testapp` names it.
pub(crate) const TESTAPP: &str = "wharf/testapp:latest";
/// A test body's time limit: generous, so only a hang fails on it.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The env var that turns tier 2 on (with the `docker-tests` feature).
const ENABLE: &str = "WHARF_DOCKER_TESTS";
/// Debian's busybox-static, which the images are made of.
const BUSYBOX: &str = "/bin/busybox";
/// The label naming a container's engine (`wharf_engine::labels::ENGINE`).
const ENGINE_LABEL: &str = wharf_engine::labels::ENGINE;
/// How long an app may take to listen on 8080 after `start`.
const HEALTHY_WITHIN: Duration = Duration::from_secs(15);

/// Runs `async fn name() -> anyhow::Result<()> { … }` as a multi-threaded tokio test, only
/// when tier 2 is enabled, after the images exist, within [`TEST_TIMEOUT`].
macro_rules! docker_test {
    ($(#[$meta:meta])* async fn $name:ident() -> anyhow::Result<()> $body:block) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            async fn body() -> anyhow::Result<()> $body
            if !$crate::harness::enabled() {
                return;
            }
            let run = async {
                $crate::harness::images().await;
                body().await
            };
            match tokio::time::timeout($crate::harness::TEST_TIMEOUT, run).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("{}: {e:?}", stringify!($name)),
                Err(_) => panic!("{} timed out after {:?}", stringify!($name), $crate::harness::TEST_TIMEOUT),
            }
        }
    };
}

/// Whether tier 2 runs: built with `docker-tests` and `WHARF_DOCKER_TESTS=1`. Otherwise one
/// line on stderr (once per binary, written past libtest's capture so it is always seen)
/// says the tests were skipped and how to run them.
pub(crate) fn enabled() -> bool {
    let compiled = cfg!(feature = "docker-tests");
    let asked = env_enabled();
    if compiled && asked {
        return true;
    }
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        let why = match (compiled, asked) {
            (false, _) => "built without `--features docker-tests`",
            _ => "WHARF_DOCKER_TESTS is not 1",
        };
        let _ = writeln!(
            std::io::stderr(),
            "wharf it: Docker tests skipped ({why}); run them with `WHARF_DOCKER_TESTS=1 cargo test -p wharf --features docker-tests --test it`"
        );
    });
    false
}

/// `WHARF_DOCKER_TESTS=1`.
// The tier-2 gate is an env var by design (STYLE habit 22); tests have no config.rs to read
// it through, so this is the suite's one environment read.
#[allow(clippy::disallowed_methods)]
fn env_enabled() -> bool {
    std::env::var_os(ENABLE).is_some_and(|v| v == "1")
}

/// Makes sure both images exist, once per test binary. A failure panics this test; the next
/// test tries again.
pub(crate) async fn images() {
    static IMAGES: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    IMAGES
        .get_or_init(|| async {
            let recipes =
                Recipes::load(Path::new(BUSYBOX)).expect("busybox-static at /bin/busybox");
            let docker = BollardDocker::connect(None)
                .await
                .unwrap_or_else(|e| panic!("{ENABLE}=1 but the Docker daemon is unreachable: {e}"));
            let builder = ImageBuilder::new(Arc::new(docker));
            for recipe in [&recipes.sidecar, &recipes.testapp] {
                builder
                    .ensure(recipe, &|_| {})
                    .await
                    .unwrap_or_else(|e| panic!("building {}: {e:?}", recipe.reference));
            }
        })
        .await;
}

/// A unique engine name in this process: `<prefix>-<pid>-<n>`.
pub(crate) fn engine_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

// === Reaper ===

/// Force-removes every container of engine `name` when dropped (pass or fail).
#[derive(Debug)]
pub(crate) struct Reaper {
    engine: String,
}

impl Reaper {
    pub(crate) fn new(engine: &str) -> Reaper {
        Reaper { engine: engine.to_owned() }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let ids = owned_containers(&self.engine, "{{.ID}}");
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `docker ps -a` for engine `engine`'s containers, one `format` line each.
pub(crate) fn owned_containers(engine: &str, format: &str) -> Vec<String> {
    docker(&["ps", "-a", "--filter", &format!("label={ENGINE_LABEL}={engine}"), "--format", format])
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs the docker CLI and returns its stdout (empty on failure).
pub(crate) fn docker(args: &[&str]) -> String {
    std::process::Command::new("docker")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

// === TestDaemon ===

/// An in-process daemon with its own engine name and state directory.
#[derive(Debug)]
pub(crate) struct TestDaemon {
    daemon: Option<Daemon>,
    name: String,
    client: Client,
    _reaper: Reaper,
    _dir: tempfile::TempDir,
}

/// The resolver of sidecars in tests that need none: the sidecar's own loopback, where nothing
/// answers, so a forwarded query fails at once instead of leaving the machine.
pub(crate) const NO_RESOLVER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl TestDaemon {
    /// A daemon on a unix socket. Its sidecars' resolver is [`NO_RESOLVER`]: tests never send a
    /// query to the host's (real) resolver.
    pub(crate) async fn spawn() -> anyhow::Result<TestDaemon> {
        TestDaemon::spawn_on(false, vec![NO_RESOLVER]).await
    }

    /// A daemon with a warm pool of `pool_min` to `pool_max` sidecars (the others have none,
    /// so their sidecar names are predictable).
    pub(crate) async fn spawn_with_pool(
        pool_min: usize,
        pool_max: usize,
    ) -> anyhow::Result<TestDaemon> {
        let warmth = Warmth { pool_min, pool_max, ..Warmth::DEFAULT };
        TestDaemon::spawn_full(false, vec![NO_RESOLVER], warmth).await
    }

    /// A daemon on `127.0.0.1:0`, with [`NO_RESOLVER`].
    pub(crate) async fn spawn_tcp() -> anyhow::Result<TestDaemon> {
        TestDaemon::spawn_on(true, vec![NO_RESOLVER]).await
    }

    /// A daemon on a unix socket whose sidecars forward DNS to `upstream_dns` (the fake
    /// internet's stub), never to the host's resolver.
    pub(crate) async fn spawn_with_dns(upstream_dns: Vec<IpAddr>) -> anyhow::Result<TestDaemon> {
        ensure!(!upstream_dns.is_empty(), "an egress daemon needs the stub resolver");
        TestDaemon::spawn_on(false, upstream_dns).await
    }

    async fn spawn_on(tcp: bool, upstream_dns: Vec<IpAddr>) -> anyhow::Result<TestDaemon> {
        TestDaemon::spawn_full(tcp, upstream_dns, Warmth::KEEP_ONLY).await
    }

    async fn spawn_full(
        tcp: bool,
        upstream_dns: Vec<IpAddr>,
        warmth: Warmth,
    ) -> anyhow::Result<TestDaemon> {
        let name = engine_name("it");
        let reaper = Reaper::new(&name);
        let dir = tempfile::tempdir()?;
        let listen = if tcp {
            Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
        } else {
            Listen::Unix(dir.path().join("wharf.sock"))
        };
        let options = DaemonOptions {
            name: EngineName::new(&name)?,
            state_dir: dir.path().join("state"),
            listen,
            token: None,
            docker_host: None,
            busybox: PathBuf::from(BUSYBOX),
            upstream_dns,
            reap_on_shutdown: true,
            warmth,
        };
        let daemon = Daemon::start(options).await.context("starting the daemon")?;
        let client = daemon.client();
        Ok(TestDaemon { daemon: Some(daemon), name, client, _reaper: reaper, _dir: dir })
    }

    /// The client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The engine name (its containers' `dev.wharf.engine` label).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `POST /v1/containers/{id}/start` with `body`; requires 204.
    pub(crate) async fn start(&self, id: &str, body: Value) -> anyhow::Result<()> {
        start(&self.client, id, body).await
    }

    /// Starts the test app with `env` and waits until it answers on 8080.
    pub(crate) async fn start_app(&self, id: &str, env: &[&str]) -> anyhow::Result<()> {
        self.start(id, json!({"image": TESTAPP, "env": env})).await?;
        self.wait_healthy(id).await.map(drop)
    }

    /// Waits until the app answers on 8080 (see [`wait_healthy`]); returns the body of `/`.
    pub(crate) async fn wait_healthy(&self, id: &str) -> anyhow::Result<String> {
        wait_healthy(&self.client, id).await
    }

    /// `GET /v1/containers/{id}` as JSON.
    pub(crate) async fn status(&self, id: &str) -> anyhow::Result<Value> {
        Ok(self.client.json(Method::GET, &format!("/v1/containers/{id}"), None).await?)
    }

    /// `POST /v1/containers/{id}/wait` as JSON.
    pub(crate) async fn wait(&self, id: &str) -> anyhow::Result<Value> {
        Ok(self.client.json(Method::POST, &format!("/v1/containers/{id}/wait"), None).await?)
    }

    /// `POST /v1/containers/{id}/destroy`; requires 204.
    pub(crate) async fn destroy(&self, id: &str) -> anyhow::Result<()> {
        let reply =
            self.client.ok(Method::POST, &format!("/v1/containers/{id}/destroy"), None).await?;
        ensure!(reply.status == StatusCode::NO_CONTENT, "destroy answered {}", reply.status);
        Ok(())
    }

    /// `POST /v1/containers/{id}/exec` with `body` as JSON.
    pub(crate) async fn exec(&self, id: &str, body: Value) -> anyhow::Result<Value> {
        Ok(self
            .client
            .json(Method::POST, &format!("/v1/containers/{id}/exec"), Some(&body))
            .await?)
    }

    /// Any request, whatever its answer.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Reply> {
        Ok(self.client.request(method, path, body.as_ref()).await?)
    }

    /// Stops the daemon (which reaps its containers) and checks that nothing is left.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop().await;
        }
        let left = owned_containers(&self.name, "{{.Names}}");
        ensure!(left.is_empty(), "containers left after stop: {left:?}");
        Ok(())
    }
}

// === API helpers over any client ===

/// `POST /v1/containers/{id}/start`; requires 204.
pub(crate) async fn start(client: &Client, id: &str, body: Value) -> anyhow::Result<()> {
    let reply = client.ok(Method::POST, &format!("/v1/containers/{id}/start"), Some(&body)).await?;
    ensure!(reply.status == StatusCode::NO_CONTENT, "start answered {}", reply.status);
    Ok(())
}

/// Retries `GET /v1/containers/{id}/http/8080/` while the app is not listening yet (502
/// `port_not_listening`), up to 15 s; returns the body of the first 200.
pub(crate) async fn wait_healthy(client: &Client, id: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + HEALTHY_WITHIN;
    let path = format!("/v1/containers/{id}/http/8080/");
    loop {
        match client.ok(Method::GET, &path, None).await {
            Ok(reply) => return Ok(String::from_utf8_lossy(&reply.body).into_owned()),
            Err(ClientError::Api { code, .. })
                if code == "port_not_listening" && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(anyhow!(e).context(format!("{id} did not become healthy"))),
        }
    }
}

/// Checks that `reply` is an error with `status` and the API's error format
/// `{"error": {"code", "message"}}` (nothing else), with `code` and a non-empty message;
/// returns the message.
pub(crate) fn expect_error(reply: &Reply, status: u16, code: &str) -> anyhow::Result<String> {
    let text = String::from_utf8_lossy(&reply.body);
    ensure!(
        reply.status.as_u16() == status,
        "expected {status} {code}, got {} {text}",
        reply.status
    );
    let body: Value = serde_json::from_slice(&reply.body)
        .with_context(|| format!("error body is not JSON: {text}"))?;
    let keys = |v: &Value| {
        v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    ensure!(keys(&body) == ["error"], "error body must be {{\"error\": …}}: {text}");
    ensure!(
        keys(&body["error"]) == ["code", "message"],
        "error must have exactly code and message: {text}"
    );
    ensure!(body["error"]["code"] == code, "expected code {code}: {text}");
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    ensure!(!message.trim().is_empty(), "empty error message: {text}");
    Ok(message)
}

/// The value of `name` in Prometheus text (`name value` lines without labels).
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

// === Raw HTTP ===

/// Opens a connection to the daemon.
pub(crate) async fn connect(addr: &DaemonAddr) -> anyhow::Result<BoxIo> {
    Ok(match addr {
        DaemonAddr::Unix(path) => Box::new(UnixStream::connect(path).await?),
        DaemonAddr::Tcp(hostport) => Box::new(TcpStream::connect(hostport.as_str()).await?),
    })
}

/// Sends one request with a raw body and extra headers; returns the whole answer.
pub(crate) async fn raw(
    addr: &DaemonAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let io = connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header(header::HOST, "wharf");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = sender.send_request(req.body(Full::new(body.into()))?).await?;
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok((parts.status, parts.headers, bytes))
}

/// Reads a streaming body until `done` says so for the text so far (or it ends, or 30 s).
pub(crate) async fn read_until(
    body: &mut Incoming,
    text: &mut String,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(text) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| anyhow!("stream gave nothing more within 30 s; so far: {text:?}"))?;
        match frame {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            None => bail!("stream ended; so far: {text:?}"),
        }
    }
    Ok(())
}

// === Server-sent events ===

/// `GET /v1/events`, parsed.
#[derive(Debug)]
pub(crate) struct Events {
    body: Incoming,
    buf: String,
}

impl Events {
    /// Subscribes; events from now on are seen.
    pub(crate) async fn subscribe(client: &Client) -> anyhow::Result<Events> {
        let res = client.stream(Method::GET, "/v1/events").await?;
        let kind = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        ensure!(kind.starts_with("text/event-stream"), "events content type {kind:?}");
        Ok(Events { body: res.into_body(), buf: String::new() })
    }

    /// The next event's JSON data (keep-alive comments skipped).
    pub(crate) async fn next(&mut self) -> anyhow::Result<Value> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n"))
                        .with_context(|| format!("event data: {block:?}"));
                }
            }
            let mut more = String::new();
            read_until(&mut self.body, &mut more, |t| !t.is_empty()).await?;
            self.buf.push_str(&more.replace("\r\n", "\n"));
        }
    }

    /// Events until (and including) the first that `last` accepts.
    pub(crate) async fn until(
        &mut self,
        last: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await.with_context(|| format!("events so far: {seen:?}"))?;
            let stop = last(&event);
            seen.push(event);
            if stop {
                return Ok(seen);
            }
        }
    }
}

// === The real binary ===

/// The `wharf` binary cargo built for this test target.
pub(crate) const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

/// A `wharf` command with the caller's WHARF_* settings removed, so only its flags count.
pub(crate) fn wharf_command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(WHARF);
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    for var in
        ["WHARF_URL", "WHARF_TOKEN", "WHARF_SOCKET", "WHARF_STATE_DIR", "WHARF_LOG", "RUST_LOG"]
    {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `wharf args…` to its end (at most 60 s).
pub(crate) async fn wharf(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let out = wharf_command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .with_context(|| format!("wharf {args:?} hung"))?
        .map_err(Into::into)
}

/// A running `wharf serve --listen 127.0.0.1:0`; killed (SIGKILL) if dropped.
#[derive(Debug)]
pub(crate) struct Serve {
    child: tokio::process::Child,
    /// `127.0.0.1:<port>`.
    pub(crate) addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    /// Spawns `wharf serve --listen 127.0.0.1:0 --name name --state-dir state` (with no warm
    /// pool unless `flags` set `--pool-max`) and reads the
    /// address from its first stdout line, which must be `listening on http://127.0.0.1:PORT`.
    pub(crate) async fn spawn(name: &str, state: &Path) -> anyhow::Result<Serve> {
        Serve::spawn_with(name, state, &[], &[]).await
    }

    /// [`Serve::spawn`] with extra flags and environment variables.
    pub(crate) async fn spawn_with(
        name: &str,
        state: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Serve> {
        let state = state.to_str().context("state dir is not UTF-8")?;
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--name",
            name,
            "--state-dir",
            state,
            "--upstream-dns",
            "127.0.0.1",
        ];
        if !flags.contains(&"--pool-max") {
            // No warm pool unless asked: the tests count containers.
            args.extend(["--pool-min", "0", "--pool-max", "0"]);
        }
        args.extend_from_slice(flags);
        let mut cmd = wharf_command(&args);
        cmd.envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().context("stderr")?;
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let log = stderr.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let first = match first {
            Ok(Ok(Some(line))) => line,
            other => bail!("wharf serve printed no first line ({other:?}); stderr:\n{log}"),
        };
        let addr = first
            .strip_prefix("listening on http://")
            .with_context(|| format!("first stdout line {first:?} is not `listening on http://…`"))?
            .to_owned();
        ensure!(
            addr.starts_with("127.0.0.1:") && addr[10..].parse::<u16>().is_ok_and(|p| p != 0),
            "bad address in {first:?}"
        );
        // Keep draining stdout so the daemon never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Serve { child, addr, stderr })
    }

    /// `http://127.0.0.1:<port>`, for `--url`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API client over TCP.
    pub(crate) fn client(&self) -> Client {
        Client::new(DaemonAddr::Tcp(self.addr.clone()), None)
    }

    /// What the daemon wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// SIGTERM, then its exit status (at most 30 s).
    pub(crate) async fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("already reaped")?;
        signal_pid(pid, "TERM")?;
        let status =
            tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.with_context(
                || format!("wharf serve did not exit after SIGTERM; stderr:\n{}", self.stderr()),
            )??;
        Ok(status)
    }

    /// SIGKILL, as a crash: its containers stay.
    pub(crate) async fn crash(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// Sends `signal` (a name like TERM) to process `pid` with kill(1).
pub(crate) fn signal_pid(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}
