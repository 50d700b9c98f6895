//! `PUT /egress` and `GET /egress`, the internet gate, body framing, and the 404/405 surface.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wharf_sidecar::intercept::{InterceptError, InterceptMode, InterceptParams, Interception};

use crate::{Sidecar, read_response, request_bytes};

/// Records `set_internet` calls; can hold them until released, or fail them.
#[derive(Debug, Default)]
struct RecordingInterception {
    calls: Mutex<Vec<bool>>,
    /// When set, each call reports itself here and waits for a release.
    gate: Mutex<Option<(std_mpsc::Sender<bool>, std_mpsc::Receiver<()>)>>,
    fail: bool,
}

impl Interception for RecordingInterception {
    fn setup(&self, _params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        Ok(InterceptMode::Redirect)
    }

    fn set_internet(&self, enabled: bool) -> Result<(), InterceptError> {
        self.calls.lock().unwrap().push(enabled);
        if let Some((called, release)) = self.gate.lock().unwrap().as_ref() {
            called.send(enabled).unwrap();
            release.recv().unwrap();
        }
        if self.fail {
            return Err(InterceptError::Step {
                step: "nft add rule inet wharf internet drop".to_owned(),
                source: "netlink: operation not permitted".into(),
            });
        }
        Ok(())
    }
}

