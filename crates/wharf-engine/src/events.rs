//! Lifecycle events: what happened to which container, numbered, fanned out to subscribers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::lifecycle::{Exit, SidecarSource};
use crate::params::ContainerId;

/// How many events a slow subscriber may lag before it misses some.
const CAPACITY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Increases by one per event of this engine.
    pub seq: u64,
    /// Wall-clock time.
    pub time: SystemTime,
    /// The container it concerns, if any.
    pub container: Option<ContainerId>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A start began.
    Starting,
    /// The app runs; `duration` is the whole start.
    Started {
        /// The image.
        image: String,
        /// Time from the start call to a running app.
        duration: Duration,
        /// Where the sidecar came from; a kept or pooled one passed its check first.
        sidecar: SidecarSource,
        /// Time spent getting a sidecar ready: the warm check, or create, start and readiness.
        sidecar_duration: Duration,
    },
    /// A start failed and was rolled back.
    StartFailed {
        /// Why.
        message: String,
    },
    /// The app stopped.
    Exited {
        /// How.
        exit: Exit,
    },
    /// A signal was delivered.
    Signalled {
        /// The number.
        signal: u8,
    },
    /// Labels were replaced.
    LabelsSet,
    /// A running container was adopted after an engine restart.
    Adopted,
    /// Leftovers were repaired or removed after an engine restart.
    Repaired {
        /// What was done.
        action: String,
    },
    /// An image was built (on first use).
    ImageBuilt {
        /// The reference.
        reference: String,
    },
    /// A queued call was dropped because its caller gave up first.
    Skipped {
        /// The verb.
        verb: &'static str,
    },
    /// An intercepted connection ended: what was decided and how much went through.
    Egress(EgressRecord),
    /// The sidecar answered a DNS question.
    Dns(wharf_wire::control::DnsEvent),
}

/// One intercepted connection, for the egress log.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressRecord {
    /// The original destination.
    pub dst: std::net::SocketAddr,
    /// The TLS server name, if the app sent one.
    pub sni: Option<String>,
    /// The HTTP host, if the app spoke plain HTTP.
    pub hostname: Option<String>,
    /// `tls`, `http` or `tcp`: what the app's first bytes were.
    pub protocol: &'static str,
    /// What was done.
    pub decision: EgressDecision,
    /// The mapping that decided (`https example.com:443`), if one did.
    pub rule: Option<String>,
    /// Where a handler sent it, if one did.
    pub target: Option<String>,
    /// Why it was refused or failed, if it was.
    pub reason: Option<String>,
    /// Bytes from the app.
    pub bytes_up: u64,
    /// Bytes to the app.
    pub bytes_down: u64,
    /// How long the connection lasted.
    pub duration: Duration,
}

/// What the engine did with an intercepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressDecision {
    /// A mapping's handler took it.
    Handler,
    /// It went to its destination (internet on, no mapping).
    PassThrough,
    /// It was refused (the app saw a reset).
    Refused,
}

impl EgressDecision {
    /// `handler`, `pass_through` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            EgressDecision::Handler => "handler",
            EgressDecision::PassThrough => "pass_through",
            EgressDecision::Refused => "refused",
        }
    }
}

/// Publishes events to every subscriber.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    seq: AtomicU64,
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> EventBus {
        EventBus { tx: broadcast::channel(CAPACITY).0, seq: AtomicU64::new(0) }
    }

    /// Publishes `kind` for `container`.
    pub fn emit(&self, container: Option<&ContainerId>, kind: EventKind) {
        self.emit_returning(container, kind);
    }

    /// Publishes `kind` for `container` and returns the event as sent.
    pub fn emit_returning(&self, container: Option<&ContainerId>, kind: EventKind) -> Event {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let event = Event { seq, time: SystemTime::now(), container: container.cloned(), kind };
        tracing::debug!(target: "wharf::events", seq, container = ?event.container, kind = ?event.kind);
        // No subscribers is fine.
        let _ = self.tx.send(event.clone());
        event
    }

    /// A new subscription, starting with the next event.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_numbered_events() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        let id = ContainerId::new("a").unwrap();
        bus.emit(Some(&id), EventKind::Starting);
        bus.emit(None, EventKind::LabelsSet);
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.container, Some(id));
    }
}
