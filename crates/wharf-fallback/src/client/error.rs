//! The client's errors: each says what failed and where, so a caller (or a log line) can tell
//! a dead server from a slow one from a broken answer.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::protocol::{AnswerError, RequestError};

/// Why a resolution has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request cannot be put on the wire.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The TCP connect failed: nothing listens, or the machine has no port left.
    #[error("cannot connect to the fallback service at {addr}: {source}")]
    Connect {
        /// The service's address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The TCP connect did not finish in time.
    #[error("connecting to the fallback service at {addr} took longer than {after:?}")]
    ConnectTimeout {
        /// The service's address.
        addr: SocketAddr,
        /// The connect timeout.
        after: Duration,
    },
    /// No whole answer arrived in time.
    #[error("the fallback service did not answer within {after:?}")]
    Timeout {
        /// The request timeout.
        after: Duration,
    },
    /// The connection closed or reset before the answer was complete.
    #[error("the connection to the fallback service was lost before the answer was complete: {0}")]
    Disconnected(#[source] Cause),
    /// The bytes that came back are not an HTTP/1.1 response.
    #[error("the fallback service's answer is not valid HTTP/1.1: {0}")]
    Http(#[source] Cause),
    /// The answer's body is larger than the configured limit.
    #[error("the fallback service's answer is larger than the limit of {limit} bytes")]
    TooLarge {
        /// `ClientConfig::max_answer_bytes`.
        limit: usize,
    },
    /// The answer is HTTP, but not a usable fallback answer.
    #[error(transparent)]
    Answer(#[from] AnswerError),
    /// Following redirects came back to a specifier already asked for.
    #[error("redirect loop: {}", chain.join(" -> "))]
    RedirectLoop {
        /// Every specifier asked for, the repeated one last.
        chain: Vec<String>,
    },
    /// Following redirects took more hops than allowed.
    #[error("more than {limit} redirects: {}", chain.join(" -> "))]
    TooManyRedirects {
        /// `ClientConfig::max_redirects`.
        limit: usize,
        /// Every specifier asked for.
        chain: Vec<String>,
    },
    /// The client stopped: its pool was closed under the request.
    #[error("the fallback client has stopped")]
    Stopped,
}

/// What lies under [`Error::Disconnected`] and [`Error::Http`]: hyper's error for the async
/// client, the I/O error or the framing fault for the blocking one.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

// === impl Error ===

impl Error {
    /// Classifies a hyper error from an exchange.
    pub(super) fn from_hyper(e: hyper::Error) -> Error {
        if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
            Error::Http(Box::new(e))
        } else {
            Error::Disconnected(Box::new(e))
        }
    }

    /// Whether this is one of the two timeouts.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::ConnectTimeout { .. })
    }

    /// Whether the OS had no local address left for a connect (`EADDRNOTAVAIL`): the port
    /// exhaustion this crate exists to avoid.
    pub fn is_addr_not_available(&self) -> bool {
        matches!(self, Error::Connect { source, .. } if source.kind() == io::ErrorKind::AddrNotAvailable)
    }
}
