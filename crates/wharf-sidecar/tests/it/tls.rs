//! TLS termination on a 200: a client that trusts the sidecar's CA, leaves per SNI or per IP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wharf_wire::connect::answer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::Sidecar;
use crate::engine::FakeEngine;

fn client_config(sidecar: &Sidecar, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let ca = CertificateDer::from_pem_slice(sidecar.ca_pem.as_ref().unwrap().as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Starts a handshake "to" `dst` as `name`, lets the fake engine accept with 200, and returns
/// the client's stream and the engine's end of the tunnel.
async fn handshake(
    engine: &mut FakeEngine,
    sidecar: &Sidecar,
    dst: SocketAddr,
    name: ServerName<'static>,
) -> (TlsStream<TcpStream>, TcpStream, wharf_wire::connect::EgressConnect) {
    let app = sidecar.connect_to(dst).await;
    let connector = TlsConnector::from(client_config(sidecar, &[b"h2", b"http/1.1"]));
    let client = tokio::spawn(async move { connector.connect(name, app).await });
    let tunnel = engine.tunnel().await;
    let connect = tunnel.connect.clone();
    let upstream = tunnel.answer(answer::INTERCEPT, b"").await;
    let tls = client.await.unwrap().expect("the client trusts the sidecar's leaf");
    (tls, upstream, connect)
}

/// The leaf's common name and subject alternative names, as text.
fn leaf_names(tls: &TlsStream<TcpStream>) -> (String, Vec<String>) {
    let chain = tls.get_ref().1.peer_certificates().unwrap();
    assert_eq!(chain.len(), 2, "leaf and ca");
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let cn = leaf.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned();
    let sans = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => format!("dns:{dns}"),
            GeneralName::IPAddress(raw) => {
                let ip: IpAddr = match raw.len() {
                    4 => <[u8; 4]>::try_from(*raw).unwrap().into(),
                    _ => <[u8; 16]>::try_from(*raw).unwrap().into(),
                };
                format!("ip:{ip}")
            }
            other => format!("{other:?}"),
        })
        .collect();
    let (_, ca) = X509Certificate::from_der(&chain[1]).unwrap();
    assert!(ca.is_ca());
    let validity = leaf.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(lifetime, 25 * 3600, "an hour back, a day ahead");
    (cn, sans)
}

#[tokio::test]
async fn a_leaf_for_the_sni_and_plaintext_to_the_engine() {
    let mut engine = FakeEngine::start().await;
    let port = engine.port_arg();
    let sidecar = Sidecar::start(&["--http-egress-port", &port]).await;
    let name = ServerName::try_from("example.com").unwrap();
    let dst = "127.0.0.1:443".parse().unwrap();
    let (mut tls, mut upstream, connect) = handshake(&mut engine, &sidecar, dst, name).await;

    assert_eq!(connect.tls_sni.as_deref(), Some("example.com"));
    assert!(connect.tls);
    assert_eq!(leaf_names(&tls), ("example.com".to_owned(), vec!["dns:example.com".to_owned()]));
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"http/1.1".as_slice()), "only http/1.1");

    let request = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    tls.write_all(request).await.unwrap();
    let mut got = vec![0u8; request.len()];
    upstream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, request, "the engine reads plaintext");
    upstream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
    upstream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"HTTP/1.1 204 No Content\r\n\r\n");
}

#[tokio::test]
async fn without_sni_the_leaf_is_for_the_destination_ip_w8() {
    let mut engine = FakeEngine::start().await;
    let port = engine.port_arg();
    let sidecar = Sidecar::start(&["--http-egress-port", &port]).await;
    // A client dialling an address sends no SNI and checks the IP SAN.
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let dst = SocketAddr::new(ip, 8443);
    let (mut tls, mut upstream, connect) = handshake(&mut engine, &sidecar, dst, ip.into()).await;

    assert_eq!(connect.tls_sni, None);
    assert!(connect.tls, "the engine learns it was TLS even without a name");
    assert_eq!(leaf_names(&tls), ("127.0.0.1".to_owned(), vec!["ip:127.0.0.1".to_owned()]));
    tls.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    upstream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
}

#[tokio::test]
async fn a_client_that_distrusts_the_ca_fails_its_handshake_and_nothing_else() {
    let mut engine = FakeEngine::start().await;
    let port = engine.port_arg();
    let sidecar = Sidecar::start(&["--http-egress-port", &port]).await;
    let other = Sidecar::start(&[]).await;
    let app = sidecar.connect_to("127.0.0.1:443".parse().unwrap()).await;
    let connector = TlsConnector::from(client_config(&other, &[]));
    let name = ServerName::try_from("example.com").unwrap();
    let client = tokio::spawn(async move { connector.connect(name, app).await });
    let _upstream = engine.tunnel().await.answer(answer::INTERCEPT, b"").await;
    let err = client.await.unwrap().unwrap_err();
    // The other CA has the same name, so the chain is built and its signature fails.
    assert!(err.to_string().starts_with("invalid peer certificate"), "{err}");
    // The sidecar keeps serving.
    let name = ServerName::try_from("example.org").unwrap();
    let (tls, _, _) =
        handshake(&mut engine, &sidecar, "127.0.0.1:443".parse().unwrap(), name).await;
    assert_eq!(leaf_names(&tls).0, "example.org");
}
