//! Tier 1.5: [`NetlinkInterception`] against the real kernel, in throwaway network namespaces.
//!
//! Each test builds a lab of two namespaces joined by a veth pair. `app` is the namespace the
//! sidecar and the app share: `d0` with 10.9.0.2/24 and fd00:9::2/64, default routes via the
//! peer. `peer` stands for everything outside (the engine, other containers, the internet):
//! `d1` with 10.9.0.1 and fd00:9::1, and the TEST-NET destinations 203.0.113.7 and
//! 2001:db8::7 on its `lo`, where it serves a TCP banner ("peer"), a UDP echo and ICMP echo.
//! No packet reaches the host's own network.
//!
//! Interception is set up, and sockets are made, on threads that entered a namespace with
//! `setns` (`rustix::thread::move_into_link_name_space`): a thread's network namespace is its
//! own, so the harness's threads stay where they are, and a socket keeps the namespace it was
//! made in whichever thread uses it later. The lab's guard stops its servers and deletes both
//! namespaces, also when a test fails. `nft` and `ip rule` are used only to read back what was
//! installed (the sidecar never runs them).
//!
//! Skipped, with one line on stderr, unless running as root with `ip` on the PATH.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use expect_test::expect;
use rustix::thread::LinkNameSpaceType;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use wharf_sidecar::gateway::EgressGateway;
use wharf_sidecar::intercept::{
    DnsInterception, InterceptMode, InterceptParams, Interception, IpFamilies, NetlinkInterception,
};

/// The egress listener's port (both families), the DNS port and the control port.
const LISTENER: u16 = 15001;
const DNS_PORT: u16 = 15053;
const CONTROL: u16 = 39001;
/// The sidecar's own mark.
const OWN_MARK: u32 = 100;
/// "The internet", served by the peer namespace.
const REMOTE4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
/// Docker's embedded DNS server.
const DOCKER_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// The app namespace's own address and the peer's (the "gateway" and "Docker subnet").
const APP4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PEER4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
/// How long a client waits for anything; refusals are immediate, so this is only hit on bugs.
const TIMEOUT: Duration = Duration::from_secs(2);

// === the tests ===

#[test]
fn tproxy_delivers_tcp_with_the_original_destination() {
    let Some(lab) = Lab::new() else { return };
    let mode = lab.in_app(|| NetlinkInterception::new().setup(&params(IpFamilies::Both)));
    assert_eq!(mode.unwrap(), InterceptMode::Tproxy, "this kernel has TPROXY");
    lab.in_app(|| {
        let v4 = banner(SocketAddr::from((REMOTE4, 80)), None).unwrap();
        assert_eq!(v4, "sidecar local=203.0.113.7:80 peer=10.9.0.2");
        let v6 = banner(SocketAddr::from((REMOTE6, 443)), None).unwrap();
        assert_eq!(v6, "sidecar local=[2001:db8::7]:443 peer=fd00:9::2");
        // The gateway and the Docker subnet are not exempt (W6); DNS over TCP is TCP.
        let gateway = banner(SocketAddr::from((PEER4, 80)), None).unwrap();
        assert_eq!(gateway, "sidecar local=10.9.0.1:80 peer=10.9.0.2");
        let dns = banner(SocketAddr::from((REMOTE4, 53)), None).unwrap();
        assert_eq!(dns, "sidecar local=203.0.113.7:53 peer=10.9.0.2");
    });
}

#[test]
fn redirect_delivers_tcp_with_the_original_destination() {
    let Some(lab) = Lab::new() else { return };
    let mode = lab.in_app(|| NetlinkInterception::redirect_only().setup(&params(IpFamilies::Both)));
    assert_eq!(mode.unwrap(), InterceptMode::Redirect);
    lab.in_app(|| {
        let v4 = banner(SocketAddr::from((REMOTE4, 80)), None).unwrap();
        assert_eq!(v4, "sidecar local=127.0.0.1:15001 peer=10.9.0.2 orig=203.0.113.7:80");
        let v6 = banner(SocketAddr::from((REMOTE6, 443)), None).unwrap();
        assert_eq!(v6, "sidecar local=[::1]:15001 peer=fd00:9::2 orig=[2001:db8::7]:443");
        let gateway = banner(SocketAddr::from((PEER4, 80)), None).unwrap();
        assert_eq!(gateway, "sidecar local=127.0.0.1:15001 peer=10.9.0.2 orig=10.9.0.1:80");
    });
}

