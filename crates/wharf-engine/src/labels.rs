//! Ownership labels on every Docker object wharf creates, and how to read them back.
//!
//! Every object carries [`MANAGED`]. Objects that belong to one engine instance also carry
//! [`ENGINE`] and [`ENGINE_LOCK`]: the path of the lock file that a live engine holds, which
//! is how `wharf gc` tells a live engine from a dead one. Containers carry [`CONTAINER`] (the
//! client-chosen id) and [`ROLE`]; a sidecar made for the warm pool has no [`CONTAINER`], and
//! the app that claims it names it in [`SIDECAR`]. Images are a cache shared by engines, so they carry
//! [`MANAGED`], [`ROLE`] and [`CONTENT_HASH`] but no engine.

use std::collections::BTreeMap;
use std::path::Path;

/// Present (`"true"`) on everything wharf creates.
pub const MANAGED: &str = "dev.wharf.managed";
/// The engine instance name.
pub const ENGINE: &str = "dev.wharf.engine";
/// The lock file the engine holds while it lives.
pub const ENGINE_LOCK: &str = "dev.wharf.engine.lock";
/// The client-chosen container id.
pub const CONTAINER: &str = "dev.wharf.container";
/// On an app: the name of the sidecar whose network namespace it joined (a pooled sidecar
/// keeps the name it was made with).
pub const SIDECAR: &str = "dev.wharf.sidecar";
/// `app`, `sidecar`, `helper` or `image`.
pub const ROLE: &str = "dev.wharf.role";
/// The wharf version that created the object.
pub const VERSION: &str = "dev.wharf.version";
/// For images: a hash of the build context, so a stale image is rebuilt.
pub const CONTENT_HASH: &str = "dev.wharf.content-hash";

/// What a labelled object is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The user's app container.
    App,
    /// The egress sidecar that owns the app's network namespace.
    Sidecar,
    /// A short-lived helper container.
    Helper,
    /// An image wharf built.
    Image,
}

/// The engine an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    /// Engine instance name.
    pub engine: &'a str,
    /// Lock file path of that engine.
    pub lock: &'a Path,
}

// === impl Role ===

impl Role {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Sidecar => "sidecar",
            Role::Helper => "helper",
            Role::Image => "image",
        }
    }

    /// Parses a label value.
    pub fn parse(value: &str) -> Option<Role> {
        [Role::App, Role::Sidecar, Role::Helper, Role::Image]
            .into_iter()
            .find(|r| r.as_str() == value)
    }
}

// === impl Owner ===

impl Owner<'_> {
    /// Labels for an engine-owned object with `role`, for container id `container` if any.
    pub fn labels(&self, role: Role, container: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = base(role);
        labels.insert(ENGINE.to_owned(), self.engine.to_owned());
        labels.insert(ENGINE_LOCK.to_owned(), self.lock.display().to_string());
        if let Some(id) = container {
            labels.insert(CONTAINER.to_owned(), id.to_owned());
        }
        labels
    }
}

/// Labels for an image, shared by every engine.
pub fn image_labels(content_hash: &str) -> BTreeMap<String, String> {
    let mut labels = base(Role::Image);
    labels.insert(CONTENT_HASH.to_owned(), content_hash.to_owned());
    labels
}

/// The role recorded on an object, if it is one of ours.
pub fn role_of(labels: &BTreeMap<String, String>) -> Option<Role> {
    labels.get(ROLE).and_then(|v| Role::parse(v))
}

fn base(role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED.to_owned(), "true".to_owned()),
        (ROLE.to_owned(), role.as_str().to_owned()),
        (VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_labels_name_engine_lock_and_container() {
        let owner = Owner { engine: "ci", lock: Path::new("/run/wharf/ci.lock") };
        let labels = owner.labels(Role::Sidecar, Some("web-1"));
        assert_eq!(labels[MANAGED], "true");
        assert_eq!(labels[ENGINE], "ci");
        assert_eq!(labels[ENGINE_LOCK], "/run/wharf/ci.lock");
        assert_eq!(labels[CONTAINER], "web-1");
        assert_eq!(role_of(&labels), Some(Role::Sidecar));
    }

    #[test]
    fn image_labels_have_no_engine() {
        let labels = image_labels("abc");
        assert!(!labels.contains_key(ENGINE));
        assert_eq!(role_of(&labels), Some(Role::Image));
    }
}
