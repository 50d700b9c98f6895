//! `GET /ca` serves the interception CA that start-up wrote, and it is a proper CA.

use std::os::unix::fs::PermissionsExt as _;
use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::pem::parse_x509_pem;

use crate::Sidecar;

#[tokio::test]
async fn get_ca_serves_a_p256_ca_certificate() {
    let sidecar = Sidecar::start(&[]).await;
    let response = sidecar.request("GET", "/ca", &[], "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.head.header("content-type"), Some("application/x-pem-file"));

    let (rest, pem) = parse_x509_pem(&response.body).unwrap();
    assert!(rest.iter().all(u8::is_ascii_whitespace), "one certificate");
    let cert = pem.parse_x509().unwrap();
    assert!(cert.is_ca());
    let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap();
    assert_eq!(cn, "wharf interception CA");
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
    cert.verify_signature(None).unwrap();
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    assert!(!usage.digital_signature());
    // id-ecPublicKey with the prime256v1 curve.
    let spki = &cert.public_key().algorithm;
    assert_eq!(spki.algorithm.to_id_string(), "1.2.840.10045.2.1");
    let curve = spki.parameters.as_ref().unwrap().as_oid().unwrap();
    assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7");

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    assert!((not_before - (now - 3600)).abs() < 120, "valid from an hour ago");
    assert!((not_after - (now + 30 * 24 * 3600)).abs() < 120, "valid for 30 days");

    let dir = sidecar.ca_dir.path();
    assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), response.body);
    let mode = |name: &str| std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("ca.crt"), mode("ca.key")), (0o644, 0o600));
}

#[tokio::test]
async fn get_ca_is_404_without_tls_intercept() {
    let sidecar = Sidecar::start_without_ca(&[]).await;
    let response = sidecar.request("GET", "/ca", &[], "").await;
    assert_eq!(response.status(), 404);
    assert!(!sidecar.ca_dir.path().join("ca.key").exists());
}

#[tokio::test]
async fn each_start_makes_a_new_ca() {
    let (a, b) = (Sidecar::start(&[]).await, Sidecar::start(&[]).await);
    let (a, b) = (a.request("GET", "/ca", &[], "").await, b.request("GET", "/ca", &[], "").await);
    assert_ne!(a.body, b.body);
}