async fn state(sidecar: &Sidecar) -> String {
    let response = sidecar.request("GET", "/egress", &[], "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.head.header("content-type"), Some("application/json"));
    response.text().to_owned()
}

async fn put(sidecar: &Sidecar, body: &str) -> u16 {
    sidecar.request("PUT", "/egress", &[], body).await.status()
}

#[tokio::test]
async fn initial_state_is_the_flag_port_with_everything_allowed() {
    let sidecar = Sidecar::start(&["--http-egress-port", "40123"]).await;
    assert_eq!(
        state(&sidecar).await,
        r#"{"port":40123,"dns":{"allowHostnames":["*"]},"internet":{"enabled":true},"interception":"none"}"#
    );
}

#[tokio::test]
async fn put_replaces_present_keys_and_leaves_absent_ones() {
    let sidecar = Sidecar::start(&[]).await;

    assert_eq!(put(&sidecar, r#"{"port": 5}"#).await, 204);
    assert_eq!(
        state(&sidecar).await,
        r#"{"port":5,"dns":{"allowHostnames":["*"]},"internet":{"enabled":true},"interception":"none"}"#
    );

    assert_eq!(put(&sidecar, r#"{"dns": {"allowHostnames": ["a.com", "*.b.com"]}}"#).await, 204);
    assert_eq!(
        state(&sidecar).await,
        r#"{"port":5,"dns":{"allowHostnames":["a.com","*.b.com"]},"internet":{"enabled":true},"interception":"none"}"#
    );

    assert_eq!(put(&sidecar, r#"{"internet": {"enabled": false}}"#).await, 204);
    assert_eq!(put(&sidecar, r#"{"dns": {"allowHostnames": []}}"#).await, 204);
    assert_eq!(
        state(&sidecar).await,
        r#"{"port":5,"dns":{"allowHostnames":[]},"internet":{"enabled":false},"interception":"none"}"#
    );

    let full = r#"{"port":40123,"dns":{"allowHostnames":["x.org"]},"internet":{"enabled":true}}"#;
    assert_eq!(put(&sidecar, full).await, 204);
    let expected = format!(r#"{},"interception":"none"}}"#, &full[..full.len() - 1]);
    assert_eq!(state(&sidecar).await, expected, "GET answers in the PUT schema, plus the mode");
}

#[tokio::test]
async fn bad_bodies_are_400_and_change_nothing() {
    let sidecar = Sidecar::start(&[]).await;
    let before = state(&sidecar).await;
    for (body, message) in [
        ("nope", "invalid egress body"),
        ("{}", "egress body must set at least one of port, dns, internet"),
        (r#"{"port": 0}"#, "egress port must be 1..=65535, got 0"),
        (r#"{"port": 65536}"#, "egress port must be 1..=65535, got 65536"),
        (r#"{"port": 5, "extra": 1}"#, "invalid egress body"),
        (r#"{"port": "5"}"#, "invalid egress body"),
    ] {
        let response = sidecar.request("PUT", "/egress", &[], body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.head.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(response.text().starts_with(message), "{body}: {}", response.text());
    }
    // No body at all is an empty body, which is not JSON.
    assert_eq!(sidecar.send(b"PUT /egress HTTP/1.1\r\n\r\n").await.status(), 400);
    assert_eq!(state(&sidecar).await, before);
}

#[tokio::test]
async fn body_framing_errors() {
    let sidecar = Sidecar::start(&[]).await;
    let no_length = sidecar.send(b"PUT /egress HTTP/1.1\r\n\r\n{\"port\": 5}").await;
    assert_eq!(no_length.status(), 400);
    assert_eq!(no_length.text(), "a request body needs Content-Length");
    let chunked = sidecar
        .send(b"PUT /egress HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{\"port\": 5}\r\n0\r\n\r\n")
        .await;
    assert_eq!(chunked.status(), 400);
    let too_big = sidecar.send(b"PUT /egress HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n{").await;
    assert_eq!(too_big.status(), 413);
    // The client half-closes after a short body; the sidecar notices and says so.
    let mut stream = TcpStream::connect(sidecar.addr).await.unwrap();
    stream
        .write_all(b"PUT /egress HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"port\": 5}")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let short = read_response(&mut stream).await;
    assert_eq!(short.status(), 400);
    assert_eq!(short.text(), "request body ended before Content-Length bytes");
}

#[tokio::test]
async fn body_may_arrive_after_the_head() {
    let sidecar = Sidecar::start(&[]).await;
    let mut stream = TcpStream::connect(sidecar.addr).await.unwrap();
    stream.write_all(b"PUT /egress HTTP/1.1\r\nContent-Length: 11\r\n\r\n").await.unwrap();
    stream.flush().await.unwrap();
    tokio::task::yield_now().await;
    stream.write_all(b"{\"port\":").await.unwrap();
    stream.write_all(b" 7}").await.unwrap();
    assert_eq!(read_response(&mut stream).await.status(), 204);
    assert!(state(&sidecar).await.starts_with(r#"{"port":7,"#));
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let sidecar = Sidecar::start(&[]).await;
    let hosts: Vec<String> = (0..100).map(|i| format!("\"host-{i}.example.com\"")).collect();
    let body = format!(r#"{{"dns": {{"allowHostnames": [{}]}}}}"#, hosts.join(","));
    let mut stream = TcpStream::connect(sidecar.addr).await.unwrap();
    let head = format!(
        "PUT /egress HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let continue_line = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0u8; continue_line.len()];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, continue_line);
    stream.write_all(body.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.status(), 204);
    assert!(state(&sidecar).await.contains("host-99.example.com"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let sidecar = Sidecar::start(&[]).await;
    for path in ["/", "/egress/", "/ca.crt", "/ca/ca.crt", "/metrics"] {
        let response = sidecar.request("GET", path, &[], "").await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.text(), "not found");
    }
    for (method, path, allow) in [
        ("POST", "/egress", "GET, PUT"),
        ("DELETE", "/egress", "GET, PUT"),
        ("PUT", "/ca", "GET"),
        ("HEAD", "/ca", "GET"),
    ] {
        let response = sidecar.request(method, path, &[], "").await;
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.head.header("allow"), Some(allow));
    }
}

#[tokio::test]
async fn get_shows_the_interception_mode() {
    let sidecar = Sidecar::start_with(&[], Arc::new(RecordingInterception::default())).await;
    assert!(state(&sidecar).await.ends_with(r#","interception":"redirect"}"#));
}

#[tokio::test]
async fn an_internet_change_is_enforced_before_the_204() {
    let (called_tx, called) = std_mpsc::channel();
    let (release, release_rx) = std_mpsc::channel();
    let interception = Arc::new(RecordingInterception {
        gate: Mutex::new(Some((called_tx, release_rx))),
        ..RecordingInterception::default()
    });
    let sidecar = Sidecar::start_with(&[], interception.clone()).await;

    let mut put = TcpStream::connect(sidecar.addr).await.unwrap();
    let body = r#"{"internet": {"enabled": false}}"#;
    put.write_all(&request_bytes("PUT", "/egress", &[], body)).await.unwrap();
    let enabled = tokio::task::spawn_blocking(move || called.recv_timeout(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert!(!enabled);
    // The kernel is still being changed: no answer yet, and the state claims nothing new.
    let mut early = [0u8; 1];
    let pending = tokio::time::timeout(Duration::from_millis(100), put.read(&mut early)).await;
    assert!(pending.is_err(), "answered before the kernel enforced it");
    assert!(state(&sidecar).await.contains(r#""internet":{"enabled":true}"#));

    release.send(()).unwrap();
    assert_eq!(read_response(&mut put).await.status(), 204);
    assert!(state(&sidecar).await.contains(r#""internet":{"enabled":false}"#));
    assert_eq!(*interception.calls.lock().unwrap(), [false]);
}

#[tokio::test]
async fn only_puts_with_internet_touch_the_kernel() {
    let interception = Arc::new(RecordingInterception::default());
    let sidecar = Sidecar::start_with(&[], interception.clone()).await;
    assert_eq!(sidecar.put_egress(r#"{"port": 5, "dns": {"allowHostnames": []}}"#).await, 204);
    assert_eq!(sidecar.put_egress(r#"{"internet": {"enabled": true}}"#).await, 204);
    // A body the state refuses never reaches the kernel.
    assert_eq!(sidecar.put_egress(r#"{"port": 0, "internet": {"enabled": false}}"#).await, 400);
    assert_eq!(*interception.calls.lock().unwrap(), [true]);
}

#[tokio::test]
async fn a_refused_internet_change_is_500_and_changes_nothing() {
    let interception = Arc::new(RecordingInterception { fail: true, ..Default::default() });
    let sidecar = Sidecar::start_with(&[], interception).await;
    let before = state(&sidecar).await;
    let body = r#"{"port": 7, "internet": {"enabled": false}}"#;
    let response = sidecar.request("PUT", "/egress", &[], body).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.text(),
        "internet gate not changed: interception setup failed at nft add rule inet wharf \
         internet drop: netlink: operation not permitted"
    );
    assert_eq!(state(&sidecar).await, before, "neither the port nor the flag changed");
}
