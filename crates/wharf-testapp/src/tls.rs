//! Outbound TLS with rustls (ring), trusting only the CA files the container was given.
//!
//! No public roots: the tests never reach the internet, and an HTTPS fetch that succeeds proves
//! the sidecar's interception CA was injected and trusted. The files are read at every
//! connection because wharf may inject the CA after the app has started (`setEgressHttps` on a
//! running container).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::{debug, warn};

use crate::target::Host;

/// Why a TLS connection could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the configuration.
    #[error("tls configuration")]
    Config(#[source] rustls::Error),
    /// The handshake failed (including certificate verification).
    #[error("tls handshake with {host}")]
    Handshake {
        /// The server name verified.
        host: String,
        /// The cause.
        source: io::Error,
    },
}

/// Trust anchors loaded from PEM files.
#[derive(Debug, Clone)]
pub struct Roots {
    store: RootCertStore,
}

// === impl Roots ===

impl Roots {
    /// Loads every certificate in `files`. A missing file is skipped quietly (the injected CA
    /// may not be there yet); an unreadable or malformed one is skipped with a warning.
    pub async fn load(files: &[PathBuf]) -> Roots {
        let mut store = RootCertStore::empty();
        for path in files {
            match tokio::fs::read(path).await {
                Ok(pem) => add_pem(&mut store, &pem, path),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    debug!(path = %path.display(), "no CA file")
                }
                Err(err) => warn!(path = %path.display(), error = %err, "cannot read CA file"),
            }
        }
        Roots { store }
    }

    /// How many certificates are trusted.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether nothing is trusted (every handshake will fail).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// A client configuration trusting these roots, offering `http/1.1` by ALPN.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(self.store.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Performs the client handshake on `stream`, sending SNI for names and verifying `host`.
pub async fn connect(
    stream: TcpStream,
    host: &Host,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let handshake_err = |source| TlsError::Handshake { host: host.to_string(), source };
    let name = server_name(host).map_err(handshake_err)?;
    TlsConnector::from(config).connect(name, stream).await.map_err(handshake_err)
}

fn server_name(host: &Host) -> io::Result<ServerName<'static>> {
    match host {
        Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        Host::Name(name) => ServerName::try_from(name.clone())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err)),
    }
}

fn add_pem(store: &mut RootCertStore, pem: &[u8], path: &std::path::Path) {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        match cert.map(|der| store.add(der)) {
            Ok(Ok(())) => added += 1,
            Ok(Err(err)) => {
                warn!(path = %path.display(), error = %err, "skipping a CA certificate")
            }
            Err(err) => warn!(path = %path.display(), error = %err, "malformed PEM in CA file"),
        }
    }
    debug!(path = %path.display(), added, "loaded CA file");
}
