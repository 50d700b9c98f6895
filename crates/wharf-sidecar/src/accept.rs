//! What every accept loop shares: the one shutdown signal, and the policy for accept errors.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::sync::watch;

/// The sending half of the shutdown signal: dropping it (or calling [`ShutdownTx::fire`]) stops
/// every accept loop holding a [`Shutdown`].
#[derive(Debug)]
pub(crate) struct ShutdownTx {
    // Never sent on: dropping it is the signal.
    _tx: watch::Sender<()>,
}

/// A handle on the shutdown signal, cloned into each accept loop.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(watch::Receiver<()>);

/// Makes the signal's two halves.
pub(crate) fn shutdown_channel() -> (ShutdownTx, Shutdown) {
    let (tx, rx) = watch::channel(());
    (ShutdownTx { _tx: tx }, Shutdown(rx))
}

// === impl ShutdownTx ===

impl ShutdownTx {
    /// Signals shutdown.
    pub(crate) fn fire(self) {
        drop(self);
    }
}

// === impl Shutdown ===

impl Shutdown {
    /// Completes once shutdown is signalled. Cancel-safe.
    pub(crate) fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            // The sender never sends; `changed` fails exactly when it is dropped.
            while rx.changed().await.is_ok() {}
        }
    }
}

/// Accept errors such as EMFILE: log the first of a run, then back off so the loop does not
/// spin while the condition lasts (axum's `handle_accept_error`).
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    what: &'static str,
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    /// A backoff for the listener named `what` in logs (e.g. `control`).
    pub(crate) fn new(what: &'static str) -> AcceptBackoff {
        AcceptBackoff { what, failures: 0 }
    }

    /// An accept succeeded: the run of failures is over.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Logs `e` (the first of a run at warn) and sleeps before the next accept.
    pub(crate) async fn wait(&mut self, e: &io::Error) {
        // The peer left between SYN and accept: nothing to wait for.
        if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
            return;
        }
        if self.failures == 0 {
            tracing::warn!(listener = self.what, error = %e, "accepting connections failed; backing off");
        } else {
            tracing::debug!(listener = self.what, error = %e, failures = self.failures, "accept still failing");
        }
        let delay = Self::FIRST.saturating_mul(1 << self.failures.min(8)).min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal() {
        let (tx, rx) = shutdown_channel();
        let (a, b) = (rx.signalled(), rx.clone().signalled());
        tx.fire();
        a.await;
        b.await;
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_resets() {
        let mut backoff = AcceptBackoff::new("test");
        let emfile = io::Error::from_raw_os_error(24);
        let start = tokio::time::Instant::now();
        backoff.wait(&emfile).await;
        backoff.wait(&emfile).await;
        assert_eq!(start.elapsed(), Duration::from_millis(15));
        backoff.reset();
        let start = tokio::time::Instant::now();
        backoff.wait(&io::Error::from(io::ErrorKind::ConnectionAborted)).await;
        backoff.wait(&emfile).await;
        assert_eq!(start.elapsed(), Duration::from_millis(5));
    }
}
