//! The `CONNECT` tunnels between host and sidecar, and the per-sidecar token that guards them.
//!
//! Two tunnels share one shape (proxy-everything's wire format, engine spec §3.3–3.4):
//!
//! * **Ingress**, engine → sidecar control port: `CONNECT <dst>` with `X-Dst-Addr: <ip>:<port>`.
//!   The sidecar dials `X-Dst-Addr` inside the shared network namespace. It answers 200 and pumps
//!   bytes, or 400 when nothing listens there.
//! * **Egress**, sidecar → engine egress listener: `CONNECT <orig dst>` with `X-Tls-Sni` or
//!   `X-Hostname` when the sidecar learned a name from the first bytes.
//!
//! wharf adds a token (weakness W5/W6): with the sidecar's `--control-token` flag every request
//! must carry `Proxy-Authorization: Bearer <token>` (tunnels) or `Authorization: Bearer <token>`
//! (control requests). Without the flag no token is asked for, as in proxy-everything.

use std::net::SocketAddr;

use crate::head::RequestHead;

/// Header naming the address the sidecar must dial for an ingress tunnel.
pub const X_DST_ADDR: &str = "X-Dst-Addr";
/// Header carrying the TLS server name the sidecar peeked from a ClientHello.
pub const X_TLS_SNI: &str = "X-Tls-Sni";
/// Header carrying the HTTP `Host` the sidecar peeked from a plain-text request, on any port
/// (W10).
pub const X_HOSTNAME: &str = "X-Hostname";
/// Header (`1`) saying the app's first bytes were a TLS ClientHello, with or without SNI; lets
/// the engine intercept TLS to an IP mapping that has no name (W8).
pub const X_TLS: &str = "X-Tls";

/// How the engine answers an egress `CONNECT`, and what the sidecar then does.
pub mod answer {
    /// Intercept: when the app spoke TLS, the sidecar terminates it (with a leaf for the SNI,
    /// or for the destination IP) and pumps plaintext; otherwise it pumps raw bytes. The engine
    /// then serves HTTP on the tunnel.
    pub const INTERCEPT: u16 = 200;
    /// Raw: pump bytes unchanged (a `tcp` handler, or pass-through to the destination).
    pub const RAW: u16 = 202;
    /// Refused: the sidecar resets the app's connection.
    pub const REFUSE: u16 = 403;
    /// The token is missing or wrong.
    pub const UNAUTHORIZED: u16 = 407;
}

/// Why an ingress `CONNECT` cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The request is not a `CONNECT`.
    #[error("expected CONNECT, got {0}")]
    NotConnect(String),
    /// `X-Dst-Addr` is absent.
    #[error("missing X-Dst-Addr header")]
    MissingDst,
    /// `X-Dst-Addr` is not `<ip literal>:<port>`.
    #[error("X-Dst-Addr must be <ip>:<port>, got {0:?}")]
    BadDst(String),
}

/// The ingress `CONNECT` that the engine sends to the sidecar's control port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressConnect<'a> {
    /// Where to dial inside the network namespace, e.g. `127.0.0.1:8080`.
    pub dst: SocketAddr,
    /// The sidecar's token, when it runs with `--control-token`.
    pub token: Option<&'a str>,
}

/// The egress `CONNECT` that the sidecar sends to the engine for an intercepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConnect {
    /// The original destination the app dialled.
    pub dst: SocketAddr,
    /// The app-side source address, for logs.
    pub src: SocketAddr,
    /// The ClientHello server name, when one was sent.
    pub tls_sni: Option<String>,
    /// The HTTP `Host`, when plain HTTP was seen and no SNI.
    pub hostname: Option<String>,
    /// The app's first bytes were a TLS ClientHello.
    pub tls: bool,
    /// The sidecar's token, when it runs with `--control-token`.
    pub token: Option<String>,
}

// === impl IngressConnect ===

impl IngressConnect<'_> {
    /// Encodes the request head.
    pub fn encode(&self) -> Vec<u8> {
        let dst = self.dst.to_string();
        let mut head = RequestHead::new("CONNECT", &dst)
            .with_header("Host", &dst)
            .with_header(X_DST_ADDR, &dst);
        if let Some(token) = self.token {
            head = head.with_header("Proxy-Authorization", &format!("Bearer {token}"));
        }
        head.encode()
    }

    /// Reads the destination out of a received `CONNECT` head.
    pub fn dst_of(head: &RequestHead) -> Result<SocketAddr, ConnectError> {
        if !head.method().eq_ignore_ascii_case("CONNECT") {
            return Err(ConnectError::NotConnect(head.method().to_owned()));
        }
        let raw = head.header(X_DST_ADDR).ok_or(ConnectError::MissingDst)?;
        raw.trim().parse().map_err(|_| ConnectError::BadDst(raw.to_owned()))
    }
}

// === impl EgressConnect ===

