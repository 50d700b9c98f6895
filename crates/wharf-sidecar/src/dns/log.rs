//! The DNS log: answered questions, batched and posted to the engine, best effort.
//!
//! Each answered question is a [`DnsEvent`]. [`DnsLog::record`] never waits: events go into a
//! bounded queue (dropped when it is full), and one task collects them for up to
//! [`BATCH_WINDOW`] or [`BATCH_MAX`] events, then posts the batch as a JSON array to
//! `POST /dns-log` ([`DNS_LOG_PATH`]) on the engine's egress listener, with the control token
//! as `Authorization: Bearer`, from a marked socket. A batch that cannot be delivered within
//! [`POST_TIMEOUT`] is dropped: DNS never waits for the log.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wharf_wire::control::{DNS_LOG_PATH, DnsEvent};
use wharf_wire::head::{RequestHead, ResponseHead};

use crate::config::ControlToken;
use crate::egress_state::Egress;
use crate::gateway::EgressGateway;
use crate::marked::OwnMark;

/// The most events in one post.
pub const BATCH_MAX: usize = 64;
/// How long the first event of a batch waits for company.
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// How long one post may take, answer included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(2);
/// How many events may wait while a post is under way.
pub const QUEUE_LEN: usize = 1024;

/// Where to post, and how.
#[derive(Debug, Clone)]
pub struct DnsLogParams {
    /// The engine's egress listener address.
    pub gateway: EgressGateway,
    /// The egress state, for the listener's port in force.
    pub egress: Egress,
    /// The token to present.
    pub token: Option<ControlToken>,
    /// The mark on the log's connections.
    pub mark: OwnMark,
}

/// The sending side of the DNS log. Clones share one queue.
#[derive(Debug, Clone)]
pub struct DnsLog {
    tx: mpsc::Sender<DnsEvent>,
}

/// Why a batch was not delivered.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("posting to {addr}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("no answer from {addr} within {POST_TIMEOUT:?}")]
    Timeout { addr: SocketAddr },
    #[error("{addr} answered {status}")]
    Status { addr: SocketAddr, status: u16 },
    #[error("{addr} closed without a readable answer")]
    NoAnswer { addr: SocketAddr },
}

// === impl DnsLog ===

impl DnsLog {
    /// Starts the posting task; it ends when every [`DnsLog`] clone is dropped.
    pub fn spawn(params: DnsLogParams) -> DnsLog {
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        tokio::spawn(run(rx, params));
        DnsLog { tx }
    }

    /// Queues `event` for the engine, or drops it if the queue is full.
    pub fn record(&self, event: DnsEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::debug!("dns log queue full; event dropped");
        }
    }
}

async fn run(mut rx: mpsc::Receiver<DnsEvent>, params: DnsLogParams) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WINDOW;
        while batch.len() < BATCH_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(event)) => batch.push(event),
                Ok(None) | Err(_) => break,
            }
        }
        if let Err(e) = post(&params, &batch).await {
            let error = crate::egress::error_chain(&e);
            tracing::debug!(%error, events = batch.len(), "dns log batch dropped");
        }
    }
}

async fn post(params: &DnsLogParams, batch: &[DnsEvent]) -> Result<(), PostError> {
    let addr = params.gateway.listener(params.egress.current().port());
    let exchange = async {
        let mut stream = params.mark.connect(addr).await?;
        stream.write_all(&request(addr, params.token.as_ref(), batch)).await?;
        read_status(&mut stream).await
    };
    match tokio::time::timeout(POST_TIMEOUT, exchange).await {
        Err(_) => Err(PostError::Timeout { addr }),
        Ok(Err(source)) => Err(PostError::Io { addr, source }),
        Ok(Ok(None)) => Err(PostError::NoAnswer { addr }),
        Ok(Ok(Some(status))) if (200..300).contains(&status) => Ok(()),
        Ok(Ok(Some(status))) => Err(PostError::Status { addr, status }),
    }
}

/// The whole request: head and JSON body.
fn request(addr: SocketAddr, token: Option<&ControlToken>, batch: &[DnsEvent]) -> Vec<u8> {
    // Serialising plain structs of strings and numbers cannot fail.
    let body = serde_json::to_vec(batch).unwrap_or_default();
    let mut head = RequestHead::new("POST", DNS_LOG_PATH)
        .with_header("Host", &addr.to_string())
        .with_header("Content-Type", "application/json")
        .with_header("Content-Length", &body.len().to_string())
        .with_header("Connection", "close");
    if let Some(token) = token {
        head = head.with_header("Authorization", &format!("Bearer {}", token.as_str()));
    }
    let mut out = head.encode();
    out.extend_from_slice(&body);
    out
}

/// The answer's status, once its head has arrived; `None` if the engine closed first.
async fn read_status<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<u16>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match ResponseHead::parse(&buf) {
            Ok(Some((head, _))) => return Ok(Some(head.status())),
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use wharf_wire::control::DnsDecision;

    use super::*;

    #[test]
    fn the_request_is_a_json_array_with_the_token() {
        let event = DnsEvent {
            name: "a.example".to_owned(),
            qtype: 1,
            decision: DnsDecision::Synthetic,
            addresses: vec!["11.0.0.1".parse().unwrap()],
            rule: Some("*.example".to_owned()),
            duration_ms: 3,
        };
        let token: ControlToken = "t0k".parse().unwrap();
        let raw = request("127.0.0.1:9".parse().unwrap(), Some(&token), &[event]);
        let (head, used) = RequestHead::parse(&raw).unwrap().unwrap();
        assert_eq!((head.method(), head.target()), ("POST", "/dns-log"));
        assert_eq!(head.header("authorization"), Some("Bearer t0k"));
        assert_eq!(head.content_length(), Some((raw.len() - used) as u64));
        assert_eq!(
            std::str::from_utf8(&raw[used..]).unwrap(),
            r#"[{"name":"a.example","qtype":1,"decision":"synthetic","addresses":["11.0.0.1"],"rule":"*.example","durationMs":3}]"#
        );
        let no_token = request("127.0.0.1:9".parse().unwrap(), None, &[]);
        let (head, _) = RequestHead::parse(&no_token).unwrap().unwrap();
        assert_eq!(head.header("authorization"), None);
    }
}
