//! One egress connection from a sidecar: a `CONNECT` for an intercepted app connection, or a
//! `POST /dns-log` with the sidecar's DNS answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use wharf_policy::Connection;
use wharf_wire::connect::{EgressConnect, answer};
use wharf_wire::control::{DNS_LOG_PATH, DnsEvent};
use wharf_wire::head::{MAX_HEAD_LEN, RequestHead, encode_response};

use super::{Route, Shared, Target, Verdict, handler};
use crate::events::{EgressDecision, EgressRecord, EventKind};
use crate::io_util::{self, Counted, Prefixed};

/// How long a sidecar may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialling a destination or a tcp handler may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest DNS log body accepted.
const MAX_DNS_LOG: usize = 1 << 20;

pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(Arc::clone(&shared), stream, peer));
            }
            Err(e) => {
                tracing::warn!(target: "wharf::egress", error = %e, "egress accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let read = io_util::read_head(&mut stream, MAX_HEAD_LEN, RequestHead::parse);
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read).await {
        Ok(Ok(got)) => got,
        Ok(Err(e)) => {
            return tracing::debug!(target: "wharf::egress", %peer, error = %e, "no request head");
        }
        Err(_) => return tracing::debug!(target: "wharf::egress", %peer, "request head timed out"),
    };
    if head.method().eq_ignore_ascii_case("CONNECT") {
        connect(&shared, head, rest, stream).await;
    } else if head.method() == "POST" && head.target() == DNS_LOG_PATH {
        dns_log(&shared, &head, rest, stream).await;
    } else {
        let _ = stream
            .write_all(&encode_response(405, Some("text/plain"), b"CONNECT or POST /dns-log"))
            .await;
    }
}

/// An intercepted connection: decide, then act, then log it.
async fn connect(shared: &Shared, head: RequestHead, rest: Bytes, mut stream: TcpStream) {
    let request = match EgressConnect::from_head(&head) {
        Ok(r) => r,
        Err(e) => {
            let _ = stream
                .write_all(&encode_response(400, Some("text/plain"), e.to_string().as_bytes()))
                .await;
            return;
        }
    };
    let Some(route) = shared.route(request.token.as_deref()) else {
        // Unknown or missing token: not one of our sidecars (W6).
        let _ = stream
            .write_all(&encode_response(
                answer::UNAUTHORIZED,
                Some("text/plain"),
                b"token required",
            ))
            .await;
        return;
    };
    let conn = Connection {
        dst: request.dst,
        sni: request.tls_sni.as_deref(),
        hostname: request.hostname.as_deref(),
        tls: request.tls,
    };
    let verdict = read_policy(&route).verdict(&conn);
    let began = Instant::now();
    let mut record = EgressRecord {
        dst: request.dst,
        sni: request.tls_sni.clone(),
        hostname: request.hostname.clone(),
        protocol: if request.tls {
            "tls"
        } else if request.hostname.is_some() {
            "http"
        } else {
            "tcp"
        },
        decision: EgressDecision::Refused,
        rule: None,
        target: None,
        reason: None,
        bytes_up: 0,
        bytes_down: 0,
        duration: Duration::ZERO,
    };
    let app = Prefixed::new(rest, stream);
    let outcome = act(shared, &route, &request, verdict, app, &mut record).await;
    if let Err(reason) = outcome {
        record.decision = EgressDecision::Refused;
        record.reason = Some(reason);
    }
    record.duration = began.elapsed();
    tracing::debug!(target: "wharf::egress", orig_dst = %record.dst, container.id = %route.container, sni = ?record.sni, decision = record.decision.as_str(), rule = ?record.rule, "egress");
    shared.record(&route.container, EventKind::Egress(record));
}

