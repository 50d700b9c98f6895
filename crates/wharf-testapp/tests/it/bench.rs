//! `/bytes`, `/bench` and `/bench-bulk` on loopback: the app benchmarks another app, itself,
//! and a port where nothing listens.

use std::net::SocketAddr;

use serde_json::Value;
use wharf_testapp::bench::{BulkReport, LatencyReport, MAX_CHUNK};

use crate::support::{Setup, closed_port, get};

/// The app on loopback; the setup keeps its hosts file (naming `upstream.test`) alive.
async fn app() -> (Setup, SocketAddr) {
    let setup = Setup::new("127.0.0.1 upstream.test\n");
    let addr = setup.start().await;
    (setup, addr)
}

#[tokio::test]
async fn bytes_serves_exactly_n_zeros() {
    let (_setup, addr) = app().await;
    let reply = get(addr, "/bytes?n=100", &[]).await;
    assert_eq!((reply.status.as_u16(), reply.body.len()), (200, 100));
    assert!(reply.body.bytes().all(|b| b == 0));
    assert_eq!(reply.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(get(addr, "/bytes?n=0", &[]).await.summary(), "200 ");
    let too_big = get(addr, &format!("/bytes?n={}", MAX_CHUNK + 1), &[]).await;
    assert_eq!(too_big.status.as_u16(), 400);
}

#[tokio::test]
async fn bench_measures_every_request_kept_alive_or_not() {
    let ((_a, client), (_b, upstream)) = (app().await, app().await);
    for keepalive in [true, false] {
        let path = format!(
            "/bench?url=http://upstream.test:{}/&n=25&concurrency=3&keepalive={keepalive}&samples=true",
            upstream.port()
        );
        let reply = get(client, &path, &[]).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
        let report: LatencyReport = serde_json::from_str(&reply.body).unwrap();
        assert_eq!((report.requests, report.errors, report.first_error), (25, 0, None));
        let samples = report.samples_us.unwrap();
        assert_eq!(samples.len(), 25);
        let s = report.summary;
        assert!(s.min_us <= s.p50_us && s.p50_us <= s.p99_us && s.p99_us <= s.max_us, "{s:?}");
        assert!(s.max_us as u64 <= report.wall_us, "{s:?} within {}", report.wall_us);
    }
}

#[tokio::test]
async fn bench_leaves_samples_out_unless_asked() {
    let (_setup, addr) = app().await;
    let path = format!("/bench?url=http://127.0.0.1:{}/&n=3&concurrency=8", addr.port());
    let report: Value = serde_json::from_str(&get(addr, &path, &[]).await.body).unwrap();
    assert_eq!(report["requests"], 3);
    assert_eq!(report["samples_us"], Value::Null);
}

#[tokio::test]
async fn bench_counts_failures() {
    let (_setup, addr) = app().await;
    let path = format!("/bench?url=http://127.0.0.1:{}/&n=4&keepalive=false", closed_port().await);
    let report: LatencyReport = serde_json::from_str(&get(addr, &path, &[]).await.body).unwrap();
    assert_eq!((report.requests, report.errors), (0, 4));
    assert!(report.first_error.unwrap().starts_with("connect to 127.0.0.1:"));
    // A non-2xx answer is a failure too.
    let missing = format!("/bench?url=http://127.0.0.1:{}/bytes&n=2", addr.port());
    let report: LatencyReport = serde_json::from_str(&get(addr, &missing, &[]).await.body).unwrap();
    assert_eq!((report.requests, report.errors), (0, 2));
    assert_eq!(report.first_error.as_deref(), Some("answered 400 Bad Request"));
}

#[tokio::test]
async fn bulk_fetches_every_byte_in_chunks() {
    let ((_a, client), (_b, upstream)) = (app().await, app().await);
    let total = 2 * MAX_CHUNK + 12_345;
    let path = format!("/bench-bulk?url=http://127.0.0.1:{}/bytes&bytes={total}", upstream.port());
    let reply = get(client, &path, &[]).await;
    let report: BulkReport = serde_json::from_str(&reply.body).unwrap();
    assert_eq!((report.bytes, report.requests, report.error), (total, 3, None));
    assert!(report.bytes_per_sec > 0.0);
}

#[tokio::test]
async fn bulk_reports_where_it_stopped() {
    let (_setup, addr) = app().await;
    // `/` answers 12 bytes, not the chunk asked for.
    let path = format!("/bench-bulk?url=http://127.0.0.1:{}/&bytes=1000", addr.port());
    let report: BulkReport = serde_json::from_str(&get(addr, &path, &[]).await.body).unwrap();
    assert_eq!(report.bytes, 0);
    assert_eq!(report.error.as_deref(), Some("expected 1000 body bytes, got 12"));
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let (_setup, addr) = app().await;
    for (path, message) in [
        ("/bench?n=1", "url is required"),
        ("/bench?url=https://x/&n=1", r#"url "https://x/" is not http://"#),
        ("/bench?url=http://127.0.0.1:1/&n=0", r#"n must be a number from 1 to 10000000, got "0""#),
        (
            "/bench?url=http://127.0.0.1:1/&n=1&keepalive=yes",
            r#"keepalive must be true or false, got "yes""#,
        ),
        ("/bench-bulk?url=http://127.0.0.1:1/bytes", "bytes is required"),
        ("/bytes", "n is required"),
    ] {
        assert_eq!(get(addr, path, &[]).await.summary(), format!("400 {message}"), "{path}");
    }
}
