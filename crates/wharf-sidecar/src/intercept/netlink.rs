//! Netlink framing (PURE): writing messages and attributes, reading the kernel's answers, and
//! following those answers until a request is settled.
//!
//! Every message we send asks for an acknowledgement (`NLM_F_ACK`), so the kernel answers each
//! with an `NLMSG_ERROR` whose code is 0 (done) or a negative errno (refused). nf_tables sends
//! those answers once the whole batch has been processed, for every message, whether the batch
//! was committed or aborted; an error about the batch as a whole names the batch-begin message.

use std::collections::BTreeSet;

/// Length of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_ERROR`: an acknowledgement or an error.
const NLMSG_ERROR: u16 = 2;

/// `NLM_F_REQUEST`.
pub(crate) const NLM_F_REQUEST: u16 = 0x001;
/// `NLM_F_ACK`.
pub(crate) const NLM_F_ACK: u16 = 0x004;
/// `NLM_F_REPLACE`.
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
/// `NLM_F_EXCL`.
pub(crate) const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`.
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// `NLA_F_NESTED`, set on nested attributes as libmnl does.
const NLA_F_NESTED: u16 = 0x8000;

/// Writes netlink messages, back to back, into one buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

/// One answer from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `NLMSG_ERROR` with code 0: the message with this sequence number was accepted.
    Ack { seq: u32 },
    /// `NLMSG_ERROR` with a negative code: the message was refused with `errno`.
    Error { seq: u32, errno: i32 },
    /// Any other message (`NLMSG_DONE`, a notification): not ours to act on.
    Other { seq: u32, kind: u16 },
}

/// An answer that cannot be a netlink message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MalformedAnswer {
    /// The length field is shorter than the header it is part of.
    #[error("netlink message length {0} is shorter than its header")]
    Length(u32),
    /// An `NLMSG_ERROR` too short to hold its error code.
    #[error("netlink error message of {0} bytes has no error code")]
    ShortError(u32),
    /// A datagram ended in the middle of a message.
    #[error("netlink datagram ends inside a message")]
    Truncated,
}

/// A message the kernel refused: its sequence number and the errno (positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) seq: u32,
    pub(crate) errno: i32,
}

/// Follows the answers to one request until each acknowledged message has its answer.
#[derive(Debug)]
pub(crate) struct Collector {
    pending: BTreeSet<u32>,
    batch_seq: Option<u32>,
    refusal: Option<Refusal>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Answers are still due.
    Waiting,
    /// Settled: accepted, or refused (the refusal with the lowest sequence number, the cause).
    Settled(Result<(), Refusal>),
}

// === impl Writer ===

impl Writer {
    /// Appends one message: header, then whatever `body` writes; the length is filled in.
    pub(crate) fn message(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        body: impl FnOnce(&mut Writer),
    ) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        // The port id: 0, the kernel's.
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        body(self);
        self.pad();
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends bytes as they are (a family header).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends an attribute, padded to 4 bytes.
    pub(crate) fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = attr_len(4 + data.len());
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// Appends a big-endian `u32` attribute, as nf_tables wants them.
    pub(crate) fn attr_u32_be(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// Appends a host-endian `u32` attribute, as rtnetlink wants them.
    pub(crate) fn attr_u32_ne(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_ne_bytes());
    }

    /// Appends a NUL-terminated string attribute.
    pub(crate) fn attr_str(&mut self, kind: u16, value: &str) {
        let mut data = Vec::with_capacity(value.len() + 1);
        data.extend_from_slice(value.as_bytes());
        data.push(0);
        self.attr(kind, &data);
    }

    /// Appends a nested attribute holding whatever `body` writes.
    pub(crate) fn nested(&mut self, kind: u16, body: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        body(self);
        let len = attr_len(self.buf.len() - start);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The bytes written.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// An attribute length; an oversized one is written as the maximum, which the kernel refuses
/// (our attributes are a few hundred bytes at most).
fn attr_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

// === answers ===

/// Parses the answer at the start of `buf`: `None` while `buf` holds only part of it, else the
/// answer and how many bytes it took (padding included).
pub(crate) fn parse_answer(buf: &[u8]) -> Result<Option<(Answer, usize)>, MalformedAnswer> {
    let Some(header) = buf.get(..NLMSG_HDRLEN) else {
        return Ok(None);
    };
    let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
    let kind = u16::from_ne_bytes([header[4], header[5]]);
    let seq = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
    let len_usize = len as usize;
    if len_usize < NLMSG_HDRLEN {
        return Err(MalformedAnswer::Length(len));
    }
    let Some(message) = buf.get(..len_usize) else {
        return Ok(None);
    };
    let used = align4(len_usize).min(buf.len());
    if kind != NLMSG_ERROR {
        return Ok(Some((Answer::Other { seq, kind }, used)));
    }
    let code = message
        .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(MalformedAnswer::ShortError(len))?;
    let answer = match code {
        0 => Answer::Ack { seq },
        code => Answer::Error { seq, errno: code.saturating_neg() },
    };
    Ok(Some((answer, used)))
}

/// Parses a whole datagram: every answer in it, which must end on a message boundary.
pub(crate) fn parse_datagram(mut buf: &[u8]) -> Result<Vec<Answer>, MalformedAnswer> {
    let mut answers = Vec::new();
    while !buf.is_empty() {
        let (answer, used) = parse_answer(buf)?.ok_or(MalformedAnswer::Truncated)?;
        answers.push(answer);
        buf = &buf[used..];
    }
    Ok(answers)
}

fn align4(len: usize) -> usize {
    len.div_ceil(4) * 4
}

// === impl Collector ===

impl Collector {
    /// Waits for an answer to each of `acked`; an error about `batch_seq` (the batch-begin
    /// message, for nf_tables) settles the request at once.
    pub(crate) fn new(acked: impl IntoIterator<Item = u32>, batch_seq: Option<u32>) -> Collector {
        Collector { pending: acked.into_iter().collect(), batch_seq, refusal: None }
    }

    /// Takes one answer into account.
    pub(crate) fn feed(&mut self, answer: Answer) -> Progress {
        match answer {
            Answer::Error { seq, errno } if Some(seq) == self.batch_seq => {
                return Progress::Settled(Err(Refusal { seq, errno }));
            }
            Answer::Ack { seq } => {
                self.pending.remove(&seq);
            }
            Answer::Error { seq, errno } => {
                if self.pending.remove(&seq) {
                    self.refuse(Refusal { seq, errno });
                }
            }
            Answer::Other { .. } => {}
        }
        if self.pending.is_empty() { Progress::Settled(self.outcome()) } else { Progress::Waiting }
    }

    /// The refusal seen so far, if any: what to report when the remaining answers never come.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    /// The sequence numbers still waiting for an answer.
    pub(crate) fn pending(&self) -> impl Iterator<Item = u32> + '_ {
        self.pending.iter().copied()
    }

    fn refuse(&mut self, refusal: Refusal) {
        if self.refusal.is_none_or(|first| refusal.seq < first.seq) {
            self.refusal = Some(refusal);
        }
    }

    fn outcome(&self) -> Result<(), Refusal> {
        match self.refusal {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