/// Carries out a verdict. `Err` is a refusal with its reason (the sidecar resets the app).
async fn act(
    shared: &Shared,
    route: &Route,
    request: &EgressConnect,
    verdict: Verdict,
    mut app: Prefixed<TcpStream>,
    record: &mut EgressRecord,
) -> Result<(), String> {
    match verdict {
        Verdict::Refuse => {
            refuse(&mut app).await;
            Err("no mapping matches and the internet is off".to_owned())
        }
        Verdict::PassThrough => {
            if let Some(net) = shared.deny.refuses(request.dst.ip()).copied() {
                refuse(&mut app).await;
                return Err(format!("pass-through to {net} is never allowed"));
            }
            if request.dst == shared.addr {
                refuse(&mut app).await;
                return Err("the engine's own listener".to_owned());
            }
            let upstream = dial(&request.dst.to_string(), &mut app).await?;
            record.decision = EgressDecision::PassThrough;
            pump(app, upstream, record).await;
            Ok(())
        }
        Verdict::Handler { target: Target::Tcp { authority }, rule, .. } => {
            record.rule = Some(rule);
            record.target = Some(authority.clone());
            let upstream = dial(&authority, &mut app).await?;
            record.decision = EgressDecision::Handler;
            pump(app, upstream, record).await;
            Ok(())
        }
        Verdict::Handler { target, protocol, rule } => {
            record.rule = Some(rule);
            record.target = Some(target.to_string());
            record.decision = EgressDecision::Handler;
            ok(&mut app, answer::INTERCEPT).await.map_err(|e| e.to_string())?;
            let (app, (up, down)) = Counted::new(app);
            let info = handler::Tunnel {
                route: route.clone(),
                dst: request.dst,
                sni: request.tls_sni.clone(),
                tls: request.tls,
                protocol,
            };
            if let Err(e) = handler::serve(shared, info, app).await {
                tracing::debug!(target: "wharf::egress", error = %e, "handler tunnel ended");
            }
            record.bytes_up = up.load(Ordering::Relaxed);
            record.bytes_down = down.load(Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Dials `authority` from the host; on failure refuses the app.
async fn dial(authority: &str, app: &mut Prefixed<TcpStream>) -> Result<TcpStream, String> {
    let dialled = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(authority)).await;
    match dialled {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            ok(app, answer::RAW).await.map_err(|e| e.to_string())?;
            Ok(stream)
        }
        Ok(Err(e)) => {
            refuse(app).await;
            Err(format!("cannot connect to {authority}: {e}"))
        }
        Err(_) => {
            refuse(app).await;
            Err(format!("connecting to {authority} timed out"))
        }
    }
}

/// Pumps both ways until both sides are done; counts the bytes.
async fn pump(app: Prefixed<TcpStream>, upstream: TcpStream, record: &mut EgressRecord) {
    let (mut app, mut upstream) = (app, upstream);
    match crate::io_util::relay(&mut app, &mut upstream).await {
        Ok((up, down)) => {
            record.bytes_up = up;
            record.bytes_down = down;
        }
        Err(e) => {
            tracing::debug!(target: "wharf::egress", error = %e, "tunnel ended with an error")
        }
    }
}

async fn ok(app: &mut Prefixed<TcpStream>, status: u16) -> std::io::Result<()> {
    let head = wharf_wire::head::ResponseHead::new(status).encode();
    app.write_all(&head).await
}

async fn refuse(app: &mut Prefixed<TcpStream>) {
    let _ = app
        .write_all(&encode_response(answer::REFUSE, Some("text/plain"), b"refused by policy"))
        .await;
}

fn read_policy(route: &Route) -> std::sync::RwLockReadGuard<'_, super::Policy> {
    route.policy.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `POST /dns-log`: a JSON array of the sidecar's DNS answers.
async fn dns_log(shared: &Shared, head: &RequestHead, rest: Bytes, mut stream: TcpStream) {
    let Some(route) = shared.route(wharf_wire::connect::bearer_token(head)) else {
        let _ =
            stream.write_all(&encode_response(401, Some("text/plain"), b"token required")).await;
        return;
    };
    let want = head.content_length().unwrap_or(0) as usize;
    if want > MAX_DNS_LOG {
        let _ = stream.write_all(&encode_response(413, None, b"")).await;
        return;
    }
    let mut body = rest.to_vec();
    if body.len() < want {
        let mut more = vec![0u8; want - body.len()];
        if tokio::time::timeout(HEAD_TIMEOUT, stream.read_exact(&mut more)).await.is_err() {
            return;
        }
        body.extend_from_slice(&more);
    }
    match serde_json::from_slice::<Vec<DnsEvent>>(&body[..want.min(body.len())]) {
        Ok(events) => {
            for event in events {
                shared.record(&route.container, EventKind::Dns(event));
            }
            let _ = stream.write_all(&encode_response(204, None, b"")).await;
        }
        Err(e) => {
            let _ = stream
                .write_all(&encode_response(400, Some("text/plain"), e.to_string().as_bytes()))
                .await;
        }
    }
}
