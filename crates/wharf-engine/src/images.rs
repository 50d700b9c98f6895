//! Offline images: pure recipes (a deterministic tar context and its hash) and the builder that
//! makes sure Docker has each one.
//!
//! No registry is reachable, so every image is built `FROM scratch` around static binaries:
//! the sidecar, the test app and Debian's static busybox (checked by [`load_busybox`]). A
//! recipe's [`ImageRecipe::content_hash`] is the sha256 of its context; it is stored as the
//! [`crate::labels::CONTENT_HASH`] label, and [`ImageBuilder::ensure`] rebuilds when it differs.

use std::path::PathBuf;

use crate::docker;

mod builder;
mod elf;
mod recipe;

pub use builder::{EnsureOutcome, ImageBuilder};
pub use elf::{ElfError, Linkage, linkage, load_busybox};
pub use recipe::{Entry, ImageRecipe, TESTAPP_PATH, build_context, sidecar_recipe, testapp_recipe};

/// Why an image could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The busybox binary is not there.
    #[error(
        "busybox not found at {}: install Debian's busybox-static (apt-get install busybox-static) or pass --busybox PATH",
        .path.display()
    )]
    BusyboxMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The busybox binary could not be read.
    #[error("cannot read busybox at {}: {source}", .path.display())]
    BusyboxRead {
        /// Its path.
        path: PathBuf,
        /// The read failure.
        source: std::io::Error,
    },
    /// The busybox binary needs a dynamic loader, which a `FROM scratch` image lacks.
    #[error(
        "busybox at {} is dynamically linked and cannot run in a FROM scratch image: install busybox-static",
        .path.display()
    )]
    BusyboxDynamic {
        /// Its path.
        path: PathBuf,
    },
    /// The busybox file is not a 64-bit ELF executable.
    #[error(
        "busybox at {} is not a usable binary ({source}): install busybox-static or pass --busybox PATH",
        .path.display()
    )]
    BusyboxNotElf {
        /// Its path.
        path: PathBuf,
        /// What is wrong with it.
        source: ElfError,
    },
    /// A rootfs entry cannot go into a build context.
    #[error("invalid rootfs entry {path:?}: {reason}")]
    InvalidEntry {
        /// The entry's path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Writing the tar context failed.
    #[error("cannot write the build context for {path:?}")]
    Context {
        /// The entry being written.
        path: String,
        /// The tar writer's failure.
        source: std::io::Error,
    },
    /// Docker could not say whether the image exists.
    #[error("cannot inspect image {reference}")]
    Inspect {
        /// The image reference.
        reference: String,
        /// Docker's answer.
        source: docker::Error,
    },
    /// Docker failed to build the image.
    #[error("building image {reference} failed")]
    Build {
        /// The image reference.
        reference: String,
        /// Docker's answer.
        source: docker::Error,
    },
}
