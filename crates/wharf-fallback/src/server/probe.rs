//! The server's only window on the file system: every look at a path is recorded with what was
//! seen, so a cached answer can later be checked against the disk, path by path.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a path was when it was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stamp {
    /// Nothing there (or unreadable).
    Missing,
    /// A directory. Its own mtime is not kept: each entry that mattered is a dependency of its
    /// own, so an unrelated new file does not invalidate anything.
    Dir,
    /// A file, as far as stat can tell one version from another.
    File {
        /// Inode, so a file replaced by rename counts as changed.
        ino: u64,
        /// Size.
        len: u64,
        /// Last modification.
        modified: Option<SystemTime>,
    },
}

/// One path an answer depended on, and what it was.
#[derive(Debug, Clone)]
pub(super) struct Dep {
    path: PathBuf,
    seen: Stamp,
}

/// Looks at files under `root`, by virtual path, and records every look.
#[derive(Debug)]
pub(super) struct Probe<'a> {
    root: &'a Path,
    deps: Vec<Dep>,
}

// === impl Stamp ===

impl Stamp {
    /// What `path` is now, following symlinks.
    pub(super) fn of(path: &Path) -> Stamp {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Stamp::Dir,
            Ok(m) if m.is_file() => {
                Stamp::File { ino: m.ino(), len: m.len(), modified: m.modified().ok() }
            }
            _ => Stamp::Missing,
        }
    }
}

// === impl Dep ===

impl Dep {
    /// Whether the path is still what it was.
    pub(super) fn holds(&self) -> bool {
        Stamp::of(&self.path) == self.seen
    }

    /// The path looked at.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

// === impl Probe ===

impl<'a> Probe<'a> {
    pub(super) fn new(root: &'a Path) -> Self {
        Probe { root, deps: Vec::new() }
    }

    /// What is at the virtual path `vpath`.
    pub(super) fn stamp(&mut self, vpath: &str) -> Stamp {
        let path = self.disk(vpath);
        let seen = Stamp::of(&path);
        self.deps.push(Dep { path, seen });
        seen
    }

    pub(super) fn is_file(&mut self, vpath: &str) -> bool {
        matches!(self.stamp(vpath), Stamp::File { .. })
    }

    pub(super) fn is_dir(&mut self, vpath: &str) -> bool {
        self.stamp(vpath) == Stamp::Dir
    }

    /// The file's bytes; stat first, so that a change during the read shows at the next check.
    pub(super) fn read(&mut self, vpath: &str) -> io::Result<Vec<u8>> {
        match self.stamp(vpath) {
            Stamp::File { .. } => std::fs::read(self.disk(vpath)),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// Whether the file, symlinks followed, is still under the root.
    pub(super) fn is_inside_root(&self, vpath: &str) -> bool {
        std::fs::canonicalize(self.disk(vpath)).is_ok_and(|real| real.starts_with(self.root))
    }

    /// Everything looked at.
    pub(super) fn into_deps(self) -> Vec<Dep> {
        self.deps
    }

    fn disk(&self, vpath: &str) -> PathBuf {
        self.root.join(vpath.trim_start_matches('/'))
    }
}
