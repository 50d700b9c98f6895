//! The engine lock: a file a live engine holds locked, so `wharf gc` can tell live from dead.
//!
//! The kernel drops the lock when the process dies, SIGKILL included, so a crashed engine
//! never looks alive. The lock path is written into every object's labels.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// A held engine lock; released on drop.
#[derive(Debug)]
pub struct EngineLock {
    path: PathBuf,
    _file: File,
}

/// Whether a lock file is held by a live process right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Some process holds it.
    Alive,
    /// Nobody holds it, or the file is gone.
    Dead,
}

impl EngineLock {
    /// Takes the lock at `path`, creating the file and its directory.
    pub fn acquire(name: &str, path: &Path) -> Result<EngineLock, Error> {
        let state = |e: io::Error| Error::State {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(state)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(state)?;
        match file.try_lock() {
            Ok(()) => Ok(EngineLock { path: path.to_owned(), _file: file }),
            Err(TryLockError::WouldBlock) => {
                Err(Error::EngineBusy { name: name.to_owned(), path: path.display().to_string() })
            }
            Err(TryLockError::Error(e)) => Err(state(e)),
        }
    }

    /// Takes the lock of a (probably dead) engine if nobody holds it, for `wharf gc`.
    pub fn try_take(path: &Path) -> io::Result<Option<EngineLock>> {
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(EngineLock { path: path.to_owned(), _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether the lock at `path` is held by someone.
    pub fn liveness(path: &Path) -> io::Result<Liveness> {
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Liveness::Dead),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(Liveness::Dead),
            Err(TryLockError::WouldBlock) => Ok(Liveness::Alive),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e/lock");
        assert_eq!(EngineLock::liveness(&path).unwrap(), Liveness::Dead);
        let held = EngineLock::acquire("e", &path).unwrap();
        assert_eq!(EngineLock::liveness(&path).unwrap(), Liveness::Alive);
        assert!(matches!(EngineLock::acquire("e", &path), Err(Error::EngineBusy { .. })));
        assert!(EngineLock::try_take(&path).unwrap().is_none());
        drop(held);
        assert_eq!(EngineLock::liveness(&path).unwrap(), Liveness::Dead);
        assert!(EngineLock::try_take(&path).unwrap().is_some());
    }
}
