//! Wire formats shared by the wharf engine (host side) and the wharf sidecar (in-container side).
//!
//! # Brief overview
//!
//! * [`head`] parses and formats HTTP/1.1 request and response heads, sans-IO: feed it the bytes
//!   you have and it answers `Ok(None)` until a whole head has arrived.
//! * [`connect`] gives those heads meaning for the tunnels: the ingress `CONNECT` that the engine
//!   sends to the sidecar (`X-Dst-Addr`), and the egress `CONNECT` that the sidecar sends to the
//!   engine (`X-Tls-Sni`, `X-Hostname`). It also holds the per-sidecar token header.
//! * [`control`] is the JSON body of the sidecar's `PUT /egress`.
//! * [`sni`] reads the server name and ALPN list out of a TLS ClientHello, sans-IO, so the
//!   sidecar can name a connection before deciding what to do with it.
//!
//! The crate does no I/O, reads no clock and has no runtime, so every codec is tested by feeding
//! it every prefix of a captured input.
//!
//! ```
//! use wharf_wire::connect::IngressConnect;
//! use wharf_wire::head::RequestHead;
//!
//! let dst = "127.0.0.1:8080".parse().unwrap();
//! let bytes = IngressConnect { dst, token: Some("t0k") }.encode();
//! let (head, used) = RequestHead::parse(&bytes).unwrap().unwrap();
//! assert_eq!(used, bytes.len());
//! assert_eq!(head.method(), "CONNECT");
//! assert_eq!(head.header("x-dst-addr"), Some("127.0.0.1:8080"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connect;
pub mod control;
pub mod dns;
pub mod head;
pub mod sni;

/// The buffer, per direction, of every byte relay on a tunnel (the sidecar's, the engine's and
/// the API's `copy_bidirectional_with_sizes`). tokio's default is 8 KiB: relaying in 64 KiB chunks
/// takes about a quarter less CPU per MiB and an eighth of the wakeups (docs/benchmarks.md), for
/// 128 KiB per relay.
pub const RELAY_BUFFER_BYTES: usize = 64 * 1024;