#[test]
fn dns_goes_to_the_dns_port_in_both_modes() {
    for redirect_only in [false, true] {
        let Some(mut lab) = Lab::new() else { return };
        // Docker's embedded resolver on its real port (Docker DNATs 127.0.0.11:53 there).
        let docker = SocketAddr::from((DOCKER_DNS, 41000));
        let resolver = lab.in_app(|| udp_socket(docker));
        lab.serve_udp(resolver, |_| "docker dns".to_owned());
        let interception = if redirect_only {
            NetlinkInterception::redirect_only()
        } else {
            NetlinkInterception::new()
        };
        lab.in_app(|| interception.setup(&params(IpFamilies::Both))).unwrap();
        lab.in_app(|| {
            // The answer comes back from where the query went: conntrack undoes the NAT.
            let v4 = udp_exchange(SocketAddr::from((REMOTE4, 53)), None).unwrap();
            assert_eq!(v4, "dns from 10.9.0.2");
            let v6 = udp_exchange(SocketAddr::from((REMOTE6, 53)), None).unwrap();
            assert_eq!(v6, "dns from fd00:9::2");
            // Docker's embedded resolver lives on loopback; DNS over TCP to it is caught too.
            let docker_tcp = banner(SocketAddr::from((DOCKER_DNS, 53)), None).unwrap();
            assert_eq!(docker_tcp, "dns-tcp");
            // Its real port is off limits to the app, not to the sidecar's forwarding.
            let direct = udp_exchange(docker, None);
            assert!(direct.is_err(), "the app reached Docker's resolver: {direct:?}");
            assert_eq!(udp_exchange(docker, Some(OWN_MARK)).unwrap(), "docker dns");
        });
        assert_eq!(lab.peer_udp(), 0, "no query left (redirect_only: {redirect_only})");
    }
}

#[test]
fn the_internet_gate_closes_and_opens_non_dns_udp_and_icmp() {
    let Some(lab) = Lab::new() else { return };
    let interception = NetlinkInterception::new();
    lab.in_app(|| interception.setup(&params(IpFamilies::Both))).unwrap();
    let refused = |what: &str| {
        lab.in_app(|| {
            for to in [IpAddr::from(REMOTE4), IpAddr::from(REMOTE6)] {
                let udp = udp_exchange(SocketAddr::new(to, 9), None);
                assert!(udp.is_err(), "{what}: UDP to {to} went out: {udp:?}");
                assert!(ping(to).is_err(), "{what}: ping {to} was answered");
            }
        });
        assert_eq!(lab.peer_udp(), 0, "{what}: no datagram reached the peer");
    };
    refused("internet off at start");

    lab.in_app(|| interception.set_internet(true)).unwrap();
    lab.in_app(|| {
        for to in [IpAddr::from(REMOTE4), IpAddr::from(REMOTE6)] {
            let echo = udp_exchange(SocketAddr::new(to, 9), None).unwrap();
            assert!(echo.starts_with("echo "), "{echo}");
            ping(to).unwrap();
        }
        // Only TCP, UDP and ICMP are ever let through: another protocol is refused anyway.
        let other = send_raw(REMOTE4.into(), 253);
        assert!(other.is_err(), "IP protocol 253 went out: {other:?}");
    });
    assert_eq!(lab.peer_udp(), 2);

    lab.in_app(|| interception.set_internet(false)).unwrap();
    let before = lab.peer_udp();
    lab.in_app(|| {
        assert!(udp_exchange(SocketAddr::from((REMOTE4, 9)), None).is_err());
        assert!(ping(REMOTE4.into()).is_err());
    });
    assert_eq!(lab.peer_udp(), before, "internet off again");
}

