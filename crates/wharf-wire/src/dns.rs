//! DNS messages (RFC 1035), sans-IO: encode and parse queries, parse and encode answers.
//!
//! The test app uses this to resolve names without glibc, and the sidecar to answer the queries it
//! intercepts on UDP/53. DNS over UDP carries whole messages, so unlike [`crate::head`] there is no
//! "incomplete, wait for more": a short buffer is [`DnsError::Truncated`].
//!
//! Names are plain strings: lowercase, no trailing dot, with labels joined by `.`. A label byte
//! that is not printable ASCII, or is `.` or `\`, is written as `\DDD` (decimal), as in zone
//! files, and [`encode_query`] reads that escape back. The root name is the empty string.
//!
//! Parsing never panics and does bounded work on any input: every compression pointer must point
//! before the part of the name read so far (so pointers cannot loop), a name follows at most
//! [`MAX_POINTERS`] pointers, and a name is at most [`MAX_NAME_LEN`] bytes on the wire.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record types (`TYPE` and `QTYPE` values) this module knows by name.
pub mod rtype {
    /// An IPv4 address.
    pub const A: u16 = 1;
    /// A canonical name (alias); its data is kept raw.
    pub const CNAME: u16 = 5;
    /// An IPv6 address.
    pub const AAAA: u16 = 28;
    /// The EDNS pseudo-record, found in the additional section.
    pub const OPT: u16 = 41;
    /// Any type (`QTYPE` only).
    pub const ANY: u16 = 255;
}

/// Response codes (the low four bits of the header flags).
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// The server could not interpret the query.
    pub const FORMERR: u8 = 1;
    /// The server failed to process the query.
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// The server does not support this kind of query.
    pub const NOTIMP: u8 = 4;
    /// The server refuses to answer.
    pub const REFUSED: u8 = 5;
}

/// The Internet class, the only one in use.
pub const CLASS_IN: u16 = 1;
/// Header flag: the message is a response.
pub const FLAG_QR: u16 = 0x8000;
/// Header flag: the answer is authoritative.
pub const FLAG_AA: u16 = 0x0400;
/// Header flag: the message was truncated to fit the transport.
pub const FLAG_TC: u16 = 0x0200;
/// Header flag: recursion desired.
pub const FLAG_RD: u16 = 0x0100;
/// Header flag: recursion available.
pub const FLAG_RA: u16 = 0x0080;
/// The longest name, in bytes on the wire (length octets included).
pub const MAX_NAME_LEN: usize = 255;
/// The longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 63;
/// The most compression pointers one name may follow.
pub const MAX_POINTERS: usize = 32;

const HEADER_LEN: usize = 12;
const OPCODE_MASK: u16 = 0x7800;
/// A compression pointer to offset 12, where the first question's name starts.
const POINTER_TO_FIRST_QUESTION: [u8; 2] = [0xC0, 0x0C];

/// Why bytes are not a DNS message, or a name cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The message ends before a field it announces.
    #[error("dns message truncated")]
    Truncated,
    /// A label uses the reserved `01` or `10` length prefix.
    #[error("reserved label type at byte {at}")]
    BadLabel {
        /// Offset of the length octet.
        at: usize,
    },
    /// A compression pointer does not point before the name read so far, or a name follows
    /// more than [`MAX_POINTERS`] pointers.
    #[error("compression pointer loop at byte {at}")]
    PointerLoop {
        /// Offset of the offending pointer.
        at: usize,
    },
    /// A label is longer than [`MAX_LABEL_LEN`] bytes.
    #[error("label of {len} bytes exceeds {MAX_LABEL_LEN}")]
    LabelTooLong {
        /// The label's length.
        len: usize,
    },
    /// A name is longer than [`MAX_NAME_LEN`] bytes on the wire.
    #[error("name exceeds {MAX_NAME_LEN} bytes")]
    NameTooLong,
    /// A name to encode has an empty label, as in `a..b` or `.a`.
    #[error("empty label in name {0:?}")]
    EmptyLabel(String),
    /// A name to encode has a `\` not followed by a character or three digits up to 255.
    #[error("bad escape in name {0:?}")]
    BadEscape(String),
    /// `parse_query` was given a response.
    #[error("expected a dns query, got a response")]
    NotAQuery,
    /// `parse_response` was given a query.
    #[error("expected a dns response, got a query")]
    NotAResponse,
    /// An `A` or `AAAA` record has data of the wrong length.
    #[error("record of type {rtype} has {len} bytes of data")]
    BadRdata {
        /// The record type.
        rtype: u16,
        /// The data length.
        len: usize,
    },
    /// Record data to encode is longer than 65535 bytes.
    #[error("record data of {len} bytes exceeds 65535")]
    DataTooLong {
        /// The data length.
        len: usize,
    },
    /// More records than a header can count.
    #[error("more than 65535 records in one section")]
    TooManyRecords,
}

