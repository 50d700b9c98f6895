//! Tier 1.5: the sidecar binary with real interception, in a fresh network namespace.
//!
//! The binary runs as in an image (its own `NetlinkInterception`, `KernelOrigDst`, marks), in a
//! namespace of its own ([`NetnsSidecar`]). The test's app and fake engine run on a thread that
//! has entered that namespace, so the app's traffic to TEST-NET addresses is really intercepted:
//! the original destination comes from the kernel, and DNS replies must come back from the
//! address the query went to. Skipped without root.
//!
//! The binary gets TPROXY where the kernel has it. REDIRECT, where the original destination
//! comes from `SO_ORIGINAL_DST`, is tested in-process ([`NamedNetns`]): the sidecar is started
//! with `NetlinkInterception::redirect_only()` on a single thread inside a namespace made for
//! the test.

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use clap::Parser as _;
use rustix::thread::LinkNameSpaceType;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use wharf_sidecar::config::Config;
use wharf_sidecar::intercept::NetlinkInterception;
use wharf_sidecar::orig_dst::KernelOrigDst;
use wharf_sidecar::startup::{self, StartEnv};
use wharf_wire::connect::answer;
use wharf_wire::control::DnsDecision;
use wharf_wire::dns::{self, rcode, rtype};

use crate::binary::{NetnsSidecar, can_make_netns};
use crate::engine::FakeEngine;

/// A network namespace made for one test (`ip netns add`), with `lo` up and a veth uplink for
/// both families; deleted when dropped.
struct NamedNetns {
    name: String,
}

