//! Unit tests for routing, auth and body framing; the served behaviour is in `tests/it`.

use super::*;

fn head(raw: &str) -> RequestHead {
    RequestHead::parse(raw.as_bytes()).unwrap().unwrap().0
}

#[test]
fn routes() {
    let check = |raw: &str, expected: Route| assert_eq!(Route::of(&head(raw)), expected, "{raw}");
    check("CONNECT anything HTTP/1.1\r\n\r\n", Route::Connect);
    check("CONNECT /egress HTTP/1.1\r\n\r\n", Route::Connect);
    check("PUT /egress HTTP/1.1\r\n\r\n", Route::PutEgress);
    check("GET /egress?pretty HTTP/1.1\r\n\r\n", Route::GetEgress);
    check("POST /egress HTTP/1.1\r\n\r\n", Route::MethodNotAllowed { allow: "GET, PUT" });
    check("GET /ca HTTP/1.1\r\n\r\n", Route::GetCa);
    check("HEAD /ca HTTP/1.1\r\n\r\n", Route::MethodNotAllowed { allow: "GET" });
    check("GET /ca/ HTTP/1.1\r\n\r\n", Route::NotFound);
    check("GET / HTTP/1.1\r\n\r\n", Route::NotFound);
    check("connect x HTTP/1.1\r\n\r\n", Route::NotFound);
}

#[test]
fn auth_statuses_depend_on_the_route() {
    let token: ControlToken = "abc".parse().unwrap();
    let status = |raw: &str| {
        let head = head(raw);
        authorize(Some(&token), &head, Route::of(&head)).map_err(|r| r.status)
    };
    assert_eq!(status("CONNECT x HTTP/1.1\r\n\r\n"), Err(407));
    assert_eq!(status("GET /nope HTTP/1.1\r\n\r\n"), Err(401));
    assert_eq!(status("PUT /egress HTTP/1.1\r\nAuthorization: Bearer abd\r\n\r\n"), Err(401));
    assert_eq!(status("PUT /egress HTTP/1.1\r\nAuthorization: Basic abc\r\n\r\n"), Err(401));
    assert_eq!(status("PUT /egress HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n"), Ok(()));
    assert_eq!(status("GET /ca HTTP/1.1\r\nProxy-Authorization: bearer abc\r\n\r\n"), Ok(()));
    assert_eq!(status("CONNECT x HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n"), Ok(()));
    let no_token = head("GET /ca HTTP/1.1\r\n\r\n");
    assert_eq!(authorize(None, &no_token, Route::GetCa), Ok(()));
}

#[test]
fn body_framing() {
    let len = |raw: &str, rest: &[u8]| body_len(&head(raw), rest).map_err(|r| r.status);
    assert_eq!(len("PUT /egress HTTP/1.1\r\nContent-Length: 12\r\n\r\n", b""), Ok(12));
    assert_eq!(len("PUT /egress HTTP/1.1\r\nContent-Length: x\r\n\r\n", b""), Err(400));
    assert_eq!(len("PUT /egress HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", b""), Err(413));
    assert_eq!(len("PUT /egress HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n", b""), Ok(1 << 20));
    assert_eq!(len("PUT /egress HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b""), Err(400));
    assert_eq!(len("PUT /egress HTTP/1.1\r\n\r\n", b"{}"), Err(400));
    assert_eq!(len("PUT /egress HTTP/1.1\r\n\r\n", b""), Ok(0));
}

#[test]
fn replies_encode_with_connection_close() {
    let plain = String::from_utf8(Reply::text(404, "not found").encode()).unwrap();
    assert_eq!(
        plain,
        "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nnot found"
    );
    let challenge = Reply::text(407, "x").with_header("Proxy-Authenticate", "Bearer").encode();
    let (head, used) = wharf_wire::head::ResponseHead::parse(&challenge).unwrap().unwrap();
    assert_eq!(head.status(), 407);
    assert_eq!(head.header("proxy-authenticate"), Some("Bearer"));
    assert_eq!(head.header("connection"), Some("close"));
    assert_eq!(&challenge[used..], b"x");
}
