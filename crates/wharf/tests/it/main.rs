//! wharf's one integration-test binary (tier 2): the daemon, its API and the `wharf` binary
//! against the real Docker daemon, with the real sidecar and test-app images.
//!
//! Built with `--features docker-tests` and run with `WHARF_DOCKER_TESTS=1`:
//!
//! ```text
//! WHARF_DOCKER_TESTS=1 cargo test -p wharf --features docker-tests --test it
//! ```
//!
//! Without either, every test returns at once and one line on stderr says they were skipped
//! and how to run them. Every test runs its own daemon (its own engine name and state
//! directory), so they run in parallel without meeting; `harness::Reaper` removes each
//! engine's containers even when a test fails.
//!
//! * `api`: health, status, list, start refusals, the 400 error format, events, metrics.
//! * `lifecycle`: wait, destroy, exits, restarts, signals, labels, W1, inactivity timeout.
//! * `traffic`: raw ports, the HTTP proxy and WebSockets, exec, the default env, logs.
//! * `cli`: the `wharf` binary: serve, adoption after SIGKILL, gc, client verbs,
//!   port-forward.
//! * `egress`: egress mappings on the fake internet (spec §5.3 #29–#35, W8–W11), the CA, the
//!   egress log and `why`.
//! * `leak`: with the internet off, nothing leaves the app but by the policy; each probe has
//!   a positive control with the internet on.
//! * `warm`: sidecars kept across destroy and start, checked before reuse (W2).
//! * `fakenet`: the fake internet (a network of our own, a stub DNS) and the handlers.

#[macro_use]
mod harness;

mod api;
mod cli;
mod egress;
mod fakenet;
mod leak;
mod lifecycle;
mod traffic;
mod warm;
