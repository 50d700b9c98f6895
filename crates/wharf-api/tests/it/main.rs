//! wharf-api's one integration-test binary (tier 1): the v1 API of `http-api.md` driven
//! in-process against an engine over `FakeDocker` and `FakeControl`. No Docker, no traffic
//! beyond loopback.
//!
//! - `system`: health, list, events, metrics, the JSON 404/405 fallbacks, the bearer token,
//!   and the endpoints that answer 501 for now.
//! - `lifecycle`: status, start, wait, destroy, signal, labels, inactivity timeout, exec, logs,
//!   and their conflicts.
//! - `validation`: every bad input gets its 400 code (a data-driven table).
//! - `ports` and `proxy`: raw TCP upgrades and the HTTP proxy over a real loopback listener,
//!   with the fake sidecar routing the app port to a loopback server of the test.
//! - `props`: arbitrary bodies and ids never get a 5xx.

mod support;

mod lifecycle;
mod ports;
mod props;
mod proxy;
mod system;
mod validation;
