//! A recording fake [`Netlink`]: a kernel that lacks what it is told to lack, and a log of
//! every request with the answer it got.

use std::sync::Mutex;

use super::nftables::NftBatch;
use super::routing::RouteRequest;
use super::rules::Feature;
use super::socket::{Netlink, NetlinkError};

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const EOPNOTSUPP: i32 = 95;

/// A scripted kernel.
#[derive(Debug, Default)]
pub(crate) struct FakeNetlink {
    /// Messages needing one of these are refused: `ENOENT` for nf_tables (an unknown
    /// expression or chain type), `EOPNOTSUPP` for policy routing.
    lacks: Vec<Feature>,
    /// Every commit is refused at its first message with this errno.
    refuse_all: Option<i32>,
    /// The fwmark rules exist already (`EEXIST`), as after a sidecar restart.
    rules_exist: bool,
    log: Mutex<Vec<String>>,
}

// === impl FakeNetlink ===

impl FakeNetlink {
    /// A kernel lacking `features`.
    pub(crate) fn lacking(features: &[Feature]) -> FakeNetlink {
        FakeNetlink { lacks: features.to_vec(), ..FakeNetlink::default() }
    }

    /// A kernel that refuses every commit with `errno` (say `EPERM`: no `CAP_NET_ADMIN`).
    pub(crate) fn refusing(errno: i32) -> FakeNetlink {
        FakeNetlink { refuse_all: Some(errno), ..FakeNetlink::default() }
    }

    /// A kernel where the fwmark rules are in place already.
    pub(crate) fn with_rules_in_place() -> FakeNetlink {
        FakeNetlink { rules_exist: true, ..FakeNetlink::default() }
    }

    /// One line per request: what was asked and how it was answered.
    pub(crate) fn log(&self) -> String {
        self.lock().join("\n")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn answer_commit(&self, batch: &NftBatch) -> Result<(), NetlinkError> {
        if let Some(errno) = self.refuse_all {
            return Err(NetlinkError::Refused { index: Some(0), errno });
        }
        let lacking = batch
            .messages()
            .iter()
            .position(|msg| msg.features().iter().any(|f| self.lacks.contains(f)));
        match lacking {
            Some(index) => Err(NetlinkError::Refused { index: Some(index), errno: ENOENT }),
            None => Ok(()),
        }
    }

    fn answer_route(&self, request: RouteRequest) -> Result<(), NetlinkError> {
        if self.lacks.contains(&Feature::PolicyRouting) {
            return Err(NetlinkError::Refused { index: None, errno: EOPNOTSUPP });
        }
        match request {
            RouteRequest::Rule(_) if self.rules_exist => {
                Err(NetlinkError::Refused { index: None, errno: EEXIST })
            }
            _ => Ok(()),
        }
    }
}

impl Netlink for FakeNetlink {
    fn commit(&self, batch: &NftBatch) -> Result<(), NetlinkError> {
        let outcome = self.answer_commit(batch);
        let summary = summarize(batch);
        let answer = match &outcome {
            Ok(()) => "ok".to_owned(),
            Err(NetlinkError::Refused { index: Some(index), errno }) => {
                format!("refused #{index} ({}) errno {errno}", batch.messages()[*index])
            }
            Err(e) => e.to_string(),
        };
        self.lock().push(format!("commit {summary}: {answer}"));
        outcome
    }

    fn route(&self, request: RouteRequest) -> Result<(), NetlinkError> {
        let outcome = self.answer_route(request);
        let answer = match &outcome {
            Ok(()) => "ok".to_owned(),
            Err(NetlinkError::Refused { errno, .. }) => format!("errno {errno}"),
            Err(e) => e.to_string(),
        };
        self.lock().push(format!("route {request}: {answer}"));
        outcome
    }
}

/// The batch in a few words: its size and the chains it creates or flushes.
fn summarize(batch: &NftBatch) -> String {
    use super::nftables::NftMsg;
    let chains: Vec<String> = batch
        .messages()
        .iter()
        .filter_map(|msg| match msg {
            NftMsg::AddChain { name, .. } => Some((*name).to_owned()),
            NftMsg::FlushChain(name) => Some(format!("flush {name}")),
            NftMsg::AddRule { chain, rule } if batch.messages().len() <= 2 => {
                Some(format!("{chain}: {rule}"))
            }
            _ => None,
        })
        .collect();
    format!("{} messages [{}]", batch.messages().len(), chains.join(", "))
}

/// Shares the fake between the interception under test and the test reading its log.
impl Netlink for std::sync::Arc<FakeNetlink> {
    fn commit(&self, batch: &NftBatch) -> Result<(), NetlinkError> {
        FakeNetlink::commit(self, batch)
    }

    fn route(&self, request: RouteRequest) -> Result<(), NetlinkError> {
        FakeNetlink::route(self, request)
    }
}
