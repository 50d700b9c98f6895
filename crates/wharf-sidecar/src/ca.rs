//! The interception CA: generated at start, written to `<ca-dir>`, kept in memory for minting.
//!
//! Engine spec §3.5: ECDSA P-256, valid from an hour ago for 30 days, a CA that may sign
//! certificates and CRLs. Each sidecar start makes a fresh one. The engine reads the certificate
//! with `GET /ca` and copies it into the app container; the key never leaves the sidecar.

use std::fmt;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};

/// The CA certificate's common name.
pub const CA_COMMON_NAME: &str = "wharf interception CA";
/// The certificate's file name inside `<ca-dir>`, served by `GET /ca`.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The private key's file name inside `<ca-dir>`.
pub const CA_KEY_FILE: &str = "ca.key";

/// How far back the validity starts, to tolerate clock skew between sidecar and clients.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// How long the CA stays valid.
const LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The interception CA: certificate plus signing key.
///
/// `Debug` shows the certificate but not the key.
pub struct InterceptionCa {
    cert_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// Why the CA could not be made or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The system random source failed.
    #[error("reading random bytes for the ca serial number: {0}")]
    Random(getrandom::Error),
    /// rcgen refused to generate the key or certificate.
    #[error("generating the interception ca")]
    Generate(#[source] rcgen::Error),
    /// A file or directory could not be written.
    #[error("writing {path}")]
    Write {
        /// What was being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

// === impl InterceptionCa ===

impl InterceptionCa {
    /// Generates a fresh CA whose validity is centred on `now`.
    pub fn generate(now: SystemTime) -> Result<InterceptionCa, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, CA_COMMON_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + LIFETIME).into();
        params.serial_number = Some(random_serial()?);
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(CaError::Generate)?;
        Ok(InterceptionCa { cert_pem: issuer.pem(), issuer })
    }

    /// The certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The issuer that signs leaf certificates (for TLS termination).
    pub fn issuer(&self) -> &CertifiedIssuer<'static, KeyPair> {
        &self.issuer
    }

    /// Writes `ca.key` (0600) and then `ca.crt` (0644) into `dir`, creating it.
    ///
    /// The key goes first so that a reader who sees the certificate can rely on the key being
    /// there. Each file is written under a temporary name and renamed, so `GET /ca` never serves
    /// half a certificate, and the key is never readable by others, even for a moment.
    pub fn write_to(&self, dir: &Path) -> Result<(), CaError> {
        fs::create_dir_all(dir)
            .map_err(|source| CaError::Write { path: dir.to_owned(), source })?;
        let key_pem = self.issuer.key().serialize_pem();
        write_atomically(dir, CA_KEY_FILE, key_pem.as_bytes(), 0o600)?;
        write_atomically(dir, CA_CERT_FILE, self.cert_pem.as_bytes(), 0o644)
    }
}

impl fmt::Debug for InterceptionCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterceptionCa").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// Sixteen random bytes, positive as RFC 5280 requires.
pub(crate) fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(CaError::Random)?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

fn write_atomically(dir: &Path, name: &str, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> io::Result<()> {
        // A leftover from an interrupted run may have other permissions; start afresh.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        // The umask may have narrowed `mode`; make it exact.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|source| CaError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_both_files_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("nested/ca");
        let ca = InterceptionCa::generate(SystemTime::now()).unwrap();
        ca.write_to(&ca_dir).unwrap();
        // Writing twice (a restarted container keeps its filesystem) replaces both files.
        ca.write_to(&ca_dir).unwrap();

        let mode = |name: &str| fs::metadata(ca_dir.join(name)).unwrap().permissions().mode();
        assert_eq!(mode(CA_CERT_FILE) & 0o777, 0o644);
        assert_eq!(mode(CA_KEY_FILE) & 0o777, 0o600);
        let cert = fs::read_to_string(ca_dir.join(CA_CERT_FILE)).unwrap();
        assert_eq!(cert, ca.cert_pem());
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = fs::read_to_string(ca_dir.join(CA_KEY_FILE)).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(fs::read_dir(&ca_dir).unwrap().count(), 2, "no temporary files are left");
    }

    #[test]
    fn debug_hides_the_key() {
        let ca = InterceptionCa::generate(SystemTime::now()).unwrap();
        let shown = format!("{ca:?}");
        assert!(shown.contains("BEGIN CERTIFICATE"));
        assert!(!shown.contains("PRIVATE KEY"));
    }
}
