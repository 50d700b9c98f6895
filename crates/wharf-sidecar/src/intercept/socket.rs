//! The only I/O of interception: netlink sockets to the kernel, `NETLINK_NETFILTER` for the
//! nf_tables batches and `NETLINK_ROUTE` for policy routing, behind the narrow [`Netlink`] trait.
//!
//! Each call opens its own socket, so it acts in the network namespace of the calling thread,
//! and closes it before returning. A request is sent in one datagram; the kernel processes it
//! while we send and queues its answers, which we read until every message is answered (or
//! the answer timeout passes).

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, Protocol, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::netlink::{Collector, MalformedAnswer, Progress, Refusal, parse_datagram};
use super::nftables::NftBatch;
use super::routing::RouteRequest;

/// The sequence number of a request's first message (the batch begin for nf_tables).
const FIRST_SEQ: u32 = 1;
/// How long to wait for the kernel's answers; it usually has them queued before `send` returns.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Enough for any answer: an error echoes the refused message, a few hundred bytes.
const RECV_BUF: usize = 64 * 1024;

/// What interception needs from the kernel.
pub(crate) trait Netlink: Send + Sync + fmt::Debug {
    /// Commits `batch`: all of it, or (when refused) none of it.
    fn commit(&self, batch: &NftBatch) -> Result<(), NetlinkError>;

    /// Makes one policy-routing change.
    fn route(&self, request: RouteRequest) -> Result<(), NetlinkError>;
}

/// Why a netlink request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetlinkError {
    /// The socket could not be opened (no such netlink family: no nf_tables at all).
    #[error("cannot open a {0} socket")]
    Open(&'static str, #[source] io::Error),
    /// Sending the request failed.
    #[error("cannot send to the kernel")]
    Send(#[source] io::Error),
    /// Reading the answers failed.
    #[error("cannot read the kernel's answer")]
    Recv(#[source] io::Error),
    /// An answer is not netlink.
    #[error("the kernel's answer is malformed")]
    Malformed(#[from] MalformedAnswer),
    /// Some messages got no answer in time.
    #[error("the kernel did not answer message {seq} within {timeout:?}")]
    NoAnswer { seq: u32, timeout: Duration },
    /// The kernel refused the request: `index` is the refused message of a batch (`None`: the
    /// batch as a whole, or a single request).
    #[error("the kernel refused it: {}", io::Error::from_raw_os_error(*errno))]
    Refused { index: Option<usize>, errno: i32 },
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KernelNetlink;

// === impl KernelNetlink ===

impl Netlink for KernelNetlink {
    fn commit(&self, batch: &NftBatch) -> Result<(), NetlinkError> {
        let socket = open(Some(netlink::NETFILTER), "NETLINK_NETFILTER")?;
        let acked = (0..batch.messages().len()).map(|index| NftBatch::seq_of(FIRST_SEQ, index));
        let collector = Collector::new(acked, Some(FIRST_SEQ));
        let outcome = exchange(&socket, &batch.encode(FIRST_SEQ), collector)?;
        outcome.map_err(|Refusal { seq, errno }| NetlinkError::Refused {
            index: batch.index_of(FIRST_SEQ, seq),
            errno,
        })
    }

    fn route(&self, request: RouteRequest) -> Result<(), NetlinkError> {
        // NETLINK_ROUTE is protocol 0, which rustix spells `None`.
        let socket = open(None, "NETLINK_ROUTE")?;
        let collector = Collector::new([FIRST_SEQ], None);
        let outcome = exchange(&socket, &request.encode(FIRST_SEQ), collector)?;
        outcome.map_err(|Refusal { errno, .. }| NetlinkError::Refused { index: None, errno })
    }
}

fn open(protocol: Option<Protocol>, name: &'static str) -> Result<OwnedFd, NetlinkError> {
    let socket = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        protocol,
    )
    .map_err(|e| NetlinkError::Open(name, e.into()))?;
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(ANSWER_TIMEOUT),
    )
    .map_err(|e| NetlinkError::Open(name, e.into()))?;
    Ok(socket)
}

/// Sends `request` and reads answers until `collector` is settled.
fn exchange(
    socket: &OwnedFd,
    request: &[u8],
    mut collector: Collector,
) -> Result<Result<(), Refusal>, NetlinkError> {
    let kernel = SocketAddrNetlink::new(0, 0);
    let sent = rustix::net::sendto(socket, request, SendFlags::empty(), &kernel)
        .map_err(|e| NetlinkError::Send(e.into()))?;
    if sent != request.len() {
        return Err(NetlinkError::Send(io::Error::new(io::ErrorKind::WriteZero, "short send")));
    }
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let Some(datagram) = receive(socket, &mut buf)? else {
            return timed_out(&collector);
        };
        for answer in parse_datagram(datagram)? {
            if let Progress::Settled(outcome) = collector.feed(answer) {
                return Ok(outcome);
            }
        }
    }
}

/// One datagram from the kernel (others are dropped), or `None` when the timeout passed.
fn receive<'b>(socket: &OwnedFd, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, NetlinkError> {
    loop {
        match rustix::net::recvfrom(socket, &mut *buf, RecvFlags::TRUNC) {
            Ok((_, len, _)) if len > buf.len() => return Err(MalformedAnswer::Truncated.into()),
            Ok((_, len, from)) if from_kernel(from.as_ref()) => return Ok(Some(&buf[..len])),
            Ok(_) | Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(None),
            Err(e) => return Err(NetlinkError::Recv(e.into())),
        }
    }
}

fn from_kernel(from: Option<&rustix::net::SocketAddrAny>) -> bool {
    from.and_then(|addr| SocketAddrNetlink::try_from(addr.clone()).ok())
        .is_some_and(|addr| addr.pid() == 0)
}

fn timed_out(collector: &Collector) -> Result<Result<(), Refusal>, NetlinkError> {
    if let Some(refusal) = collector.refusal() {
        return Ok(Err(refusal));
    }
    let seq = collector.pending().next().unwrap_or(FIRST_SEQ);
    Err(NetlinkError::NoAnswer { seq, timeout: ANSWER_TIMEOUT })
}

/// Whether `errno` means the kernel lacks what a message asks for: an unknown expression or
/// chain type (`ENOENT`, after module autoload failed), or an operation or family it was built
/// without.
pub(crate) fn is_unsupported(errno: i32) -> bool {
    [Errno::NOENT, Errno::OPNOTSUPP, Errno::AFNOSUPPORT, Errno::PROTONOSUPPORT]
        .iter()
        .any(|unsupported| unsupported.raw_os_error() == errno)
}
