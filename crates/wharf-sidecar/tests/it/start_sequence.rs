//! The start sequence fails closed, and the control port accepts only once interception is set.

use std::io::{ErrorKind, Read as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wharf_sidecar::intercept::{
    DnsInterception, InterceptError, InterceptMode, InterceptParams, Interception, IpFamilies,
    NoInterception,
};
use wharf_sidecar::orig_dst::KernelOrigDst;
use wharf_sidecar::startup::{self, StartEnv, StartError};
use wharf_wire::head::ResponseHead;

use crate::{Sidecar, closed_port, config};

/// Fails like a netfilter setup whose `iptables` is missing.
#[derive(Debug)]
struct Failing;

impl Interception for Failing {
    fn setup(&self, _params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        let source = std::io::Error::from(ErrorKind::NotFound);
        Err(InterceptError::Step {
            step: "iptables -t mangle -N DIVERT".to_owned(),
            source: source.into(),
        })
    }

    fn set_internet(&self, _enabled: bool) -> Result<(), InterceptError> {
        Ok(())
    }
}

/// While "setting up", sends a PUT to the already bound control port and checks that it is
/// not answered; keeps the socket so the test can see the answer come after setup.
#[derive(Debug, Default)]
struct ProbesDuringSetup {
    probe: Mutex<Option<std::net::TcpStream>>,
}

impl Interception for ProbesDuringSetup {
    fn setup(&self, params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        let mut probe = std::net::TcpStream::connect(params.control_addr).unwrap();
        probe.write_all(b"PUT /egress HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"port\":9}").unwrap();
        probe.set_nonblocking(true).unwrap();
        let early = probe.read(&mut [0u8; 64]).map_err(|e| e.kind());
        assert_eq!(early, Err(ErrorKind::WouldBlock), "nothing is served before setup succeeds");
        probe.set_nonblocking(false).unwrap();
        *self.probe.lock().unwrap() = Some(probe);
        Ok(InterceptMode::None)
    }

    fn set_internet(&self, _enabled: bool) -> Result<(), InterceptError> {
        Ok(())
    }
}

/// Records the parameters interception was set up with.
#[derive(Debug, Default)]
struct RecordsParams {
    params: Mutex<Option<InterceptParams>>,
}

impl Interception for RecordsParams {
    fn setup(&self, params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        *self.params.lock().unwrap() = Some(params.clone());
        Ok(InterceptMode::Tproxy)
    }

    fn set_internet(&self, _enabled: bool) -> Result<(), InterceptError> {
        Ok(())
    }
}

fn env(interception: Arc<dyn Interception>) -> StartEnv<'static> {
    StartEnv {
        hosts_path: Path::new("/nonexistent/hosts"),
        resolv_conf_path: Path::new("/nonexistent/resolv.conf"),
        interception,
        orig_dst: Arc::new(KernelOrigDst),
        now: SystemTime::now(),
    }
}

#[tokio::test]
async fn failed_interception_fails_the_start_and_releases_the_port() {
    let ca_dir = tempfile::tempdir().unwrap();
    let addr = closed_port().await;
    let mut config = config(&ca_dir, &[]);
    config.http_ingress_address = addr;
    let err = startup::start(&config, env(Arc::new(Failing))).await.unwrap_err();
    assert!(matches!(err, StartError::Intercept(_)), "{err:?}");
    assert_eq!(err.to_string(), "interception setup failed at iptables -t mangle -N DIVERT");
    let refused = TcpStream::connect(addr).await.map(drop).map_err(|e| e.kind());
    assert_eq!(refused, Err(ErrorKind::ConnectionRefused), "no listener is left behind");
}

#[tokio::test]
async fn the_first_put_is_answered_only_after_setup() {
    let ca_dir = tempfile::tempdir().unwrap();
    let interception = Arc::new(ProbesDuringSetup::default());
    let sidecar = startup::start(&config(&ca_dir, &[]), env(interception.clone())).await.unwrap();
    tokio::spawn(sidecar.serve(std::future::pending()));

    let probe = interception.probe.lock().unwrap().take().unwrap();
    let mut probe = TcpStream::from_std({
        probe.set_nonblocking(true).unwrap();
        probe
    })
    .unwrap();
    let mut raw = Vec::new();
    probe.read_to_end(&mut raw).await.unwrap();
    let (head, _) = ResponseHead::parse(&raw).unwrap().unwrap();
    assert_eq!(head.status(), 204);
}

