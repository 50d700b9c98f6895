//! TLS termination for intercepted connections the engine answers with 200 (engine spec §3.5).
//!
//! The app's ClientHello has been peeked ([`crate::peek`]); the engine wants the plaintext. The
//! sidecar then plays the server: [`TlsTerminator::server_config`] gives a rustls config whose
//! certificate resolver mints a leaf for the ClientHello's server name or, when there is none,
//! for the destination IP as an IP SAN (W8: an `https` mapping on an IP or CIDR works without
//! SNI). Leaves are ECDSA P-256, valid from an hour ago for 24 hours, signed by the sidecar's
//! CA ([`InterceptionCa`]), sent as `[leaf, CA]`, and cached by name (cleared wholesale past
//! [`CACHE_LIMIT`] entries, re-minted once [`REMINT_AFTER`] old). ALPN offers only `http/1.1`,
//! since the engine serves HTTP/1.1 on the tunnel.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::ca::{self, CaError, InterceptionCa};

/// How many leaves are cached before the cache is cleared (proxy-everything's number).
pub const CACHE_LIMIT: usize = 512;
/// How long a leaf is valid, from when it is minted.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// A cached leaf older than this is minted afresh, so none is served close to expiry.
pub const REMINT_AFTER: Duration = Duration::from_secs(12 * 60 * 60);
/// How far back a leaf's validity starts, for clock skew.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// The one ALPN protocol offered.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// What a leaf certificate is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LeafName {
    /// A DNS name from the ClientHello, lowercase.
    Dns(String),
    /// The destination address, when the ClientHello named no server.
    Ip(IpAddr),
}

/// Mints and caches leaves, and builds per-connection server configs.
pub struct TlsTerminator {
    ca: Arc<InterceptionCa>,
    ca_der: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
    base: ServerConfig,
    cache: Mutex<HashMap<LeafName, Cached>>,
}

/// Why a leaf could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The name cannot go in a certificate.
    #[error("invalid certificate name {0:?}")]
    Name(String),
    /// rcgen failed to generate or sign.
    #[error("minting a leaf certificate")]
    Mint(#[source] rcgen::Error),
    /// No serial number (the random source failed).
    #[error(transparent)]
    Serial(#[from] CaError),
    /// rustls refused the key or the protocol versions.
    #[error("building the tls server")]
    Rustls(#[source] rustls::Error),
}

#[derive(Clone)]
struct Cached {
    minted: SystemTime,
    key: Arc<CertifiedKey>,
}

/// The resolver for one connection: the ClientHello's name, else the destination address.
#[derive(Debug)]
struct ConnResolver {
    terminator: Arc<TlsTerminator>,
    fallback: IpAddr,
}

// === impl LeafName ===

impl fmt::Display for LeafName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeafName::Dns(name) => f.write_str(name),
            LeafName::Ip(ip) => ip.fmt(f),
        }
    }
}

// === impl TlsTerminator ===