#[test]
fn own_mark_and_loopback_are_not_intercepted() {
    let Some(mut lab) = Lab::new() else { return };
    // The app's own server, on loopback and on all addresses.
    let app = lab.in_app(|| tcp_listener(SocketAddr::from(([0, 0, 0, 0], 8080)), false));
    lab.serve_tcp(app, |_| "app".to_owned());
    lab.in_app(|| NetlinkInterception::new().setup(&params(IpFamilies::Both))).unwrap();
    lab.in_app(|| {
        // The sidecar's own sockets go out as they are, even with the internet off.
        let peer = banner(SocketAddr::from((REMOTE4, 80)), Some(OWN_MARK)).unwrap();
        assert_eq!(peer, "peer");
        let peer6 = banner(SocketAddr::from((REMOTE6, 80)), Some(OWN_MARK)).unwrap();
        assert_eq!(peer6, "peer");
        let echo = udp_exchange(SocketAddr::from((REMOTE4, 9)), Some(OWN_MARK)).unwrap();
        assert_eq!(echo, "echo from 10.9.0.2");
        // Loopback and the namespace's own address reach the app itself (ingress dials these).
        assert_eq!(banner(SocketAddr::from(([127, 0, 0, 1], 8080)), None).unwrap(), "app");
        assert_eq!(banner(SocketAddr::from((APP4, 8080)), None).unwrap(), "app");
    });
    assert_eq!(lab.peer_udp(), 1);
}

#[test]
fn the_app_cannot_open_the_control_port_but_the_engine_can() {
    let Some(mut lab) = Lab::new() else { return };
    let control = lab.in_app(|| tcp_listener(SocketAddr::from(([0, 0, 0, 0], CONTROL)), false));
    lab.serve_tcp(control, |_| "control".to_owned());
    lab.in_app(|| NetlinkInterception::new().setup(&params(IpFamilies::Both))).unwrap();
    lab.in_app(|| {
        for to in [IpAddr::from([127, 0, 0, 1]), IpAddr::from(APP4)] {
            let err = banner(SocketAddr::new(to, CONTROL), None).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{to}: {err}");
        }
        // The sidecar itself may.
        let own = banner(SocketAddr::from(([127, 0, 0, 1], CONTROL)), Some(OWN_MARK)).unwrap();
        assert_eq!(own, "control");
        // A remote port that happens to equal the control port is intercepted as usual.
        let remote = banner(SocketAddr::from((REMOTE4, CONTROL)), None).unwrap();
        assert_eq!(remote, "sidecar local=203.0.113.7:39001 peer=10.9.0.2");
    });
    // The engine arrives from outside, and the replies go back untouched (W34).
    let engine = lab.in_peer(|| banner(SocketAddr::from((APP4, CONTROL)), None)).unwrap();
    assert_eq!(engine, "control");
}

#[test]
fn ipv4_only_lets_no_ipv6_out() {
    let Some(lab) = Lab::new() else { return };
    let interception = NetlinkInterception::new();
    lab.in_app(|| interception.setup(&params(IpFamilies::V4Only))).unwrap();
    lab.in_app(|| interception.set_internet(true)).unwrap();
    lab.in_app(|| {
        let tcp = banner(SocketAddr::from((REMOTE6, 80)), None);
        assert!(tcp.is_err(), "IPv6 TCP went somewhere: {tcp:?}");
        let udp = udp_exchange(SocketAddr::from((REMOTE6, 9)), None);
        assert!(udp.is_err(), "IPv6 UDP went out: {udp:?}");
        assert!(ping(REMOTE6.into()).is_err());
        // IPv4 is intercepted as usual.
        let v4 = banner(SocketAddr::from((REMOTE4, 80)), None).unwrap();
        assert_eq!(v4, "sidecar local=203.0.113.7:80 peer=10.9.0.2");
    });
    assert_eq!(lab.peer_udp(), 0);
}

