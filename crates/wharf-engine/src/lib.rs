//! The wharf container engine: the Container API (start, wait, destroy, signal, labels,
//! timeouts, exec, ports) over the real Docker Engine API, with an egress sidecar owning each
//! app container's network namespace.
//!
//! # Brief overview
//!
//! * [`Engine`] is the entry point. It holds one actor per container slot
//!   (`instance`), which runs that slot's mutating calls in arrival order.
//! * [`docker::DockerApi`] is the narrow boundary to Docker:
//!   [`docker::bollard::BollardDocker`] for real, [`docker::fake::FakeDocker`] for tests.
//! * [`sidecar::SidecarControl`] talks to a sidecar's control port (readiness, ingress).
//! * [`spec`] builds every create body (pure), [`labels`] the ownership labels that
//!   [`gc`] and adoption read back, [`params`] validates inputs, [`lifecycle`] is the status
//!   enum.
//! * [`images`] builds the sidecar and test-app images offline, from embedded binaries.
//!
//! ```
//! use wharf_engine::lifecycle::Status;
//! use wharf_engine::params::ContainerId;
//!
//! let id = ContainerId::new("web-1").unwrap();
//! assert_eq!(id.as_str(), "web-1");
//! assert!(Status::Empty.can_start());
//! ```
#![warn(missing_docs)]

mod adopt;
mod config;
pub mod docker;
pub mod egress;
mod engine;
mod error;
pub mod events;
pub mod gc;
pub mod images;
mod instance;
pub mod io_util;
pub mod labels;
pub mod lifecycle;
pub mod lock;
pub mod metrics;
pub mod params;
pub mod persist;
mod pool;
pub mod sidecar;
pub mod spec;
#[cfg(test)]
mod testing;
pub mod trust;

pub use config::{EngineConfig, EngineName};
pub use engine::{ContainerView, Engine, Health};
pub use error::Error;
pub use instance::ExecOutput;
pub use instance::{ActivityGuard, Snapshot};
