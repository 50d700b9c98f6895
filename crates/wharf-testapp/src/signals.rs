//! Exit on SIGTERM, SIGINT and SIGHUP with the codes a default signal death gives (128 + n).
//!
//! The app is PID 1 in its container, and the kernel does not apply default dispositions to
//! PID 1: without handlers, `docker kill -s TERM` would do nothing.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

/// The signals that stop the app, with handlers installed.
#[derive(Debug)]
pub struct ExitSignals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// A signal that arrived, and the exit code it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination {
    /// The signal's name, e.g. `SIGTERM`.
    pub signal: &'static str,
    /// 128 plus the signal number.
    pub exit_code: u8,
}

// === impl ExitSignals ===

impl ExitSignals {
    /// Installs the handlers. Do this first, so an early signal is not lost.
    pub fn install() -> io::Result<ExitSignals> {
        Ok(ExitSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the first of the signals and logs it.
    pub async fn recv(&mut self) -> Termination {
        let termination = tokio::select! {
            _ = self.term.recv() => Termination { signal: "SIGTERM", exit_code: 143 },
            _ = self.int.recv() => Termination { signal: "SIGINT", exit_code: 130 },
            _ = self.hup.recv() => Termination { signal: "SIGHUP", exit_code: 129 },
        };
        info!(signal = termination.signal, exit_code = termination.exit_code, "exiting on signal");
        termination
    }
}