/// A restarted sidecar replaces the table and finds its routing rules in place: nothing
/// stacks. Also reads the table back, which shows the kernel understood every rule as the
/// rendering in `rules.rs` says (modulo nft's names for numbers).
#[test]
fn setup_twice_replaces_everything() {
    let Some(lab) = Lab::new() else { return };
    lab.in_app(|| NetlinkInterception::redirect_only().setup(&params(IpFamilies::Both))).unwrap();
    for _ in 0..2 {
        let mode = lab.in_app(|| NetlinkInterception::new().setup(&params(IpFamilies::Both)));
        assert_eq!(mode.unwrap(), InterceptMode::Tproxy);
    }
    for family in ["-4", "-6"] {
        let rules = lab.ip_in_app(&[family, "rule", "list"]);
        assert_eq!(rules.matches("fwmark 0x1 lookup 100").count(), 1, "{rules}");
    }
    let Some(ruleset) = lab.nft_list() else { return };
    assert_eq!(ruleset.matches("table ").count(), 1, "{ruleset}");
    expect![[r#"
        table inet wharf {
        	chain internet {
        		counter packets 0 bytes 0 reject with icmpx admin-prohibited
        	}

        	chain divert {
        		type route hook output priority mangle; policy accept;
        		oif "lo" return
        		meta mark 0x00000064 return
        		ct direction reply return
        		meta l4proto tcp meta mark set 0x00000001
        	}

        	chain deliver {
        		type filter hook prerouting priority mangle; policy accept;
        		iif "lo" meta mark 0x00000001 meta nfproto ipv4 meta l4proto tcp tproxy ip to 127.0.0.1:15001 accept
        		iif "lo" meta mark 0x00000001 meta nfproto ipv6 meta l4proto tcp tproxy ip6 to [::1]:15001 accept
        	}

        	chain rewrite {
        		type nat hook output priority -110; policy accept;
        		meta mark 0x00000064 return
        		udp dport 53 redirect to :15053
        		ip daddr 127.0.0.0/8 tcp dport 53 redirect to :15053
        		ip6 daddr ::1 tcp dport 53 redirect to :15053
        	}

        	chain egress {
        		type filter hook output priority filter; policy accept;
        		meta mark 0x00000064 accept
        		ct direction reply accept
        		ip daddr 127.0.0.11 counter packets 0 bytes 0 reject with icmpx admin-prohibited
        		oif "lo" accept
        		ip daddr 127.0.0.0/8 accept
        		ip6 daddr ::1 accept
        		meta mark 0x00000001 accept
        		icmpv6 type 130-136 accept
        		icmpv6 type mld2-listener-report accept
        		meta l4proto udp jump internet
        		meta l4proto icmp jump internet
        		meta l4proto ipv6-icmp jump internet
        		meta l4proto tcp counter packets 0 bytes 0 reject with tcp reset
        		counter packets 0 bytes 0 reject with icmpx admin-prohibited
        	}

        	chain control {
        		type filter hook input priority filter; policy accept;
        		iif "lo" meta mark != 0x00000001 meta mark != 0x00000064 tcp dport 39001 ct state new counter packets 0 bytes 0 reject with tcp reset
        	}
        }
    "#]]
    .assert_eq(&ruleset);
}

// === the lab ===

/// Two namespaces and the servers in them; dropping it stops the servers and deletes both.
struct Lab {
    app: String,
    peer: String,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
    /// Datagrams the peer's UDP servers received.
    peer_udp: Arc<AtomicUsize>,
}

impl Lab {
    /// Builds the lab with its standard servers, or says why not (once) and returns `None`.
    fn new() -> Option<Lab> {
        if let Some(reason) = skip_reason() {
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                let _ = writeln!(
                    io::stderr(),
                    "wharf-sidecar: tier-1.5 netfilter tests skipped: {reason}"
                );
            });
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let app =
            format!("wharf-nft-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let mut lab = Lab {
            peer: format!("{app}-peer"),
            app,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
            peer_udp: Arc::new(AtomicUsize::new(0)),
        };
        lab.wire();
        lab.start_servers();
        Some(lab)
    }

    fn wire(&self) {
        let (app, peer) = (self.app.as_str(), self.peer.as_str());
        ip(&["netns", "add", app]);
        ip(&["netns", "add", peer]);
        for args in [
            &["-n", app, "link", "set", "lo", "up"][..],
            &["-n", peer, "link", "set", "lo", "up"],
            &["-n", app, "link", "add", "d0", "type", "veth", "peer", "name", "d1", "netns", peer],
            &["-n", app, "addr", "add", "10.9.0.2/24", "dev", "d0"],
            &["-n", app, "addr", "add", "fd00:9::2/64", "dev", "d0", "nodad"],
            &["-n", app, "link", "set", "d0", "up"],
            &["-n", peer, "addr", "add", "10.9.0.1/24", "dev", "d1"],
            &["-n", peer, "addr", "add", "fd00:9::1/64", "dev", "d1", "nodad"],
            &["-n", peer, "link", "set", "d1", "up"],
            &["-n", peer, "addr", "add", "203.0.113.7/32", "dev", "lo"],
            &["-n", peer, "addr", "add", "2001:db8::7/128", "dev", "lo"],
            &["-n", app, "route", "add", "default", "via", "10.9.0.1"],
            &["-n", app, "-6", "route", "add", "default", "via", "fd00:9::1"],
        ] {
            ip(args);
        }
    }

    /// The peer's banner and echo; the sidecar's egress listeners and DNS listeners.
    fn start_servers(&mut self) {
        for remote in [IpAddr::from(REMOTE4), IpAddr::from(REMOTE6)] {
            let banner = self.in_peer(|| tcp_listener(SocketAddr::new(remote, 80), false));
            self.serve_tcp(banner, |_| "peer".to_owned());
            // Echo, and stand-in DNS servers that must never be asked.
            for port in [9, 53] {
                let echo = self.in_peer(|| udp_socket(SocketAddr::new(remote, port)));
                let count = Arc::clone(&self.peer_udp);
                self.serve_udp(echo, move |from| {
                    count.fetch_add(1, Ordering::SeqCst);
                    format!("echo from {}", from.ip())
                });
            }
        }
        for lo in [IpAddr::from(Ipv4Addr::LOCALHOST), IpAddr::from(Ipv6Addr::LOCALHOST)] {
            let egress = self.in_app(|| tcp_listener(SocketAddr::new(lo, LISTENER), true));
            self.serve_tcp(egress, describe_intercepted);
            let dns = self.in_app(|| udp_socket(SocketAddr::new(lo, DNS_PORT)));
            self.serve_udp(dns, |from| format!("dns from {}", from.ip()));
            let dns_tcp = self.in_app(|| tcp_listener(SocketAddr::new(lo, DNS_PORT), false));
            self.serve_tcp(dns_tcp, |_| "dns-tcp".to_owned());
        }
    }

    /// Runs `f` on a thread inside the app namespace.
    fn in_app<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        run_in(&self.app, f)
    }

    /// Runs `f` on a thread inside the peer namespace.
    fn in_peer<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        run_in(&self.peer, f)
    }

    /// Answers each connection to `listener` with `reply`, until the lab is dropped.
    fn serve_tcp(&mut self, listener: TcpListener, reply: fn(&TcpStream) -> String) {
        let stop = Arc::clone(&self.stop);
        SockRef::from(&listener).set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        self.servers.push(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.write_all(reply(&stream).as_bytes());
                }
            }
        }));
    }

    /// Answers each datagram to `socket` with `reply(sender)`, until the lab is dropped.
    fn serve_udp(
        &mut self,
        socket: UdpSocket,
        reply: impl Fn(SocketAddr) -> String + Send + 'static,
    ) {
        let stop = Arc::clone(&self.stop);
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        self.servers.push(thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(reply(from).as_bytes(), from);
                }
            }
        }));
    }

    fn peer_udp(&self) -> usize {
        self.peer_udp.load(Ordering::SeqCst)
    }

    /// `ip -n <app> <args>`, its stdout.
    fn ip_in_app(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.app.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `nft list ruleset` in the app namespace, or `None` (said on stderr) without `nft`.
    fn nft_list(&self) -> Option<String> {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.app, "nft", "list", "ruleset"]);
        match out_of(&mut command) {
            Ok(listing) => Some(listing),
            Err(e) => {
                let _ = writeln!(io::stderr(), "wharf-sidecar: ruleset not read back: {e}");
                None
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for server in self.servers.drain(..) {
            let _ = server.join();
        }
        for ns in [&self.app, &self.peer] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).output();
        }
    }
}

fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not running as root".to_owned());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`ip -V` failed: {}", out.status)),
        Err(e) => Some(format!("no `ip` command: {e}")),
    }
}

/// Runs `ip` with `args`, returning its stdout; panics with its stderr on failure.
fn ip(args: &[&str]) -> String {
    let mut command = Command::new("ip");
    command.args(args);
    out_of(&mut command).unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")))
}

fn out_of(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// Runs `f` on a new thread that first enters network namespace `ns`.
fn run_in<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        let thread = scope.spawn(|| {
            let file = File::open(format!("/run/netns/{ns}")).unwrap();
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(LinkNameSpaceType::Network),
            )
            .unwrap();
            f()
        });
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn params(families: IpFamilies) -> InterceptParams {
    let mut tcp_listeners = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, LISTENER))];
    if families == IpFamilies::Both {
        tcp_listeners.push(SocketAddr::from((Ipv6Addr::LOCALHOST, LISTENER)));
    }
    InterceptParams {
        gateway: EgressGateway::from(IpAddr::from(PEER4)),
        docker_gateway_cidr: None,
        control_addr: SocketAddr::from(([0, 0, 0, 0], CONTROL)),
        families,
        dns: DnsInterception::On,
        tcp_listeners,
        dns_port: DNS_PORT,
        own_mark: OWN_MARK,
        internet: false,
    }
}

