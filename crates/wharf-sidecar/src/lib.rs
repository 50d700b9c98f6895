//! wharf's egress sidecar: owns the app container's network namespace and serves its control port.
//!
//! # Brief overview
//!
//! The binary (`main.rs`) parses a [`config::Config`], then [`startup::start`] runs the start
//! sequence and returns a [`startup::Sidecar`], which `serve`s until a signal:
//!
//! * [`gateway`] finds the egress gateway: `--gateway-ip`, else `host.docker.internal` from
//!   `/etc/hosts`, parsed by the pure [`hosts`] (no `getaddrinfo`: the binary is static).
//! * [`ca`] generates the interception CA ([`ca::InterceptionCa`]) and writes it to `--ca-dir`.
//! * [`egress_state`] holds the [`egress_state::EgressState`] that `PUT /egress` replaces
//!   atomically and that interception reads for every new connection ([`egress_state::Egress`]).
//! * [`intercept`] is the seam for traffic interception: a trait [`intercept::Interception`]
//!   ([`intercept::NetlinkInterception`] in the image; [`intercept::NoInterception`] in tests) whose success yields the
//!   [`intercept::Intercepting`] proof that the control server needs before it accepts anything.
//! * [`control`] is the `:39001` server: accept loop, request heads (`wharf_wire::head`), the
//!   control token, `PUT`/`GET /egress` (which drives [`intercept::Interception::set_internet`])
//!   and `GET /ca`; [`ingress`] serves its `CONNECT` tunnels.
//! * [`listen`] binds what interception delivers to: the egress listeners and the DNS sockets.
//! * [`egress`] is the traffic path for intercepted TCP: [`orig_dst`] (kernel or mock), [`peek`]
//!   (TLS server name via `wharf_wire::sni`, HTTP `Host`, or silence), a `CONNECT` to the
//!   engine from a [`marked`] socket, then [`tls`] termination, a raw pump, or a reset.
//! * [`dns`] answers the app's DNS by the allow-list (`wharf_policy`), forwarding upstream
//!   ([`resolv`] finds it) while the internet is on, and posts a [`dns::log`] to the engine.
//! * `accept` (private) holds what the accept loops share: the shutdown signal and the error backoff.
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//! use std::time::SystemTime;
//!
//! use clap::Parser as _;
//! use wharf_sidecar::config::Config;
//! use wharf_sidecar::intercept::NoInterception;
//! use wharf_sidecar::orig_dst::KernelOrigDst;
//! use wharf_sidecar::startup::{self, StartEnv};
//!
//! # async fn example() -> Result<(), startup::StartError> {
//! let config = Config::parse_from(["wharf-sidecar", "--gateway-ip", "172.17.0.1"]);
//! let env = StartEnv {
//!     hosts_path: Path::new("/etc/hosts"),
//!     resolv_conf_path: Path::new("/etc/resolv.conf"),
//!     interception: Arc::new(NoInterception),
//!     orig_dst: Arc::new(KernelOrigDst),
//!     now: SystemTime::now(),
//! };
//! let sidecar = startup::start(&config, env).await?;
//! sidecar.serve(std::future::pending()).await;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod accept;
pub mod ca;
pub mod config;
pub mod control;
pub mod dns;
pub mod egress;
pub mod egress_state;
pub mod gateway;
pub mod hosts;
pub mod ingress;
pub mod intercept;
pub mod listen;
pub mod marked;
pub mod orig_dst;
pub mod peek;
pub mod relay;
pub mod resolv;
pub mod startup;
pub mod tls;
