//! The leak suite: run as the app with the internet off, nothing leaves but by the policy. Each
//! probe has a positive control where one means something: the same probe from an app with
//! the internet on, or from a plain container on the bridge (the stub), which no sidecar
//! stands in front of.
//!
//! Refusal modes seen here (the probes' own words, `crates/wharf-testapp/src/probes`):
//! TCP is accepted by the interception and reset (`/connect` says `reset`); the sidecar's own
//! control port is refused outright (an RST to the SYN: `refused`); UDP and ICMP are rejected
//! in the namespace's output hook, so the app's send fails at once with EPERM; IPv6 has no
//! source address at all (EADDRNOTAVAIL); DNS over UDP to any server, and over TCP to a
//! loopback one, is answered by the sidecar itself, and over TCP to any other is reset.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::fakenet::{
    FakeNet, GREETING_PORT, TCP_ECHO_PORT, UDP_ECHO_PORT, app_get, connect_probe, logged,
};
use crate::harness::{TESTAPP, TestDaemon, docker};

/// A daemon on the fake internet with two apps: `off` (internet off) and `on` (internet on).
async fn off_and_on(net: &FakeNet) -> anyhow::Result<TestDaemon> {
    let d = net.daemon().await?;
    let start = |id: &'static str, internet: bool| {
        d.start(id, json!({"image": TESTAPP, "enableInternet": internet}))
    };
    let (off, on) = tokio::join!(start("off", false), start("on", true));
    off.context("starting off")?;
    on.context("starting on")?;
    d.wait_healthy("off").await?;
    d.wait_healthy("on").await?;
    Ok(d)
}

/// A name nobody has asked for yet.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// `GET <path>` on the stub's test-app HTTP server, from the host: probes made from a plain
/// container on the bridge. `"<status> <body>"`.
async fn stub_get(net: &FakeNet, path: &str) -> anyhow::Result<String> {
    let stream = TcpStream::connect(SocketAddr::from((net.stub, 8080))).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get(path).header("host", "stub").body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok(format!("{status} {}", String::from_utf8_lossy(&body)))
}

/// The TCP listeners in `id`'s network namespace, from `/proc/net/tcp`.
async fn tcp_listeners(d: &TestDaemon, id: &str) -> anyhow::Result<Vec<SocketAddr>> {
    const LISTEN: &str = "0A";
    let table = crate::fakenet::exec_ok(d, id, "cat /proc/net/tcp").await?;
    let mut listeners = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(&LISTEN)) = (fields.get(1), fields.get(3)) else { continue };
        let (ip, port) = local.split_once(':').context("local address")?;
        // The kernel prints the address as a native-endian (little on x86) u32.
        let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16)?.swap_bytes());
        listeners.push(SocketAddr::from((ip, u16::from_str_radix(port, 16)?)));
    }
    ensure!(listeners.len() >= 3, "the app, the control port and the sidecar's own: {table}");
    Ok(listeners)
}

/// The bridge address of `id`'s sidecar.
fn sidecar_ip(d: &TestDaemon, id: &str) -> anyhow::Result<Ipv4Addr> {
    let name = format!("wharf-{}-{id}-sidecar", d.name());
    let ip = docker(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &name]);
    ip.trim().parse().with_context(|| format!("{name} has no bridge address: {ip:?}"))
}

docker_test! {
    /// TCP by raw IP to a fake-internet server is reset on every port with the internet off;
    /// with it on, the listening ports connect (pass-through) and a closed one is reset.
    /// IPv6 cannot leave at all: the namespace has no IPv6 address.
    async fn leak_tcp_raw_ip_every_port_and_ipv6() -> anyhow::Result<()> {
        let net = FakeNet::get().await?;
        let d = off_and_on(&net).await?;
        let server = net.server;
        for port in [1, 22, 25, 53, 80, 443, 2525, 7000, 8080, 39001, 65535] {
            assert_eq!(connect_probe(&d, "off", &format!("{server}:{port}")).await?, "502 reset", "port {port}");
        }
        let event = logged(&d, "off", "the refused :8080", |e| e["type"] == "egress" && e["destination"] == format!("{server}:8080")).await?;
        assert_eq!(event["decision"], "refused", "{event}");
        for port in [8080, GREETING_PORT, TCP_ECHO_PORT] {
            assert_eq!(connect_probe(&d, "on", &format!("{server}:{port}")).await?, "200 connected", "port {port}");
        }
        // Pass-through dials from the host; nothing listens on :1, so the app is reset.
        assert_eq!(connect_probe(&d, "on", &format!("{server}:1")).await?, "502 reset");

        // IPv6: Docker disables it in the namespace (no IPv6 on the bridge), so there is no
        // source address and every IPv6 socket fails at once, with the internet on too.
        for id in ["off", "on"] {
            let disabled = crate::fakenet::exec_ok(&d, id, "cat /proc/sys/net/ipv6/conf/all/disable_ipv6").await?;
            assert_eq!(disabled.trim(), "1", "{id}");
            assert_eq!(connect_probe(&d, id, "[2001:db8::1]:80").await?, "502 error: [2001:db8::1]:80: Cannot assign requested address (os error 99)", "{id}");
            assert_eq!(connect_probe(&d, id, "[::1]:8080").await?, "502 error: [::1]:8080: Cannot assign requested address (os error 99)", "{id}");
        }
        d.stop().await
    }
}

