//! Tier-1 tests for wharf-testapp: the server in-process on loopback, with local upstreams and a
//! stub DNS server. Nothing leaves 127.0.0.1.

mod bench;
mod connect;
mod dns_stub;
mod greeter;
mod intercept;
mod ping;
mod resolve;
mod roles;
mod routes;
mod support;
mod tcp_echo;
mod udp;
mod ws;
