//! The app that wharf's container tests run: an HTTP server on :8080 that probes the container
//! from the inside (files, PID namespace, environment) and dials out through the egress sidecar.
//!
//! # Brief overview
//!
//! * [`config::Config`] is read once from the environment (`WS_ENABLED`, `TCP_PORT`, the CA
//!   files, …) through [`config::Strings`], so tests build it from a map instead.
//! * [`server::serve`] accepts HTTP/1.1 connections and hands each request to
//!   [`routes::handle`], which dispatches on the path to [`files`], [`proc_info`], [`fetch`],
//!   [`tcp_probe`] and [`ws`].
//! * Everything that dials out goes through [`dial::Dialer`]: [`target`] parses the
//!   `host[:port][/path]` the tests send, [`resolve::Resolver`] turns names into addresses without
//!   glibc (`/etc/hosts`, then DNS over UDP with [`wharf_wire::dns`]), and [`tls`] wraps the
//!   stream in rustls trusting only the CA files the container was given.
//! * [`probes`] holds the leak-probe routes (`/dns-query`, `/udp`, `/tcp-greeting`, `/connect`,
//!   `/resolve`): one bare exchange each, reported with a status that tells the failures apart.
//!   [`dns_client`] sends their DNS queries (and the resolver's).
//! * [`mod@bench`] is the load generator and bulk source of `wharf bench egress` (`/bench`,
//!   `/bench-bulk`, `/bytes`), so every path it compares runs the same client code.
//! * [`roles::Roles`] binds and serves the optional fake-internet servers that run next to the
//!   HTTP server: [`tcp_echo`], [`udp_echo`], [`greeter`] (server speaks first, [`lines`] reads
//!   its lines) and [`dns_stub`], an authoritative stub answering from a [`zone::Zone`] parsed
//!   from `DNS_RECORDS`.
//! * [`signals`] turns SIGTERM, SIGINT and SIGHUP into the exit codes a default signal death
//!   would give, since the app runs as PID 1.
//!
//! The binary is static and runs `FROM scratch`, so nothing here may call `getaddrinfo`: names
//! are only ever resolved by [`resolve`]. The library exists so `tests/it` can run the server
//! in-process on loopback.
//!
//! ```
//! use wharf_testapp::target::{HttpTarget, Scheme};
//! use wharf_testapp::zone::{Lookup, Zone};
//! use wharf_wire::dns::rtype;
//!
//! let target = HttpTarget::parse("google.com/hello/world", Scheme::Http).unwrap();
//! assert_eq!(target.path(), "/hello/world");
//! assert_eq!(target.authority().host_header(Scheme::Http), "google.com");
//!
//! let zone: Zone = "example.com=10.201.0.10,*.example.com=10.201.0.11".parse().unwrap();
//! let ip = "10.201.0.11".parse().unwrap();
//! assert_eq!(zone.lookup("WWW.example.com", rtype::A), Lookup::Found(vec![ip]));
//! assert_eq!(zone.lookup("example.com", rtype::AAAA), Lookup::Found(vec![]));
//! assert_eq!(zone.lookup("example.org", rtype::A), Lookup::NxDomain);
//! ```

pub mod bench;
pub mod config;
pub mod dial;
pub mod dns_client;
pub mod dns_stub;
pub mod errors;
pub mod fetch;
pub mod files;
pub mod greeter;
pub mod lines;
pub mod ping;
pub mod probes;
pub mod proc_info;
pub mod query;
pub mod resolve;
pub mod roles;
pub mod routes;
pub mod server;
pub mod signals;
pub mod target;
pub mod tcp_echo;
pub mod tcp_probe;
pub mod tls;
pub mod udp_echo;
pub mod ws;
pub mod zone;