/// One entry of the question section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// The name asked about, lowercase, without the trailing dot.
    pub name: String,
    /// The type asked for, e.g. [`rtype::A`].
    pub qtype: u16,
    /// The class, normally [`CLASS_IN`].
    pub qclass: u16,
}

/// A parsed query: what a server needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The transaction id, echoed by the answer.
    pub id: u16,
    /// The header flags (opcode, `RD`, …).
    pub flags: u16,
    /// The questions, almost always exactly one.
    pub questions: Vec<Question>,
}

/// A parsed response: its answer section, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The transaction id of the query it answers.
    pub id: u16,
    /// The header flags (`QR`, `AA`, `TC`, `RD`, `RA`, the rcode bits).
    pub flags: u16,
    /// The response code, e.g. [`rcode::NXDOMAIN`].
    pub rcode: u8,
    /// The echoed questions.
    pub questions: Vec<Question>,
    /// The answer section. The authority and additional sections are checked but not kept.
    pub answers: Vec<Answer>,
}

/// One resource record of an answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The record's owner name, lowercase, without the trailing dot.
    pub name: String,
    /// The record type.
    pub rtype: u16,
    /// Time to live, in seconds.
    pub ttl: u32,
    /// The record data.
    pub data: RData,
}

/// Record data: addresses decoded, everything else raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// An `A` record of class IN.
    A(Ipv4Addr),
    /// An `AAAA` record of class IN.
    Aaaa(Ipv6Addr),
    /// Any other record, as the bytes on the wire. Names inside may be compression pointers into
    /// the message they came from.
    Other(Vec<u8>),
}

/// What a server answers to a [`Query`], for [`encode_answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The response code, e.g. [`rcode::NOERROR`].
    pub rcode: u8,
    /// Whether to set the `AA` bit (the sidecar is the authority for the names it synthesises).
    pub authoritative: bool,
    /// The answer section. Records are written with class IN.
    pub answers: &'a [Answer],
}

// === impl Answer ===

impl Answer {
    /// An `A` or `AAAA` record for `ip`, whichever fits.
    pub fn ip(name: &str, ip: IpAddr, ttl: u32) -> Answer {
        let (rtype, data) = match ip {
            IpAddr::V4(v4) => (rtype::A, RData::A(v4)),
            IpAddr::V6(v6) => (rtype::AAAA, RData::Aaaa(v6)),
        };
        Answer { name: normalize(name), rtype, ttl, data }
    }
}

// === impl RData ===

impl RData {
    /// The address, for `A` and `AAAA` data.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            RData::A(v4) => Some(IpAddr::V4(*v4)),
            RData::Aaaa(v6) => Some(IpAddr::V6(*v6)),
            RData::Other(_) => None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            RData::A(v4) => v4.octets().to_vec(),
            RData::Aaaa(v6) => v6.octets().to_vec(),
            RData::Other(raw) => raw.clone(),
        }
    }
}

// === impl Response ===

impl Response {
    /// The addresses in the answer section, in order.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.answers.iter().filter_map(|a| a.data.ip())
    }
}

/// Encodes a recursive query (`RD` set) for one name and type, class IN.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    put_header(&mut out, [id, FLAG_RD, 1, 0, 0, 0]);
    put_name(&mut out, name)?;
    put_u16(&mut out, qtype);
    put_u16(&mut out, CLASS_IN);
    Ok(out)
}

/// Parses a query. Every section is checked, but only the questions are kept.
pub fn parse_query(buf: &[u8]) -> Result<Query, DnsError> {
    let mut r = Reader::new(buf);
    let header = r.header()?;
    if header.flags & FLAG_QR != 0 {
        return Err(DnsError::NotAQuery);
    }
    let questions = r.questions(header.counts[0])?;
    r.skip_records(header.records_after_answers() + u32::from(header.counts[1]))?;
    Ok(Query { id: header.id, flags: header.flags, questions })
}