impl EgressConnect {
    /// Reads an egress `CONNECT` head as the engine receives it. The token is not checked here.
    pub fn from_head(head: &RequestHead) -> Result<EgressConnect, ConnectError> {
        if !head.method().eq_ignore_ascii_case("CONNECT") {
            return Err(ConnectError::NotConnect(head.method().to_owned()));
        }
        let dst = head
            .target()
            .trim()
            .parse()
            .map_err(|_| ConnectError::BadDst(head.target().to_owned()))?;
        let src = head
            .header("x-forwarded-for")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let text = |name: &str| {
            head.header(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
        };
        Ok(EgressConnect {
            dst,
            src,
            tls_sni: text(X_TLS_SNI),
            hostname: text(X_HOSTNAME),
            tls: head.header(X_TLS).is_some_and(|v| v.trim() == "1"),
            token: bearer_token(head).map(str::to_owned),
        })
    }

    /// Encodes the request head in proxy-everything's layout.
    pub fn encode(&self) -> Vec<u8> {
        let dst = self.dst.to_string();
        let src = self.src.to_string();
        let mut head = RequestHead::new("CONNECT", &dst)
            .with_header("Host", &dst)
            .with_header("User-Agent", &format!("wharf-sidecar/{src}"))
            .with_header("Connection", "close")
            .with_header("X-Forwarded-For", &src)
            .with_header("X-Proto", "tcp");
        if let Some(sni) = &self.tls_sni {
            head = head.with_header(X_TLS_SNI, sni);
        }
        if let Some(host) = &self.hostname {
            head = head.with_header(X_HOSTNAME, host);
        }
        if self.tls {
            head = head.with_header(X_TLS, "1");
        }
        if let Some(token) = &self.token {
            head = head.with_header("Proxy-Authorization", &format!("Bearer {token}"));
        }
        head.encode()
    }
}

/// The bearer token a request carries, from `Proxy-Authorization` or `Authorization`.
pub fn bearer_token(head: &RequestHead) -> Option<&str> {
    ["proxy-authorization", "authorization"].iter().filter_map(|name| head.header(name)).find_map(
        |value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        },
    )
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
pub fn token_matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn ingress_encodes_like_proxy_everything() {
        let bytes = IngressConnect { dst: "127.0.0.1:8080".parse().unwrap(), token: None }.encode();
        expect![[r#"
            "CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Dst-Addr: 127.0.0.1:8080\r\n\r\n"
        "#]]
        .assert_debug_eq(&String::from_utf8(bytes).unwrap());
    }

    #[test]
    fn ingress_dst_and_token_are_read_back() {
        let bytes =
            IngressConnect { dst: "[::1]:9000".parse().unwrap(), token: Some("s3cret") }.encode();
        let (head, _) = RequestHead::parse(&bytes).unwrap().unwrap();
        assert_eq!(IngressConnect::dst_of(&head), Ok("[::1]:9000".parse().unwrap()));
        assert_eq!(bearer_token(&head), Some("s3cret"));
    }

    #[test]
    fn ingress_rejects_bad_destinations() {
        let check = |raw: &str| {
            let (head, _) = RequestHead::parse(raw.as_bytes()).unwrap().unwrap();
            IngressConnect::dst_of(&head)
        };
        assert_eq!(check("CONNECT x HTTP/1.1\r\n\r\n"), Err(ConnectError::MissingDst));
        assert!(matches!(
            check("CONNECT x HTTP/1.1\r\nX-Dst-Addr: localhost:80\r\n\r\n"),
            Err(ConnectError::BadDst(_))
        ));
        assert!(matches!(
            check("GET / HTTP/1.1\r\nX-Dst-Addr: 127.0.0.1:80\r\n\r\n"),
            Err(ConnectError::NotConnect(_))
        ));
    }

    #[test]
    fn egress_carries_names() {
        let bytes = EgressConnect {
            dst: "11.0.0.1:443".parse().unwrap(),
            src: "172.17.0.2:5000".parse().unwrap(),
            tls_sni: Some("example.com".to_owned()),
            hostname: None,
            tls: true,
            token: Some("t".to_owned()),
        }
        .encode();
        let (head, _) = RequestHead::parse(&bytes).unwrap().unwrap();
        assert_eq!(head.target(), "11.0.0.1:443");
        assert_eq!(head.header(X_TLS_SNI), Some("example.com"));
        assert_eq!(head.header(X_HOSTNAME), None);
        assert_eq!(bearer_token(&head), Some("t"));
        let back = EgressConnect::from_head(&head).unwrap();
        assert_eq!(back.dst, "11.0.0.1:443".parse().unwrap());
        assert_eq!(back.src, "172.17.0.2:5000".parse().unwrap());
        assert_eq!(
            (back.tls_sni.as_deref(), back.tls, back.token.as_deref()),
            (Some("example.com"), true, Some("t"))
        );
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", Some("abc")));
        assert!(!token_matches("abc", Some("abd")));
        assert!(!token_matches("abc", Some("ab")));
        assert!(!token_matches("abc", Some("abcd")));
        assert!(!token_matches("abc", None));
    }
}
