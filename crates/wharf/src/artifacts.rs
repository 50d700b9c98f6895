//! The static sidecar and test-app binaries, embedded at build time (see `build.rs`), and the
//! image recipes made from them.

use std::path::Path;

use wharf_engine::images::{self, ImageError, ImageRecipe};

/// The static `wharf-sidecar` binary.
pub static SIDECAR_BIN: &[u8] = include_bytes!(env!("WHARF_SIDECAR_BIN"));
/// The static `wharf-testapp` binary.
pub static TESTAPP_BIN: &[u8] = include_bytes!(env!("WHARF_TESTAPP_BIN"));

/// Where Debian's `busybox-static` puts its binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// The recipes for both images.
#[derive(Debug, Clone)]
pub struct Recipes {
    /// `wharf/sidecar:<version>-<hash>`.
    pub sidecar: ImageRecipe,
    /// `wharf/testapp:latest`.
    pub testapp: ImageRecipe,
}

impl Recipes {
    /// Builds both recipes, reading busybox from `busybox`.
    pub fn load(busybox: &Path) -> Result<Recipes, ImageError> {
        let busybox = images::load_busybox(busybox)?;
        Ok(Recipes {
            sidecar: images::sidecar_recipe(SIDECAR_BIN, &busybox),
            testapp: images::testapp_recipe(TESTAPP_BIN, &busybox),
        })
    }
}