docker_test! {
    /// UDP to the UDP echo on the bridge and ICMP echo to it and to the bridge gateway are
    /// refused with the internet off, and answered with it on.
    // See: W7.
    async fn leak_udp_and_icmp() -> anyhow::Result<()> {
        let net = FakeNet::get().await?;
        let d = off_and_on(&net).await?;
        let echo = format!("{}:{UDP_ECHO_PORT}", net.stub);
        let udp = format!("/udp?target={echo}&data=leak");
        assert_eq!(app_get(&d, "on", &udp, &[]).await?, "200 echo:leak");
        let refused = app_get(&d, "off", &udp, &[]).await?;
        assert_eq!(refused, format!("502 UDP error: udp exchange with {echo}: Operation not permitted (os error 1)"));

        for host in [net.stub, net.gateway] {
            let ping = format!("/ping?host={host}");
            assert_eq!(app_get(&d, "on", &ping, &[]).await?, "200 pong", "{host}");
            let refused = app_get(&d, "off", &ping, &[]).await?;
            assert_eq!(refused, format!("502 ping error: send to {host}: Operation not permitted (os error 1)"));
        }
        // IPv6 UDP and ICMP have no address to leave from, internet or not.
        for id in ["off", "on"] {
            let v6 = app_get(&d, id, "/ping?host=2001:db8::1", &[]).await?;
            assert_eq!(v6, "502 ping error: connect to 2001:db8::1: Cannot assign requested address (os error 99)", "{id}");
            let v6 = app_get(&d, id, "/udp?target=[2001:db8::1]:5353&data=leak", &[]).await?;
            assert_eq!(v6, "502 UDP error: udp exchange with [2001:db8::1]:5353: Cannot assign requested address (os error 99)", "{id}");
        }
        d.stop().await
    }
}