/// Parses a response. Every section is checked, but only the questions and answers are kept.
pub fn parse_response(buf: &[u8]) -> Result<Response, DnsError> {
    let mut r = Reader::new(buf);
    let header = r.header()?;
    if header.flags & FLAG_QR == 0 {
        return Err(DnsError::NotAResponse);
    }
    let questions = r.questions(header.counts[0])?;
    let answers = r.records(header.counts[1])?;
    r.skip_records(header.records_after_answers())?;
    // The rcode's low four bits; EDNS extended rcodes are not combined in.
    let rcode = (header.flags & 0x000F) as u8;
    Ok(Response { id: header.id, flags: header.flags, rcode, questions, answers })
}

/// Encodes the answer to `query`: same id, opcode and `RD`, `RA` set, questions echoed.
///
/// An answer whose name equals the first question's is written as a compression pointer to it.
pub fn encode_answer(query: &Query, reply: &Reply<'_>) -> Result<Vec<u8>, DnsError> {
    let mut flags = FLAG_QR | FLAG_RA | (query.flags & (OPCODE_MASK | FLAG_RD));
    if reply.authoritative {
        flags |= FLAG_AA;
    }
    flags |= u16::from(reply.rcode & 0x0F);
    let mut out = Vec::with_capacity(512);
    let qdcount = count(query.questions.len())?;
    put_header(&mut out, [query.id, flags, qdcount, count(reply.answers.len())?, 0, 0]);
    for q in &query.questions {
        put_name(&mut out, &q.name)?;
        put_u16(&mut out, q.qtype);
        put_u16(&mut out, q.qclass);
    }
    let first = query.questions.first().map(|q| normalize(&q.name));
    for answer in reply.answers {
        put_record(&mut out, answer, first.as_deref())?;
    }
    Ok(out)
}

/// Encodes an authoritative "no such name" answer to `query`.
pub fn encode_nxdomain(query: &Query) -> Result<Vec<u8>, DnsError> {
    encode_answer(query, &Reply { rcode: rcode::NXDOMAIN, authoritative: true, answers: &[] })
}

// === encoding ===

fn count(len: usize) -> Result<u16, DnsError> {
    u16::try_from(len).map_err(|_| DnsError::TooManyRecords)
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes id, flags and the four section counts.
fn put_header(out: &mut Vec<u8>, fields: [u16; 6]) {
    for field in fields {
        put_u16(out, field);
    }
}

fn put_record(out: &mut Vec<u8>, answer: &Answer, first: Option<&str>) -> Result<(), DnsError> {
    if first == Some(normalize(&answer.name).as_str()) {
        out.extend_from_slice(&POINTER_TO_FIRST_QUESTION);
    } else {
        put_name(out, &answer.name)?;
    }
    let data = answer.data.bytes();
    put_u16(out, answer.rtype);
    put_u16(out, CLASS_IN);
    out.extend_from_slice(&answer.ttl.to_be_bytes());
    put_u16(out, u16::try_from(data.len()).map_err(|_| DnsError::DataTooLong { len: data.len() })?);
    out.extend_from_slice(&data);
    Ok(())
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), DnsError> {
    let labels = split_labels(name)?;
    let wire_len: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    if wire_len > MAX_NAME_LEN {
        return Err(DnsError::NameTooLong);
    }
    for label in labels {
        // Checked in `split_labels`: a label is at most 63 bytes.
        out.push(label.len() as u8);
        out.extend_from_slice(&label);
    }
    out.push(0);
    Ok(())
}

/// Splits a textual name into raw labels, reading `\DDD` and `\X` escapes.
fn split_labels(name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
    if name.is_empty() || name == "." {
        return Ok(Vec::new());
    }
    let bytes = name.as_bytes();
    let mut labels = Vec::new();
    let mut label = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'.' if label.is_empty() => return Err(DnsError::EmptyLabel(name.to_owned())),
            b'.' => labels.push(std::mem::take(&mut label)),
            b'\\' => {
                let (byte, used) = unescape(bytes.get(i..).unwrap_or_default())
                    .ok_or_else(|| DnsError::BadEscape(name.to_owned()))?;
                label.push(byte);
                i += used;
            }
            _ => label.push(b),
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DnsError::LabelTooLong { len: label.len() });
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    Ok(labels)
}

/// Reads the escape after a `\`: three decimal digits (at most 255), or one literal byte.
fn unescape(rest: &[u8]) -> Option<(u8, usize)> {
    match rest {
        [a, b, c, ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            let value = [a, b, c].iter().fold(0u32, |acc, d| acc * 10 + u32::from(**d - b'0'));
            Some((u8::try_from(value).ok()?, 3))
        }
        [d, ..] if d.is_ascii_digit() => None,
        [b, ..] => Some((*b, 1)),
        [] => None,
    }
}

