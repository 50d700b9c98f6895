//! The egress configuration that `PUT /egress` changes and every new intercepted connection reads.
//!
//! [`EgressState`] is a plain value; [`Egress`] shares it through a `tokio::sync::watch` channel.
//! An update is applied under the channel's lock, all or nothing, and is in force when
//! [`Egress::apply`] returns, which is before the control port answers 204 (engine spec §3.4).

use std::sync::Arc;

use tokio::sync::watch;
use wharf_wire::control::{self, DnsUpdate, EgressUpdate, InternetUpdate};

use crate::intercept::InterceptMode;

/// The egress configuration in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressState {
    port: u16,
    internet_enabled: bool,
    dns_allow: Vec<String>,
}

/// A shared, atomically updated [`EgressState`]. Clones share the same state.
#[derive(Debug, Clone)]
pub struct Egress {
    tx: watch::Sender<Arc<EgressState>>,
}

/// Why an update was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// `port` outside 1..=65535.
    #[error("egress port must be 1..=65535, got {0}")]
    Port(u32),
}

// === impl EgressState ===

impl EgressState {
    /// The state before the first `PUT /egress`: the flag's port, every name allowed, and the
    /// internet as `--internet-initially` says (proxy-everything's defaults are on and `*`,
    /// engine spec §3.3).
    pub fn initial(port: u16, internet_enabled: bool) -> EgressState {
        EgressState { port, internet_enabled, dns_allow: vec!["*".to_owned()] }
    }

    /// The host egress listener's port, for new intercepted connections.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether traffic that no mapping claims may reach the internet.
    pub fn internet_enabled(&self) -> bool {
        self.internet_enabled
    }

    /// The DNS allow-list, as sent. Empty means nothing resolves.
    pub fn dns_allow(&self) -> &[String] {
        &self.dns_allow
    }

    /// This state with `update` applied: present keys replace, absent keys stay.
    pub fn updated(&self, update: &EgressUpdate) -> Result<EgressState, ApplyError> {
        let port = match update.port {
            Some(p) => u16::try_from(p).ok().filter(|&p| p != 0).ok_or(ApplyError::Port(p))?,
            None => self.port,
        };
        Ok(EgressState {
            port,
            internet_enabled: update.internet.map_or(self.internet_enabled, |i| i.enabled),
            dns_allow: update
                .dns
                .as_ref()
                .map_or_else(|| self.dns_allow.clone(), |d| d.allow_hostnames.clone()),
        })
    }

    /// The whole state as `GET /egress` reports it, with the interception mode in force.
    pub fn to_wire(&self, mode: InterceptMode) -> control::EgressState {
        control::EgressState {
            port: u32::from(self.port),
            dns: DnsUpdate { allow_hostnames: self.dns_allow.clone() },
            internet: InternetUpdate { enabled: self.internet_enabled },
            interception: mode.as_str().to_owned(),
        }
    }

    /// The whole state in the `PUT /egress` schema, every key present.
    pub fn to_update(&self) -> EgressUpdate {
        EgressUpdate {
            port: Some(u32::from(self.port)),
            dns: Some(DnsUpdate { allow_hostnames: self.dns_allow.clone() }),
            internet: Some(InternetUpdate { enabled: self.internet_enabled }),
        }
    }
}

// === impl Egress ===

impl Egress {
    /// Shares `initial`.
    pub fn new(initial: EgressState) -> Egress {
        Egress { tx: watch::Sender::new(Arc::new(initial)) }
    }

    /// The state in force now.
    pub fn current(&self) -> Arc<EgressState> {
        Arc::clone(&self.tx.borrow())
    }

    /// Applies `update` atomically. On error nothing changes.
    pub fn apply(&self, update: &EgressUpdate) -> Result<(), ApplyError> {
        let mut result = Ok(());
        // Validate and replace under the one lock, so concurrent PUTs cannot lose each other's
        // keys and a reader never sees half an update.
        self.tx.send_if_modified(|state| match state.updated(update) {
            Ok(next) => {
                *state = Arc::new(next);
                true
            }
            Err(e) => {
                result = Err(e);
                false
            }
        });
        result
    }

    /// A receiver that sees every later update (for work that must react to changes).
    pub fn subscribe(&self) -> watch::Receiver<Arc<EgressState>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: &str) -> EgressUpdate {
        EgressUpdate::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn absent_keys_are_untouched() {
        let egress = Egress::new(EgressState::initial(49121, true));
        egress.apply(&update(r#"{"port": 5}"#)).unwrap();
        let state = egress.current();
        assert_eq!((state.port(), state.internet_enabled()), (5, true));
        assert_eq!(state.dns_allow(), ["*"]);
    }

    #[test]
    fn dns_is_replaced_and_empty_is_honoured() {
        let egress = Egress::new(EgressState::initial(1, true));
        egress.apply(&update(r#"{"dns": {"allowHostnames": ["a.com", "*.b.com"]}}"#)).unwrap();
        assert_eq!(egress.current().dns_allow(), ["a.com", "*.b.com"]);
        egress.apply(&update(r#"{"dns": {"allowHostnames": []}}"#)).unwrap();
        assert!(egress.current().dns_allow().is_empty());
        assert_eq!(egress.current().port(), 1);
    }

    #[test]
    fn internet_applies_only_when_present() {
        let egress = Egress::new(EgressState::initial(1, true));
        egress.apply(&update(r#"{"internet": {"enabled": false}}"#)).unwrap();
        egress.apply(&update(r#"{"port": 2}"#)).unwrap();
        assert!(!egress.current().internet_enabled());
    }

    #[test]
    fn a_bad_update_changes_nothing() {
        let egress = Egress::new(EgressState::initial(7, true));
        let bad = EgressUpdate {
            port: Some(70_000),
            internet: Some(InternetUpdate { enabled: false }),
            dns: None,
        };
        assert_eq!(egress.apply(&bad), Err(ApplyError::Port(70_000)));
        assert_eq!(*egress.current(), EgressState::initial(7, true));
    }

    #[test]
    fn subscribers_see_updates() {
        let egress = Egress::new(EgressState::initial(1, true));
        let mut rx = egress.subscribe();
        egress.apply(&update(r#"{"port": 3}"#)).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().port(), 3);
    }

    #[test]
    fn the_internet_may_start_off() {
        let state = EgressState::initial(1, false);
        assert!(!state.internet_enabled());
        assert_eq!(state.dns_allow(), ["*"]);
    }

    #[test]
    fn get_shows_the_mode() {
        let wire = EgressState::initial(5, true).to_wire(InterceptMode::Redirect);
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&wire).unwrap()).unwrap(),
            r#"{"port":5,"dns":{"allowHostnames":["*"]},"internet":{"enabled":true},"interception":"redirect"}"#
        );
    }

    #[test]
    fn round_trips_through_the_wire_schema() {
        let state = EgressState::initial(9, true)
            .updated(&update(r#"{"dns": {"allowHostnames": []}}"#))
            .unwrap();
        let back = EgressState::initial(1, true).updated(&state.to_update()).unwrap();
        assert_eq!(back, state);
    }
}