docker_test! {
    /// DNS to any resolver: a query over UDP straight at the stub's address (or anywhere) is
    /// answered by the sidecar, NXDOMAIN for a name no mapping allows, and the stub never
    /// sees it; DNS over TCP to the stub is reset. With the internet on, the sidecar forwards
    /// the query to its upstream, the stub, which does see it.
    async fn leak_dns_to_any_resolver() -> anyhow::Result<()> {
        let net = FakeNet::get().await?;
        let d = off_and_on(&net).await?;
        let stub = net.stub;
        let (off_name, elsewhere_name, on_name) = (unique("off") + ".wild.test", unique("elsewhere") + ".wild.test", unique("on") + ".wild.test");
        let query = |name: &str, server: &str, transport: &str| format!("/dns-query?name={name}&server={server}&transport={transport}");

        let nx = r#"200 {"rcode":3,"answers":[]}"#;
        assert_eq!(app_get(&d, "off", &query(&off_name, &stub.to_string(), "udp"), &[]).await?, nx);
        assert_eq!(app_get(&d, "off", &query("real.test", &stub.to_string(), "udp"), &[]).await?, nx, "the stub would have answered real.test");
        assert_eq!(app_get(&d, "off", &query(&elsewhere_name, "203.0.113.53", "udp"), &[]).await?, nx);
        let event = logged(&d, "off", "the sidecar's NXDOMAIN", |e| e["type"] == "dns" && e["name"] == off_name.as_str()).await?;
        assert_eq!((&event["decision"], &event["rule"]), (&json!("nxdomain"), &Value::Null), "{event}");
        let tcp = app_get(&d, "off", &query(&off_name, &stub.to_string(), "tcp"), &[]).await?;
        assert_eq!(tcp, format!("502 DNS error: dns query to {stub}:53: Connection reset by peer (os error 104)"));
        // TCP to a loopback resolver (Docker's embedded 127.0.0.11) is the sidecar's DNS too.
        assert_eq!(app_get(&d, "off", &query("real.test", "127.0.0.11", "tcp"), &[]).await?, nx);

        // Positive control: forwarded to the stub, which answers and logs it.
        let answer = app_get(&d, "on", &query(&on_name, &stub.to_string(), "udp"), &[]).await?;
        assert_eq!(answer, format!(r#"200 {{"rcode":0,"answers":["{}"]}}"#, net.server));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !net.stub_log().contains(&on_name) {
            ensure!(tokio::time::Instant::now() < deadline, "the stub never logged {on_name}:\n{}", net.stub_log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = net.stub_log();
        for name in [&off_name, &elsewhere_name] {
            assert!(!log.contains(name.as_str()), "the stub saw {name}:\n{log}");
        }
        // Over TCP the app reaches no resolver on the bridge, internet or not (pass-through
        // never goes to the bridge).
        let tcp = app_get(&d, "on", &query(&on_name, &stub.to_string(), "tcp"), &[]).await?;
        assert_eq!(tcp, format!("502 DNS error: dns query to {stub}:53: Connection reset by peer (os error 104)"));
        let forwarded = app_get(&d, "on", &query("real.test", "127.0.0.11", "tcp"), &[]).await?;
        assert_eq!(forwarded, format!(r#"200 {{"rcode":0,"answers":["{}"]}}"#, net.server), "over TCP through the sidecar");
        d.stop().await
    }
}

docker_test! {
    /// The sidecar's control port on loopback is refused, and no other listener in the
    /// namespace is a way out; another container's sidecar control port, the engine's egress
    /// listener and the host through the bridge gateway are reset, with the internet on or
    /// off.
    /// Positive controls: the app's own port on loopback connects; from a plain container
    /// on the bridge (the stub) both ports connect, and the listener answers a CONNECT
    /// without the token with 407 `token required`.
    // See: W5, W6.
    async fn leak_control_ports_and_engine_listener() -> anyhow::Result<()> {
        let net = FakeNet::get().await?;
        let d = off_and_on(&net).await?;
        let health: Value = d.client().json(Method::GET, "/v1/health", None).await?;
        let listener: SocketAddr = health["egressListener"].as_str().unwrap_or_default().parse().with_context(|| format!("{health}"))?;
        let (off_sidecar, on_sidecar) = (sidecar_ip(&d, "off")?, sidecar_ip(&d, "on")?);

        for (id, other) in [("off", on_sidecar), ("on", off_sidecar)] {
            assert_eq!(connect_probe(&d, id, "127.0.0.1:8080").await?, "200 connected", "{id}: its own app port");
            assert_eq!(connect_probe(&d, id, "127.0.0.1:39001").await?, "502 refused", "{id}: its sidecar's control port");
            assert_eq!(connect_probe(&d, id, &format!("{other}:39001")).await?, "502 reset", "{id}: another sidecar's control port");
            assert_eq!(connect_probe(&d, id, &listener.to_string()).await?, "502 reset", "{id}: the engine's listener");
        }
        let refused = logged(&d, "on", "the listener, refused", |e| e["type"] == "egress" && e["destination"] == listener.to_string()).await?;
        assert_eq!(refused["decision"], "refused", "{refused}");
        assert!(refused["reason"].as_str().is_some_and(|r| r.contains("never allowed") || r.contains("own listener")), "{refused}");

        // Every other TCP listener in the namespace (the sidecar's): none is a way out. Each
        // is refused or reset, or is the sidecar's DNS server answering by the policy.
        let nx = r#"200 {"rcode":3,"answers":[]}"#;
        for listener in tcp_listeners(&d, "off").await? {
            let target = SocketAddr::new(if listener.ip().is_unspecified() { Ipv4Addr::LOCALHOST.into() } else { listener.ip() }, listener.port());
            let probe = connect_probe(&d, "off", &target.to_string()).await?;
            match (listener.port(), probe.as_str()) {
                (8080, "200 connected") | (39001, "502 refused") | (_, "502 reset" | "502 refused") => {}
                (_, "200 connected") => {
                    let name = unique("listener") + ".wild.test";
                    let asked = app_get(&d, "off", &format!("/dns-query?name={name}&server={target}&transport=tcp"), &[]).await?;
                    assert_eq!(asked, nx, "{listener} accepts connections: it must be the sidecar's DNS");
                }
                _ => bail!("listener {listener}: {probe}"),
            }
        }

        // The host through the bridge gateway: pass-through never goes there.
        for id in ["off", "on"] {
            assert_eq!(connect_probe(&d, id, &format!("{}:22", net.gateway)).await?, "502 reset", "{id}: the host's port 22");
        }

        for target in [format!("{off_sidecar}:39001"), listener.to_string()] {
            assert_eq!(stub_get(&net, &format!("/connect?target={target}")).await?, "200 connected", "from the stub: {target}");
        }
        // W5: the control port is published on the host's loopback only; on the bridge side
        // of the host nothing listens on that port.
        let published = docker(&["port", &format!("wharf-{}-off-sidecar", d.name()), "39001/tcp"]);
        let published: SocketAddr = published.lines().next().unwrap_or_default().trim().parse().with_context(|| format!("published: {published:?}"))?;
        assert!(published.ip().is_loopback(), "{published}");
        let through_gateway = format!("{}:{}", net.gateway, published.port());
        assert_eq!(stub_get(&net, &format!("/connect?target={through_gateway}")).await?, "502 refused", "from the stub: {through_gateway}");
        let dst = format!("{}:8080", net.server);
        let script = format!("printf 'CONNECT {dst} HTTP/1.1\\r\\nHost: {dst}\\r\\n\\r\\n' | nc -w 5 {} {}", listener.ip(), listener.port());
        let exec = tokio::process::Command::new("docker").args(["exec", &net.stub_name, "/bin/sh", "-c", &script]).output();
        let out = tokio::time::timeout(Duration::from_secs(20), exec).await??;
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(answer.starts_with("HTTP/1.1 407 ") && answer.ends_with("\r\n\r\ntoken required"), "a CONNECT without the token: {answer:?} {}", String::from_utf8_lossy(&out.stderr));
        d.stop().await
    }
}