/// Lowercases a textual name and drops one trailing dot.
fn normalize(name: &str) -> String {
    let name = if name.ends_with("\\.") { name } else { name.strip_suffix('.').unwrap_or(name) };
    name.to_ascii_lowercase()
}

// === decoding ===

struct Header {
    id: u16,
    flags: u16,
    /// Question, answer, authority and additional counts.
    counts: [u16; 4],
}

impl Header {
    fn records_after_answers(&self) -> u32 {
        u32::from(self.counts[2]) + u32::from(self.counts[3])
    }
}

/// A cursor over a whole message; names may point anywhere before the cursor.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(msg: &'a [u8]) -> Reader<'a> {
        Reader { msg, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DnsError> {
        let end = self.pos.checked_add(n).ok_or(DnsError::Truncated)?;
        let slice = self.msg.get(self.pos..end).ok_or(DnsError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn header(&mut self) -> Result<Header, DnsError> {
        let id = self.u16()?;
        let flags = self.u16()?;
        let counts = [self.u16()?, self.u16()?, self.u16()?, self.u16()?];
        Ok(Header { id, flags, counts })
    }

    fn name(&mut self) -> Result<String, DnsError> {
        let (name, end) = decode_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }

    fn questions(&mut self, n: u16) -> Result<Vec<Question>, DnsError> {
        // No `with_capacity(n)`: the count is untrusted, the bytes are not.
        let mut questions = Vec::new();
        for _ in 0..n {
            let name = self.name()?;
            questions.push(Question { name, qtype: self.u16()?, qclass: self.u16()? });
        }
        Ok(questions)
    }

    fn records(&mut self, n: u16) -> Result<Vec<Answer>, DnsError> {
        let mut answers = Vec::new();
        for _ in 0..n {
            answers.push(self.record()?);
        }
        Ok(answers)
    }

    fn skip_records(&mut self, n: u32) -> Result<(), DnsError> {
        for _ in 0..n {
            self.record()?;
        }
        Ok(())
    }

    fn record(&mut self) -> Result<Answer, DnsError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        let ttl = self.u32()?;
        let len = usize::from(self.u16()?);
        let raw = self.bytes(len)?;
        let data = decode_rdata(rtype, class, raw)?;
        Ok(Answer { name, rtype, ttl, data })
    }
}

fn decode_rdata(rtype: u16, class: u16, raw: &[u8]) -> Result<RData, DnsError> {
    let bad = || DnsError::BadRdata { rtype, len: raw.len() };
    match (rtype, class) {
        (rtype::A, CLASS_IN) => {
            let octets: [u8; 4] = raw.try_into().map_err(|_| bad())?;
            Ok(RData::A(Ipv4Addr::from(octets)))
        }
        (rtype::AAAA, CLASS_IN) => {
            let octets: [u8; 16] = raw.try_into().map_err(|_| bad())?;
            Ok(RData::Aaaa(Ipv6Addr::from(octets)))
        }
        _ => Ok(RData::Other(raw.to_vec())),
    }
}

/// Decodes the name at `start`, following compression pointers. Returns the name and the offset
/// just after it in the original position (after the first pointer, if any).
fn decode_name(msg: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut pos = start;
    // Every pointer must land before `floor`, the lowest offset of this name read so far, so
    // the walk cannot revisit bytes: that is what rules out loops.
    let mut floor = start;
    let mut end = None;
    let mut wire_len = 1;
    let mut pointers = 0;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xC0 {
            0x00 if len == 0 => break,
            0x00 => {
                let label =
                    msg.get(pos + 1..pos + 1 + usize::from(len)).ok_or(DnsError::Truncated)?;
                wire_len += label.len() + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                push_label(&mut name, label);
                pos += 1 + label.len();
            }
            0xC0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                pointers += 1;
                if target >= floor || pointers > MAX_POINTERS {
                    return Err(DnsError::PointerLoop { at: pos });
                }
                end.get_or_insert(pos + 2);
                floor = target;
                pos = target;
            }
            _ => return Err(DnsError::BadLabel { at: pos }),
        }
    }
    Ok((name, end.unwrap_or(pos + 1)))
}

/// Appends a label to a textual name: lowercase, with `\DDD` for bytes that would be ambiguous.
fn push_label(name: &mut String, label: &[u8]) {
    if !name.is_empty() {
        name.push('.');
    }
    for &b in label {
        if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
            name.push(char::from(b.to_ascii_lowercase()));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(name, "\\{b:03}");
        }
    }
}

#[cfg(test)]
mod tests;
