//! The engine's error type: one enum, variants carrying what a reader needs to act.

use crate::docker;
use crate::params::{ContainerId, ParamError};
use crate::sidecar::ControlError;

/// An engine failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input was refused.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// `start` while a run is in progress.
    #[error("container {0} is already running")]
    AlreadyRunning(ContainerId),
    /// A verb that needs a running app, while none runs.
    #[error("container {0} is not running")]
    NotRunning(ContainerId),
    /// `wait` on a slot that never started.
    #[error("container {0} was never started")]
    NotStarted(ContainerId),
    /// Logs of a slot whose app container is gone or never existed.
    #[error("container {0} has no app container (never started, or destroyed)")]
    NoAppContainer(ContainerId),
    /// The image does not exist locally (wharf never pulls).
    #[error("image {image} not found locally: build or load it first (wharf never pulls)")]
    ImageNotFound {
        /// The reference.
        image: String,
    },
    /// Nothing listens on the app port.
    #[error("Container is not listening to port {port}")]
    PortNotListening {
        /// The app port.
        port: u16,
    },
    /// The sidecar did not become ready, or its control port failed.
    #[error("sidecar of {container}: {message}")]
    Sidecar {
        /// The container.
        container: ContainerId,
        /// What went wrong, including the sidecar's own last words when it died.
        message: String,
    },
    /// A Docker call failed.
    #[error("docker {op} for {target}: {source}")]
    Docker {
        /// The operation, e.g. `create`.
        op: &'static str,
        /// The object it was for.
        target: String,
        /// The classified Docker error.
        source: docker::Error,
    },
    /// Building or checking an image failed.
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    /// Exec output exceeded the engine's limit.
    #[error("exec output exceeded {limit} bytes; use a streaming exec for large output")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The engine lock is held by another live engine.
    #[error(
        "engine {name:?} is already running (lock {path} is held); stop it or choose another --name"
    )]
    EngineBusy {
        /// Engine name.
        name: String,
        /// Lock file path.
        path: String,
    },
    /// Local state (lock file, state dir) could not be used.
    #[error("state directory {path}: {message}")]
    State {
        /// The path.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
}

impl Error {
    /// Wraps a Docker error with the operation and target.
    pub(crate) fn docker(op: &'static str, target: &str) -> impl FnOnce(docker::Error) -> Error {
        let target = target.to_owned();
        move |source| Error::Docker { op, target, source }
    }

    /// Wraps a control-port error.
    pub(crate) fn sidecar(container: &ContainerId, err: &ControlError) -> Error {
        Error::Sidecar { container: container.clone(), message: err.to_string() }
    }
}
