//! Answers already worked out, each with the paths it depended on. A hit is checked against the
//! disk first (one stat per path), so a changed, added or removed file invalidates it at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::Reply;
use super::probe::Dep;
use crate::protocol::Request;

/// Entries kept before the cache is emptied and refilled.
const CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
pub(super) struct Cache {
    entries: Mutex<HashMap<Request, Arc<Entry>>>,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) reply: Reply,
    deps: Vec<Dep>,
}

// === impl Cache ===

impl Cache {
    /// The cached reply, if every path it depended on is unchanged.
    pub(super) fn get(&self, request: &Request) -> Option<Arc<Entry>> {
        let entry = self.lock().get(request).cloned()?;
        if entry.deps.iter().all(Dep::holds) {
            return Some(entry);
        }
        self.lock().remove(request);
        None
    }

    pub(super) fn put(&self, request: Request, reply: Reply, mut deps: Vec<Dep>) -> Arc<Entry> {
        let mut seen = HashSet::new();
        deps.retain(|d| seen.insert(d.path().to_owned()));
        let entry = Arc::new(Entry { reply, deps });
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(request, entry.clone());
        entry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Request, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
