//! [`FakeControl`]: a scripted sidecar control port for tier-1 engine tests.
//!
//! It records every `PUT /egress`, can refuse the first N of them (a sidecar still starting),
//! and routes ingress `CONNECT`s to loopback listeners the test registered per app port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::net::TcpStream;
use wharf_wire::control::{EgressState, EgressUpdate};

use super::{ControlError, Endpoint, SidecarControl};
use crate::io_util::BoxIo;
use crate::params::AppPort;

/// The CA the fake hands out.
pub const FAKE_CA: &str = "-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n";

/// A scripted control port.
#[derive(Debug, Clone, Default)]
pub struct FakeControl {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    puts: Vec<(SocketAddr, EgressUpdate)>,
    refuse_puts: usize,
    routes: HashMap<u16, SocketAddr>,
    connects: usize,
}

impl FakeControl {
    /// A control port that accepts everything and routes nothing.
    pub fn new() -> FakeControl {
        FakeControl::default()
    }

    /// Every `PUT /egress` so far, with the endpoint it went to.
    pub fn puts(&self) -> Vec<(SocketAddr, EgressUpdate)> {
        self.lock().puts.clone()
    }

    /// Refuse the next `n` puts, as a sidecar that is not ready yet does.
    pub fn refuse_puts(&self, n: usize) {
        self.lock().refuse_puts = n;
    }

    /// How many ingress tunnels were opened so far.
    pub fn connects(&self) -> usize {
        self.lock().connects
    }

    /// Route ingress to app port `port` to the loopback listener `to`.
    pub fn route(&self, port: u16, to: SocketAddr) {
        self.lock().routes.insert(port, to);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SidecarControl for FakeControl {
    async fn put_egress(&self, ep: &Endpoint, update: &EgressUpdate) -> Result<(), ControlError> {
        let mut state = self.lock();
        if state.refuse_puts > 0 {
            state.refuse_puts -= 1;
            return Err(ControlError::Unreachable {
                addr: ep.addr,
                message: "not ready".to_owned(),
            });
        }
        state.puts.push((ep.addr, update.clone()));
        Ok(())
    }

    async fn get_state(&self, ep: &Endpoint) -> Result<EgressState, ControlError> {
        let state = self.lock();
        let last =
            state.puts.iter().rev().find(|(addr, _)| *addr == ep.addr).map(|(_, u)| u.clone());
        let last = last.unwrap_or_default();
        Ok(EgressState {
            port: last.port.unwrap_or(0),
            dns: last.dns.unwrap_or_default(),
            internet: last.internet.unwrap_or_default(),
            interception: "fake".to_owned(),
        })
    }

    async fn get_ca(&self, _ep: &Endpoint) -> Result<String, ControlError> {
        Ok(FAKE_CA.to_owned())
    }

    async fn connect(&self, _ep: &Endpoint, port: AppPort) -> Result<BoxIo, ControlError> {
        let route = {
            let mut state = self.lock();
            state.connects += 1;
            state.routes.get(&port.number()).copied()
        };
        let refused =
            || ControlError::Rejected { status: 400, body: "connection refused".to_owned() };
        let to = route.ok_or_else(refused)?;
        let stream = TcpStream::connect(to).await.map_err(|_| refused())?;
        Ok(Box::new(stream))
    }
}
