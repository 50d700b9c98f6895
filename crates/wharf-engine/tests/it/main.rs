//! wharf-engine's one integration-test binary (ripgrep-style: one link step).
//!
//! Tier 2, real Docker: `docker.rs`, through the `docker_test!` harness in `harness.rs`.
//! Compiled with `--features docker-tests` and run only when `WHARF_DOCKER_TESTS=1`:
//!
//! ```text
//! WHARF_DOCKER_TESTS=1 cargo test -p wharf-engine --features docker-tests --test it
//! ```
//!
//! Without either, one line on stderr says the Docker tests were skipped, and why.

#[cfg(feature = "docker-tests")]
#[macro_use]
mod harness;

#[cfg(feature = "docker-tests")]
mod docker;

/// Says, outside the test harness's output capture, that tier 2 was not compiled in.
#[cfg(not(feature = "docker-tests"))]
#[test]
fn docker_tests_not_compiled() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "wharf-engine: tier-2 Docker tests skipped: built without `--features docker-tests`"
    );
}