#[tokio::test]
async fn missing_gateway_names_the_fix() {
    let ca_dir = tempfile::tempdir().unwrap();
    let mut config = config(&ca_dir, &[]);
    config.gateway_ip = None;
    let err = startup::start(&config, env(Arc::new(NoInterception))).await.unwrap_err();
    assert!(matches!(err, StartError::Gateway(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no --gateway-ip and no host.docker.internal in /nonexistent/hosts; \
         run with --add-host host.docker.internal:host-gateway"
    );
}

#[tokio::test]
async fn gateway_comes_from_the_hosts_file() {
    let ca_dir = tempfile::tempdir().unwrap();
    let hosts = ca_dir.path().join("hosts");
    std::fs::write(&hosts, "::1 host.docker.internal\n172.17.0.1 host.docker.internal\n").unwrap();
    let mut config = config(&ca_dir, &[]);
    config.gateway_ip = None;
    let env = StartEnv { hosts_path: &hosts, ..env(Arc::new(NoInterception)) };
    let sidecar = startup::start(&config, env).await.unwrap();
    assert_eq!(sidecar.gateway().to_string(), "172.17.0.1");
    assert_eq!(sidecar.egress().current().port(), 49121);
    assert!(sidecar.ca().is_none());
}

#[tokio::test]
async fn unbindable_address_fails_the_start() {
    let taken = Sidecar::start(&[]).await;
    let ca_dir = tempfile::tempdir().unwrap();
    let mut config = config(&ca_dir, &[]);
    config.http_ingress_address = taken.addr;
    let err = startup::start(&config, env(Arc::new(NoInterception))).await.unwrap_err();
    assert!(matches!(err, StartError::Bind(_)), "{err:?}");
}

#[tokio::test]
async fn unwritable_ca_dir_fails_the_start() {
    let ca_dir = tempfile::tempdir().unwrap();
    let file = ca_dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let bad_dir = file.join("ca");
    let mut config = config(&ca_dir, &["--tls-intercept"]);
    config.ca_dir = bad_dir;
    let err = startup::start(&config, env(Arc::new(NoInterception))).await.unwrap_err();
    assert!(matches!(err, StartError::Ca(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_head_is_dropped_at_the_deadline() {
    let sidecar = Sidecar::start_without_ca(&[]).await;
    let mut stream = TcpStream::connect(sidecar.addr).await.unwrap();
    stream.write_all(b"PUT /egress HTTP/1.1\r\nContent-Le").await.unwrap();
    let started = tokio::time::Instant::now();
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw).await.map_err(|e| e.kind());
    assert!(matches!(read, Ok(0) | Err(ErrorKind::ConnectionReset)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn interception_gets_the_listeners_the_mark_and_the_initial_flag() {
    let ca_dir = tempfile::tempdir().unwrap();
    let config = config(&ca_dir, &["--dns-enabled", "--internet-initially", "false"]);
    let interception = Arc::new(RecordsParams::default());
    let sidecar = startup::start(&config, env(interception.clone())).await.unwrap();
    let params = interception.params.lock().unwrap().take().unwrap();
    assert_eq!(params.tcp_listeners, sidecar.egress_addrs());
    assert_eq!(params.tcp_listeners.len(), 1, "--disable-ipv6: loopback v4 only");
    assert_eq!(params.dns_port, sidecar.dns_addrs()[0].port());
    assert_eq!(params.control_addr, sidecar.control_addr().unwrap());
    assert_eq!(
        (params.own_mark, params.families, params.dns),
        (0, IpFamilies::V4Only, DnsInterception::On)
    );
    assert!(!params.internet);
    assert!(!sidecar.egress().current().internet_enabled(), "the state agrees with the kernel");
}

#[tokio::test]
async fn both_families_get_listeners_on_one_port() {
    let ca_dir = tempfile::tempdir().unwrap();
    let mut config = config(&ca_dir, &["--dns-enabled"]);
    config.disable_ipv6 = false;
    let interception = Arc::new(RecordsParams::default());
    let sidecar = startup::start(&config, env(interception.clone())).await.unwrap();
    let params = interception.params.lock().unwrap().take().unwrap();
    assert_eq!(params.families, IpFamilies::Both);
    let addrs = sidecar.egress_addrs();
    assert_eq!(addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>(), ["127.0.0.1", "::1"]);
    assert_eq!(addrs[0].port(), addrs[1].port());
    assert_eq!(sidecar.dns_addrs().len(), 2);
    assert!(params.internet, "on until the first PUT, as proxy-everything");
}