impl NamedNetns {
    /// Makes the namespace, or `None` where that is impossible (see [`can_make_netns`]).
    fn new() -> Option<NamedNetns> {
        if !can_make_netns() {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name =
            format!("wharf-tp-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let ns = NamedNetns { name };
        let n = ns.name.as_str();
        ip(&["netns", "add", n]);
        for args in [
            &["-n", n, "link", "set", "lo", "up"][..],
            &["-n", n, "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
            &["-n", n, "link", "set", "d1", "up"],
            &["-n", n, "link", "set", "d0", "up"],
            &["-n", n, "addr", "add", "10.9.0.2/24", "dev", "d0"],
            &["-n", n, "addr", "add", "fd00:9::2/64", "dev", "d0", "nodad"],
            &["-n", n, "route", "add", "default", "via", "10.9.0.1"],
            &["-n", n, "-6", "route", "add", "default", "via", "fd00:9::1"],
        ] {
            ip(args);
        }
        Some(ns)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).output();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fake engine's address inside the namespace.
const ENGINE: &str = "127.0.0.1:18080";

/// Runs `f` on a current-thread runtime, on a thread inside the network namespace at `path`.
fn in_netns<T: Send>(path: &str, f: impl AsyncFnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let ns = File::open(path).unwrap();
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .unwrap();
            // One thread only: every socket must be made in this namespace.
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(f())
        });
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[test]
fn intercepted_tcp_and_dns_reach_the_engine_with_kernel_addresses() {
    let engine_port = ENGINE.rsplit_once(':').unwrap().1;
    let args = [
        "--gateway-ip",
        "127.0.0.1",
        "--http-egress-port",
        engine_port,
        "--tls-intercept",
        "--dns-enabled",
        "--disable-ipv6",
        "--control-token",
        "k3rnel",
        "--internet-initially",
        "false",
    ];
    let Some(mut sidecar) = NetnsSidecar::spawn(&args) else { return };
    assert!(sidecar.wait_for("sidecar ready"), "{:?}", sidecar.log);
    let mode = sidecar.log.iter().find(|l| l.contains("interception in force")).unwrap().clone();

    in_netns(&format!("/proc/{}/ns/net", sidecar.pid()), async || {
        let mut engine = FakeEngine::start_on(ENGINE.parse().unwrap()).await;

        // TCP to a TEST-NET address: intercepted, named by its Host, tunnelled with the token.
        let dst: SocketAddr = "203.0.113.7:8080".parse().unwrap();
        let mut app = TcpStream::connect(dst).await.unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: api.example.test:8080\r\n\r\n";
        app.write_all(request).await.unwrap();
        let tunnel = engine.tunnel().await;
        assert_eq!(tunnel.connect.dst, dst, "the kernel's original destination ({mode})");
        assert_eq!(tunnel.connect.src, app.local_addr().unwrap());
        assert_eq!(tunnel.connect.hostname.as_deref(), Some("api.example.test"));
        assert_eq!(tunnel.connect.token.as_deref(), Some("k3rnel"));
        let mut upstream = tunnel.answer(answer::RAW, b"hello app").await;
        let mut got = vec![0u8; request.len()];
        upstream.read_exact(&mut got).await.unwrap();
        assert_eq!(got, request);
        let mut greeting = [0u8; 9];
        app.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"hello app");

        // DNS to a TEST-NET resolver: answered by the sidecar, from the resolver's address.
        let resolver: SocketAddr = "198.51.100.53:53".parse().unwrap();
        let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        let query = dns::encode_query(0x77, "anything.example", rtype::A).unwrap();
        socket.send_to(&query, resolver).await.unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("no dns answer")
            .unwrap();
        assert_eq!(from, resolver, "conntrack maps the reply's source back");
        let response = dns::parse_response(&buf[..n]).unwrap();
        assert_eq!((response.id, response.rcode), (0x77, rcode::NOERROR));
        assert_eq!(response.ips().map(|ip| ip.to_string()).collect::<Vec<_>>(), ["11.0.0.1"]);

        // The sidecar's own, marked connection carries the DNS log out.
        let post = engine.dns_log().await;
        assert_eq!(post.head.header("authorization"), Some("Bearer k3rnel"));
        assert_eq!(post.events[0].name, "anything.example");
        assert_eq!(post.events[0].decision, DnsDecision::Synthetic);
    });
    let (code, _) = sidecar.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn redirect_mode_reads_so_original_dst_for_both_families() {
    let Some(ns) = NamedNetns::new() else { return };
    let ca_dir = tempfile::tempdir().unwrap();
    let engine_port = ENGINE.rsplit_once(':').unwrap().1;
    let config = Config::try_parse_from([
        "wharf-sidecar",
        "--gateway-ip",
        "127.0.0.1",
        "--http-egress-port",
        engine_port,
        "--http-ingress-address",
        "127.0.0.1:39001",
        "--dns-enabled",
        "--ca-dir",
        ca_dir.path().to_str().unwrap(),
    ])
    .unwrap();
    in_netns(&ns.path(), async || {
        let mut engine = FakeEngine::start_on(ENGINE.parse().unwrap()).await;
        let env = StartEnv {
            hosts_path: Path::new("/nonexistent/hosts"),
            resolv_conf_path: Path::new("/nonexistent/resolv.conf"),
            interception: Arc::new(NetlinkInterception::redirect_only()),
            orig_dst: Arc::new(KernelOrigDst),
            now: SystemTime::now(),
        };
        let sidecar = startup::start(&config, env).await.unwrap();
        tokio::spawn(sidecar.serve(std::future::pending()));

        for dst in ["203.0.113.7:5432", "[2001:db8::7]:5432"] {
            let dst: SocketAddr = dst.parse().unwrap();
            let mut app = TcpStream::connect(dst).await.unwrap();
            app.write_all(b"hi").await.unwrap();
            let tunnel = engine.tunnel().await;
            assert_eq!(tunnel.connect.dst, dst, "SO_ORIGINAL_DST");
            assert_eq!(tunnel.connect.src, app.local_addr().unwrap());
            let mut upstream = tunnel.answer(answer::RAW, b"").await;
            let mut got = [0u8; 2];
            upstream.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"hi");
        }
    });
}
