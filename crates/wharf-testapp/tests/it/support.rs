//! Shared test helpers: start the app, talk HTTP to it, and run small upstream servers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client_http1;
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use wharf_testapp::config::{Config, DnsStubConfig, WsMode};
use wharf_testapp::resolve::{NameServer, Resolver, ResolverConfig};
use wharf_testapp::roles::{RoleAddrs, Roles};
use wharf_testapp::routes::App;
use wharf_testapp::server;

/// What a test app is started with.
pub(crate) struct Setup {
    pub(crate) config: Config,
    pub(crate) resolver: ResolverConfig,
    pub(crate) env: BTreeMap<String, String>,
    /// Keeps the hosts file alive.
    _dir: TempDir,
}

impl Setup {
    /// WebSockets off, no CA files, `/etc/hosts` replaced by `hosts`, and a nameserver that
    /// does not exist (a closed UDP port on loopback).
    pub(crate) fn new(hosts: &str) -> Setup {
        let dir = TempDir::new().unwrap();
        let hosts_file = dir.path().join("hosts");
        std::fs::write(&hosts_file, hosts).unwrap();
        Setup {
            config: Config {
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                ws: WsMode::Disabled,
                tcp_echo_port: None,
                udp_echo_port: None,
                greeting_port: None,
                dns_stub: None,
                ca_files: Vec::new(),
            },
            resolver: ResolverConfig {
                hosts_file,
                nameserver: NameServer::Fixed(closed_udp_addr()),
                timeout: Duration::from_secs(5),
                attempts: 2,
            },
            env: BTreeMap::new(),
            _dir: dir,
        }
    }

    /// A file in the setup's temporary directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }

    /// Starts the app on loopback and returns its address.
    pub(crate) async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind(self.config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            App::new(self.config.clone(), Resolver::new(self.resolver.clone()), self.env.clone());
        tokio::spawn(server::serve(listener, Arc::new(app)));
        addr
    }
}

/// The records the fake-internet tests serve from the DNS stub.
pub(crate) const RECORDS: &str = "example.com=10.201.0.10,www.example.com=10.201.0.10,\
    v6.example.com=2001:db8::10,*.wild.test=10.201.0.30";

/// The configuration of a test app on loopback with every optional role off.
pub(crate) fn loopback_config() -> Config {
    Setup::new("").config
}

/// Binds the roles `config` turns on and serves them; returns where they listen.
pub(crate) async fn start_roles(config: &Config) -> RoleAddrs {
    let roles = Roles::bind(config).await.unwrap();
    let addrs = roles.addrs();
    roles.spawn();
    addrs
}

/// A DNS stub serving [`RECORDS`] on loopback, UDP and TCP on the returned address.
pub(crate) async fn dns_stub() -> SocketAddr {
    let mut config = loopback_config();
    config.dns_stub = Some(DnsStubConfig { port: 0, zone: RECORDS.parse().unwrap() });
    start_roles(&config).await.dns.unwrap()
}

/// One HTTP/1.1 connection to the app.
pub(crate) struct Client {
    addr: SocketAddr,
    sender: client_http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = client_http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Client { addr, sender }
    }

    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request =
            Request::builder().method(method).uri(path).header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, content_type, body: String::from_utf8(body.to_vec()).unwrap() }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) body: String,
}

impl Reply {
    /// `"<status> <body>"`, for compact assertions.
    pub(crate) fn summary(&self) -> String {
        format!("{} {}", self.status.as_u16(), self.body)
    }
}

/// A GET on a fresh connection.
pub(crate) async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    Client::connect(addr).await.send("GET", path, headers, "").await
}

/// A loopback port where nothing listens.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A UDP socket on loopback that reads and never answers.
pub(crate) async fn silent_udp() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0; 1024];
        while socket.recv_from(&mut buf).await.is_ok() {}
    });
    addr
}

/// A UDP loopback address where nothing listens: queries sent there fail at once.
pub(crate) fn closed_udp_addr() -> SocketAddr {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.local_addr().unwrap()
}

/// An HTTP server on loopback answering `"<method> <host header> <path>"`.
pub(crate) async fn http_upstream() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve_http(TokioIo::new(stream)));
        }
    });
    addr
}

/// Serves the [`http_upstream`] answer on one connection.
pub(crate) async fn serve_http<I>(io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(|req: Request<Incoming>| async move {
        let host =
            req.headers().get("host").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = format!("{} {host} {}", req.method(), req.uri());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    let _ = server_http1::Builder::new().serve_connection(io, service).await;
}

/// A TLS acceptor for `name`, with a certificate from a fresh CA, and that CA in PEM.
pub(crate) fn tls_acceptor(name: &str) -> (String, TlsAcceptor) {
    let (ca_pem, chain, key) = mint(name);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (ca_pem, TlsAcceptor::from(Arc::new(config)))
}

fn mint(name: &str) -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "wharf-testapp test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf =
        CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&leaf_key, &*ca).unwrap();
    let key = PrivatePkcs8KeyDer::from(leaf_key.serialize_der());
    (ca.pem(), vec![leaf.der().clone()], key.into())
}
