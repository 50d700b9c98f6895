//! The lifecycle of one container slot as a pure enum, with question-shaped predicates.
//!
//! Verbs ask the status first (`can_start`, `can_signal`, …) and answer with a typed
//! typed error (`Error::NotRunning`, `Error::AlreadyRunning`, …) when the answer is no. Nothing here touches Docker.

use std::fmt;

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The app's process ended by itself (any code).
    Exited,
    /// `destroy` killed it.
    Destroyed,
    /// The kernel's OOM killer ended it.
    OomKilled,
    /// `hardTimeoutMs` elapsed.
    HardTimeout,
    /// The inactivity timeout elapsed.
    InactivityTimeout,
    /// It was found broken after an engine restart and removed (no sidecar: W4).
    Lost,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code; 137 after `destroy` (W14, kept for compatibility).
    pub code: i64,
    /// Why it ended.
    pub reason: ExitReason,
}

/// Where a slot is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Never started (or forgotten after an engine restart found nothing).
    Empty,
    /// The app container is running behind its sidecar.
    Running,
    /// The last run ended.
    Stopped(Exit),
}

// === impl ExitReason ===

impl ExitReason {
    /// A stable snake_case name, for the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Exited => "exited",
            ExitReason::Destroyed => "destroyed",
            ExitReason::OomKilled => "oom_killed",
            ExitReason::HardTimeout => "hard_timeout",
            ExitReason::InactivityTimeout => "inactivity_timeout",
            ExitReason::Lost => "lost",
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Exit ===

impl Exit {
    /// The run ended because `destroy` removed it.
    pub fn destroyed(&self) -> bool {
        self.reason == ExitReason::Destroyed
    }
}

// === impl Status ===

impl Status {
    /// `start` is allowed unless a run is in progress.
    pub fn can_start(self) -> bool {
        !self.is_running()
    }

    /// Signals, labels, exec, ports and snapshots need a running app.
    pub fn is_running(self) -> bool {
        self == Status::Running
    }

    /// Whether the slot ever started, so `wait` has something to report.
    pub fn has_started(self) -> bool {
        self != Status::Empty
    }

    /// The last exit, once stopped.
    pub fn exit(self) -> Option<Exit> {
        match self {
            Status::Stopped(exit) => Some(exit),
            _ => None,
        }
    }

    /// A stable snake_case name, for the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Empty => "empty",
            Status::Running => "running",
            Status::Stopped(_) => "stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXITED: Status = Status::Stopped(Exit { code: 0, reason: ExitReason::Exited });

    #[test]
    fn predicates() {
        assert!(Status::Empty.can_start());
        assert!(!Status::Running.can_start());
        assert!(EXITED.can_start());

        assert!(Status::Running.is_running());
        assert!(!EXITED.is_running());

        assert!(!Status::Empty.has_started());
        assert!(EXITED.has_started());
        assert_eq!(EXITED.exit().map(|e| e.code), Some(0));
        assert_eq!(Status::Running.exit(), None);
    }

    #[test]
    fn destroyed_is_a_reason() {
        let exit = Exit { code: 137, reason: ExitReason::Destroyed };
        assert!(exit.destroyed());
        assert!(!Exit { code: 137, reason: ExitReason::OomKilled }.destroyed());
    }
}

/// Where a start got its sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarSource {
    /// The id's own sidecar, kept from its last run.
    Kept,
    /// One from the warm pool.
    Pooled,
    /// Made by this start.
    Fresh,
}

impl SidecarSource {
    /// `kept`, `pooled` or `fresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            SidecarSource::Kept => "kept",
            SidecarSource::Pooled => "pooled",
            SidecarSource::Fresh => "fresh",
        }
    }

    /// The sidecar already ran before this start.
    pub fn is_warm(self) -> bool {
        self != SidecarSource::Fresh
    }
}
