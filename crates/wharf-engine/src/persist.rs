//! Per-container settings kept on disk, so an engine that crashed and restarted adopts a running
//! container with its egress settings and labels (W3) rather than forgetting them.
//!
//! This is one of two places where engine data is serialised (the other is the sidecar wire
//! format): the record is private to the engine and versioned by its `v` field.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::params::ContainerId;

/// What survives an engine crash for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Format version.
    pub v: u32,
    /// The image the app was started from.
    pub image: String,
    /// Internet on or off.
    pub internet: bool,
    /// Labels, in order.
    pub labels: Vec<(String, String)>,
    /// The inactivity timeout, when set.
    pub inactivity_ms: Option<u64>,
    /// The egress mappings, in order.
    #[serde(default)]
    pub mappings: Vec<MappingRecord>,
}

/// One egress mapping as text, re-parsed when a restarted engine adopts the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRecord {
    /// `http`, `https` or `tcp`.
    pub protocol: String,
    /// The canonical `hostPort`.
    pub host_port: String,
    /// The target.
    pub target: String,
}

impl From<&wharf_policy::Mapping<crate::egress::Target>> for MappingRecord {
    fn from(m: &wharf_policy::Mapping<crate::egress::Target>) -> MappingRecord {
        let host_port = wharf_policy::HostPort { dest: m.dest.clone(), port: m.port };
        MappingRecord {
            protocol: m.protocol.as_str().to_owned(),
            host_port: host_port.to_string(),
            target: m.target.to_string(),
        }
    }
}

impl MappingRecord {
    /// Parses the record back; `None` (logged) when it no longer parses.
    pub fn to_mapping(&self) -> Option<wharf_policy::Mapping<crate::egress::Target>> {
        let protocol: wharf_policy::Protocol = self.protocol.parse().ok()?;
        let host_port = wharf_policy::HostPort::parse(&self.host_port, protocol).ok()?;
        let target = crate::egress::Target::parse(protocol, &self.target).ok()?;
        Some(wharf_policy::Mapping { protocol, dest: host_port.dest, port: host_port.port, target })
    }
}

/// A directory of records, one JSON file per container id.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// A store in `dir`, created if missing.
    pub fn open(dir: &Path) -> io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        Ok(Store { dir: dir.to_owned() })
    }

    /// Writes `record` atomically (temp file + rename).
    pub fn save(&self, id: &ContainerId, record: &Record) -> io::Result<()> {
        let tmp = self.dir.join(format!(".{id}.json.tmp"));
        let bytes = serde_json::to_vec(&Record { v: 1, ..record.clone() })?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.path(id))
    }

    /// Reads the record of `id`; `None` when there is none or it is unreadable.
    pub fn load(&self, id: &ContainerId) -> Option<Record> {
        let bytes = std::fs::read(self.path(id)).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(container.id = %id, error = %e, "ignoring unreadable state record");
                None
            }
        }
    }

    /// Forgets `id`.
    pub fn remove(&self, id: &ContainerId) {
        let _ = std::fs::remove_file(self.path(id));
    }

    fn path(&self, id: &ContainerId) -> PathBuf {
        // Ids are [A-Za-z0-9_.-], but "." and ".." would escape: prefix every file.
        self.dir.join(format!("c-{id}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = ContainerId::new("..").unwrap();
        assert_eq!(store.load(&id), None);
        let record = Record {
            image: "img".to_owned(),
            internet: true,
            labels: vec![("a".to_owned(), "1".to_owned())],
            ..Default::default()
        };
        store.save(&id, &record).unwrap();
        assert_eq!(store.load(&id), Some(Record { v: 1, ..record }));
        store.remove(&id);
        assert_eq!(store.load(&id), None);
    }

    #[test]
    fn garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = ContainerId::new("x").unwrap();
        std::fs::write(dir.path().join("c-x.json"), b"{not json").unwrap();
        assert_eq!(store.load(&id), None);
    }
}
