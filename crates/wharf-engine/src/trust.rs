//! Pure: making the app trust the interception CA (http-api.md, "Egress mappings").
//!
//! Before the app starts, the engine writes the CA to [`CA_FILE`] (the Container API's
//! promise), a bundle of the image's system roots plus the CA to [`BUNDLE_FILE`], and the CA
//! into the image's own system bundle when it has one. The environment points common TLS stacks
//! at them ([`TRUST_ENV`]) unless the user set those variables. The CA's private key never
//! leaves the sidecar.

use bytes::Bytes;
use wharf_wire::control::APP_CA_PATH;

/// Where the CA is written in the app.
pub const CA_FILE: &str = APP_CA_PATH;
/// System roots plus the CA.
pub const BUNDLE_FILE: &str = "/etc/cloudflare/certs/ca-bundle.crt";
/// Where images keep their system bundle (Debian/Ubuntu/Alpine, RHEL/Fedora, Alpine/BSD-style).
pub const SYSTEM_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];
/// Environment defaults that make OpenSSL, Node and Python's requests trust the CA.
pub const TRUST_ENV: [(&str, &str); 3] = [
    ("SSL_CERT_FILE", BUNDLE_FILE),
    ("NODE_EXTRA_CA_CERTS", CA_FILE),
    ("REQUESTS_CA_BUNDLE", BUNDLE_FILE),
];
/// The largest system bundle we read back (real ones are ~200 KiB).
pub const MAX_BUNDLE: usize = 8 << 20;

/// Why a trust archive could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CA archive: {0}")]
pub struct TrustError(String);

/// The tar to unpack at `/` in the app: the CA, the bundle, and the system bundle (at its own
/// path) extended with the CA when the image has one.
pub fn archive(ca_pem: &str, system: Option<(&str, &[u8])>) -> Result<Bytes, TrustError> {
    let ca = ensure_newline(ca_pem.as_bytes());
    let mut bundle = system.map(|(_, b)| ensure_newline(b)).unwrap_or_default();
    bundle.extend_from_slice(&ca);
    let mut files: Vec<(&str, Vec<u8>)> = vec![(CA_FILE, ca), (BUNDLE_FILE, bundle.clone())];
    if let Some((path, _)) = system {
        files.push((path, bundle));
    }
    let mut tar = tar::Builder::new(Vec::new());
    let err = |e: std::io::Error| TrustError(e.to_string());
    for dir in ["etc/", "etc/cloudflare/", "etc/cloudflare/certs/"] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_cksum();
        tar.append_data(&mut header, dir, std::io::empty()).map_err(err)?;
    }
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        tar.append_data(&mut header, path.trim_start_matches('/'), bytes.as_slice())
            .map_err(err)?;
    }
    tar.into_inner().map(Bytes::from).map_err(err)
}

/// The first regular file of a tar (what Docker's archive GET of one file answers), or `None`
/// when the path is a symlink or directory.
pub fn first_file(tar: &[u8]) -> Result<Option<Vec<u8>>, TrustError> {
    use std::io::Read as _;
    let err = |e: std::io::Error| TrustError(e.to_string());
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        if entry.header().entry_type() == tar::EntryType::Regular {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(err)?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

fn ensure_newline(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn files(tar: &[u8]) -> Vec<(String, String)> {
        let mut archive = tar::Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            out.push((name, text));
        }
        out
    }

    #[test]
    fn without_a_system_bundle_the_bundle_is_the_ca() {
        let got = files(&archive("CA", None).unwrap());
        assert!(got.contains(&(
            "etc/cloudflare/certs/cloudflare-containers-ca.crt".to_owned(),
            "CA\n".to_owned()
        )));
        assert!(
            got.contains(&("etc/cloudflare/certs/ca-bundle.crt".to_owned(), "CA\n".to_owned()))
        );
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_system_bundle_is_extended_in_place_and_copied() {
        let got = files(
            &archive("CA\n", Some(("/etc/ssl/certs/ca-certificates.crt", b"ROOTS"))).unwrap(),
        );
        assert!(
            got.contains(&(
                "etc/ssl/certs/ca-certificates.crt".to_owned(),
                "ROOTS\nCA\n".to_owned()
            ))
        );
        assert!(got.contains(&(
            "etc/cloudflare/certs/ca-bundle.crt".to_owned(),
            "ROOTS\nCA\n".to_owned()
        )));
    }

    #[test]
    fn first_file_reads_back_what_docker_sends() {
        let tar = archive("CA", None).unwrap();
        assert_eq!(first_file(&tar).unwrap(), Some(b"CA\n".to_vec()));
        assert!(first_file(b"not a tar").is_err() || first_file(b"not a tar").unwrap().is_none());
    }
}