impl TlsTerminator {
    /// A terminator signing with `ca`.
    pub fn new(ca: Arc<InterceptionCa>) -> Result<TlsTerminator, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut base = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        base.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        let ca_der = ca.issuer().der().clone();
        Ok(TlsTerminator { ca, ca_der, provider, base, cache: Mutex::new(HashMap::new()) })
    }

    /// A server config for one connection to `dst`: leaves for the SNI, else for `dst`.
    pub fn server_config(self: &Arc<Self>, dst: IpAddr) -> Arc<ServerConfig> {
        let mut config = self.base.clone();
        config.cert_resolver =
            Arc::new(ConnResolver { terminator: Arc::clone(self), fallback: dst });
        Arc::new(config)
    }

    /// The leaf for `name` at `now`, from the cache or freshly minted.
    pub fn leaf(&self, name: &LeafName, now: SystemTime) -> Result<Arc<CertifiedKey>, TlsError> {
        if let Some(cached) = self.cache().get(name) {
            let age = now.duration_since(cached.minted).unwrap_or(Duration::ZERO);
            if age < REMINT_AFTER {
                return Ok(Arc::clone(&cached.key));
            }
        }
        let key = Arc::new(self.mint(name, now)?);
        let mut cache = self.cache();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(name.clone(), Cached { minted: now, key: Arc::clone(&key) });
        Ok(key)
    }

    /// How many leaves are cached.
    pub fn cached(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<LeafName, Cached>> {
        // Nothing panics while holding the lock, and a map of certificates stays consistent.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mint(&self, name: &LeafName, now: SystemTime) -> Result<CertifiedKey, TlsError> {
        let mut params = CertificateParams::default();
        let san = match name {
            LeafName::Dns(dns) => {
                SanType::DnsName(dns.clone().try_into().map_err(|_| TlsError::Name(dns.clone()))?)
            }
            LeafName::Ip(ip) => SanType::IpAddress(*ip),
        };
        params.subject_alt_names = vec![san];
        params.distinguished_name.push(DnType::CommonName, name.to_string());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + LEAF_LIFETIME).into();
        params.serial_number = Some(ca::random_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(TlsError::Mint)?;
        let cert = params.signed_by(&key, self.ca.issuer()).map_err(TlsError::Mint)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer =
            self.provider.key_provider.load_private_key(key_der).map_err(TlsError::Rustls)?;
        Ok(CertifiedKey::new(vec![cert.der().clone(), self.ca_der.clone()], signer))
    }
}

impl fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTerminator").field("cached", &self.cached()).finish_non_exhaustive()
    }
}

// === impl ConnResolver ===

impl ResolvesServerCert for ConnResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = match hello.server_name() {
            Some(sni) => LeafName::Dns(sni.to_ascii_lowercase()),
            None => LeafName::Ip(self.fallback),
        };
        match self.terminator.leaf(&name, SystemTime::now()) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(%name, error = %e, "no leaf certificate; aborting the handshake");
                None
            }
        }
    }
}

/// The base config's placeholder resolver; every connection replaces it.
#[derive(Debug)]
struct NoCert;

impl ResolvesServerCert for NoCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminator() -> Arc<TlsTerminator> {
        let ca = InterceptionCa::generate(SystemTime::now()).unwrap();
        Arc::new(TlsTerminator::new(Arc::new(ca)).unwrap())
    }

    #[test]
    fn leaves_are_cached_per_name_and_reminted_when_old() {
        let tls = terminator();
        let now = SystemTime::now();
        let name = LeafName::Dns("example.com".to_owned());
        let a = tls.leaf(&name, now).unwrap();
        let b = tls.leaf(&name, now + Duration::from_secs(60)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.cert.len(), 2, "leaf and ca");
        let ip = tls.leaf(&LeafName::Ip("192.0.2.7".parse().unwrap()), now).unwrap();
        assert!(!Arc::ptr_eq(&a, &ip));
        let later = tls.leaf(&name, now + REMINT_AFTER).unwrap();
        assert!(!Arc::ptr_eq(&a, &later));
        assert_eq!(tls.cached(), 2);
    }

    #[test]
    fn the_cache_is_cleared_past_its_limit() {
        let tls = terminator();
        let now = SystemTime::now();
        for i in 0..CACHE_LIMIT {
            tls.leaf(&LeafName::Dns(format!("h{i}.example")), now).unwrap();
        }
        assert_eq!(tls.cached(), CACHE_LIMIT);
        tls.leaf(&LeafName::Dns("one-more.example".to_owned()), now).unwrap();
        assert_eq!(tls.cached(), 1);
    }

    #[test]
    fn unusable_names_are_errors() {
        let err =
            terminator().leaf(&LeafName::Dns("caf\u{e9}.example".to_owned()), SystemTime::now());
        assert!(matches!(err, Err(TlsError::Name(_))), "{err:?}");
    }
}
