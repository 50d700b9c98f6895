//! Test support: a module tree on disk, the reference server over it, and a scripted server
//! that answers raw bytes, for answers the reference server would never send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wharf_fallback::client::ClientConfig;
use wharf_fallback::server::{Server, ServerConfig};
use wharf_fallback::{Request, ResolveMethod, V1Request};

pub(crate) const LOOPBACK: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

/// Writes `files` (path → contents) under a new temporary directory.
pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        write(dir.path(), path, contents.as_bytes());
    }
    dir
}

pub(crate) fn write(root: &Path, path: &str, contents: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// The reference server over `root`, on a free loopback port.
pub(crate) async fn serve(root: &Path) -> Server {
    Server::bind(ServerConfig::new(root, SocketAddr::from(LOOPBACK))).await.unwrap()
}

/// Client defaults, with timeouts short enough that a broken test fails instead of hanging.
pub(crate) fn config(addr: SocketAddr) -> ClientConfig {
    let mut config = ClientConfig::new(addr);
    config.request_timeout = Duration::from_secs(10);
    config
}

/// A V1 import of `path` from `/main.js`, written as `raw`.
pub(crate) fn import(path: &str, raw: &str) -> Request {
    Request::V1(V1Request::new(path, "/main.js", raw, ResolveMethod::Import))
}

/// What a scripted server does with one request.
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// Write these bytes, then wait for the next request.
    Reply(Vec<u8>),
    /// Write these bytes, then close.
    ReplyAndClose(Vec<u8>),
    /// Never answer (the connection stays open until the test ends).
    Hang,
}

/// A server that answers each request with what `script` says, given the request's specifier.
#[derive(Debug)]
pub(crate) struct Scripted {
    pub(crate) addr: SocketAddr,
    accepted: Arc<AtomicU64>,
}

impl Scripted {
    pub(crate) async fn start(script: impl Fn(&str) -> Script + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind(SocketAddr::from(LOOPBACK)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let (script, counter) = (Arc::new(script), accepted.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(scripted_connection(stream, script.clone()));
            }
        });
        Scripted { addr, accepted }
    }

    pub(crate) fn connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

async fn scripted_connection(mut stream: TcpStream, script: Arc<impl Fn(&str) -> Script>) {
    let mut buf = Vec::new();
    loop {
        let Some(specifier) = read_request(&mut stream, &mut buf).await else { return };
        match script(&specifier) {
            Script::Reply(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Script::ReplyAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Script::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
}

/// Reads one request (head, and a `Content-Length` body) and returns its specifier.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method: Method = request_line.next()?.parse().ok()?;
    let uri: Uri = request_line.next()?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.insert(HeaderName::try_from(name).ok()?, HeaderValue::try_from(value.trim()).ok()?);
    }
    let length: usize =
        headers.get("content-length").map_or(Some(0), |v| v.to_str().ok()?.parse().ok())?;
    while buf.len() < end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..end + length).skip(end).collect();
    let request = Request::from_http(&method, &uri, &headers, &body).ok()?;
    Some(request.specifier().to_owned())
}

/// A chunked response, the way Node frames `writeHead(status, headers); end(body)`.
pub(crate) fn chunked(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ntransfer-encoding: chunked\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if !body.is_empty() {
        out.push_str(&format!("{:x}\r\n{body}\r\n", body.len()));
    }
    out.push_str("0\r\n\r\n");
    out.into_bytes()
}

/// A response with `Content-Length`.
pub(crate) fn sized(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Polls `done` every few milliseconds until it holds; panics after `limit` so a broken test
/// fails rather than hangs. This waits for an event, it does not time anything.
pub(crate) async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "the awaited condition never held");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A module tree of `n` ES modules `/m{i}.js`, each exporting its own number.
pub(crate) fn numbered_modules(n: usize) -> tempfile::TempDir {
    let files: BTreeMap<String, String> =
        (0..n).map(|i| (format!("m{i}.js"), format!("export default {i};"))).collect();
    let mut all: Vec<(&str, &str)> = files.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("package.json", r#"{"type":"module"}"#));
    tree(&all)
}