// === sockets (made inside a namespace) ===

fn tcp_listener(addr: SocketAddr, transparent: bool) -> TcpListener {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    match addr {
        SocketAddr::V4(_) => socket.set_ip_transparent_v4(transparent).unwrap(),
        SocketAddr::V6(_) => {
            socket.set_only_v6(true).unwrap();
            socket.set_ip_transparent_v6(transparent).unwrap();
        }
    }
    socket.bind(&addr.into()).unwrap();
    socket.listen(16).unwrap();
    socket.into()
}

fn udp_socket(addr: SocketAddr) -> UdpSocket {
    UdpSocket::bind(addr).unwrap()
}

/// What the egress listener tells a client: where the connection was accepted (the original
/// destination, under TPROXY), from whom, and `SO_ORIGINAL_DST` where NAT rewrote it.
fn describe_intercepted(stream: &TcpStream) -> String {
    let local = stream.local_addr().unwrap();
    let peer = stream.peer_addr().unwrap().ip();
    let socket = SockRef::from(stream);
    let orig = match local {
        SocketAddr::V4(_) => socket.original_dst_v4(),
        SocketAddr::V6(_) => socket.original_dst_v6(),
    };
    match orig.ok().and_then(|orig| orig.as_socket()) {
        Some(orig) if orig != local => format!("sidecar local={local} peer={peer} orig={orig}"),
        _ => format!("sidecar local={local} peer={peer}"),
    }
}

/// Connects to `to` (with `mark` as `SO_MARK`) and reads what the server says.
fn banner(to: SocketAddr, mark: Option<u32>) -> io::Result<String> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    if let Some(mark) = mark {
        socket.set_mark(mark)?;
    }
    socket.connect_timeout(&to.into(), TIMEOUT)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let mut banner = String::new();
    TcpStream::from(socket).read_to_string(&mut banner)?;
    Ok(banner)
}

/// Sends a datagram to `to` and returns the answer, which must come from `to`.
fn udp_exchange(to: SocketAddr, mark: Option<u32>) -> io::Result<String> {
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any)?;
    if let Some(mark) = mark {
        SockRef::from(&socket).set_mark(mark)?;
    }
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.connect(to)?;
    socket.send(b"hello")?;
    let mut buf = [0u8; 512];
    let len = socket.recv(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// One ICMP(v6) echo request to `to`; `Ok` when its reply arrives.
fn ping(to: IpAddr) -> io::Result<()> {
    let (domain, protocol, request, reply) = match to {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, 8, 0),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, 128, 129),
    };
    let mut socket = Socket::new(domain, Type::RAW, Some(protocol))?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
    let mut packet = [request, 0, 0, 0, 0, 0, 0, 1, b'w', b'h', b'a', b'r', b'f', 0];
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    if to.is_ipv4() {
        // The kernel fills in ICMPv6 checksums, not ICMP ones.
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    socket.send_to(&packet, &SocketAddr::new(to, 0).into())?;
    let mut buf = [0u8; 1500];
    loop {
        let len = socket.read(&mut buf)?;
        // IPv4 raw sockets see the IP header; IPv6 ones do not.
        let icmp =
            if to.is_ipv4() { &buf[usize::from(buf[0] & 0x0f) * 4..len] } else { &buf[..len] };
        if icmp.len() >= 8 && icmp[0] == reply && icmp[4..6] == id.to_be_bytes() {
            return Ok(());
        }
    }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends one packet of IP protocol `protocol` to `to`.
fn send_raw(to: IpAddr, protocol: i32) -> io::Result<usize> {
    let socket = Socket::new(
        Domain::for_address(SocketAddr::new(to, 0)),
        Type::RAW,
        Some(Protocol::from(protocol)),
    )?;
    socket.send_to(b"wharf", &SocketAddr::new(to, 0).into())
}
