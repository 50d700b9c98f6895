//! The optional authoritative stub DNS server (`DNS_STUB=1`): answers `A`/`AAAA` queries from a
//! [`Zone`] on UDP and TCP, so the fake internet has its own resolver and nothing ever asks a
//! public one.
//!
//! [`answer`] is the pure part (bytes in, bytes out); [`serve_udp`] and [`serve_tcp`] move the
//! bytes and log one line per query at `info`. What it answers:
//!
//! * a listed name: `NOERROR`, authoritative, with its records of the asked type (possibly none);
//!   `ANY` gets every address;
//! * an unlisted name: `NXDOMAIN`;
//! * a class other than IN: `REFUSED`; an opcode other than QUERY: `NOTIMP`; not exactly one
//!   question, or an unparsable query with a readable header: `FORMERR`;
//! * over UDP, an answer over 512 bytes is replaced by an empty one with `TC` set (EDNS is not
//!   spoken), so the client retries over TCP. Messages that are responses are never answered.
//!
//! Every record carries a TTL of [`TTL`] seconds.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tracing::{Instrument, debug, debug_span, info, warn};
use wharf_wire::dns::{
    self, Answer, CLASS_IN, DnsError, FLAG_QR, FLAG_TC, Query, Reply, rcode, rtype,
};

use crate::dns_client::{read_tcp_message, write_tcp_message};
use crate::server::accept_backoff;
use crate::zone::{Lookup, Zone};

/// The TTL of every record, in seconds.
pub const TTL: u32 = 60;
/// The largest answer sent over UDP (RFC 1035 §4.2.1, no EDNS).
pub const MAX_UDP_ANSWER: usize = 512;
/// How long a TCP connection may stay idle between queries.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

const OPCODE_MASK: u16 = 0x7800;

/// The transport a query came on, which bounds the answer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way; answers over [`MAX_UDP_ANSWER`] bytes are truncated.
    Udp,
    /// Length-prefixed messages on a stream.
    Tcp,
}

/// An answer to send, and what to log about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The response message.
    pub bytes: Vec<u8>,
    /// The question answered, if the query had exactly one.
    pub question: Option<(String, u16)>,
    /// The response code.
    pub rcode: u8,
    /// The addresses answered.
    pub ips: Vec<IpAddr>,
    /// Whether the answer was truncated to fit UDP.
    pub truncated: bool,
}

// === impl Transport ===

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

// === impl Answered ===

impl Answered {
    fn log(&self, transport: Transport, client: SocketAddr) {
        let (name, qtype) = match &self.question {
            Some((name, qtype)) => (name.as_str(), type_name(*qtype)),
            None => ("-", Cow::Borrowed("-")),
        };
        info!(
            transport = %transport.as_str(),
            client = %client,
            name = %name,
            qtype = %qtype,
            rcode = %rcode_name(self.rcode),
            answer = %IpList(&self.ips),
            truncated = self.truncated,
            "dns query"
        );
    }
}

/// The answer to the message in `buf`, or `None` if it must not be answered (a response, or too
/// short to have a header).
pub fn answer(zone: &Zone, buf: &[u8], transport: Transport) -> Option<Answered> {
    let query = match dns::parse_query(buf) {
        Ok(query) => query,
        Err(DnsError::NotAQuery) => return None,
        Err(err) => {
            debug!(error = %err, "malformed dns query");
            let query = header_only(buf)?;
            return finish(&query, None, rcode::FORMERR, Vec::new(), transport);
        }
    };
    let question = match query.questions.as_slice() {
        [question] => question.clone(),
        _ => return finish(&query, None, rcode::FORMERR, Vec::new(), transport),
    };
    let named = Some((question.name.clone(), question.qtype));
    if query.flags & OPCODE_MASK != 0 {
        return finish(&query, named, rcode::NOTIMP, Vec::new(), transport);
    }
    if question.qclass != CLASS_IN {
        return finish(&query, named, rcode::REFUSED, Vec::new(), transport);
    }
    match zone.lookup(&question.name, question.qtype) {
        Lookup::NxDomain => finish(&query, named, rcode::NXDOMAIN, Vec::new(), transport),
        Lookup::Found(ips) => finish(&query, named, rcode::NOERROR, ips, transport),
    }
}

/// Answers queries on `socket` forever.
pub async fn serve_udp(socket: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) => {
                warn!(error = %err, "dns udp receive failed; pausing");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(answered) = answer(&zone, buf.get(..len).unwrap_or_default(), Transport::Udp)
        else {
            debug!(client = %peer, "dropping a dns message that is not a query");
            continue;
        };
        answered.log(Transport::Udp, peer);
        if let Err(err) = socket.send_to(&answered.bytes, peer).await {
            debug!(client = %peer, error = %err, "dns udp answer failed");
        }
    }
}

/// Accepts DNS-over-TCP connections forever, one task each.
pub async fn serve_tcp(listener: TcpListener, zone: Arc<Zone>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let span = debug_span!("dns_tcp", client.addr = %peer);
                let zone = zone.clone();
                tokio::spawn(
                    async move {
                        if let Err(err) = serve_tcp_connection(stream, peer, &zone).await {
                            debug!(error = %err, "dns tcp connection failed");
                        }
                    }
                    .instrument(span),
                );
            }
            Err(err) => accept_backoff(&err).await,
        }
    }
}

/// Answers queries on one connection, in order, until the client closes it, stays idle for
/// [`TCP_IDLE_TIMEOUT`], or sends something that cannot be answered.
async fn serve_tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    zone: &Zone,
) -> io::Result<()> {
    loop {
        let message =
            match tokio::time::timeout(TCP_IDLE_TIMEOUT, read_tcp_message(&mut stream)).await {
                Ok(Ok(Some(message))) => message,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(err)) => return Err(err),
                Err(_elapsed) => {
                    debug!("dns tcp connection idle; closing");
                    return Ok(());
                }
            };
        let Some(answered) = answer(zone, &message, Transport::Tcp) else {
            debug!("closing on a dns message that is not a query");
            return Ok(());
        };
        answered.log(Transport::Tcp, peer);
        write_tcp_message(&mut stream, &answered.bytes).await?;
    }
}

/// A query with no questions carrying `buf`'s id and flags, to answer FORMERR, if `buf` has a
/// header and is not a response.
fn header_only(buf: &[u8]) -> Option<Query> {
    let header = buf.get(..12)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let flags = u16::from_be_bytes([header[2], header[3]]);
    (flags & FLAG_QR == 0).then(|| Query { id, flags, questions: Vec::new() })
}

fn finish(
    query: &Query,
    question: Option<(String, u16)>,
    code: u8,
    ips: Vec<IpAddr>,
    transport: Transport,
) -> Option<Answered> {
    let owner = question.as_ref().map(|(name, _)| name.as_str()).unwrap_or_default();
    let answers: Vec<Answer> = ips.iter().map(|ip| Answer::ip(owner, *ip, TTL)).collect();
    let encode = |answers: &[Answer]| {
        dns::encode_answer(query, &Reply { rcode: code, authoritative: true, answers })
    };
    let bytes = match encode(&answers) {
        Ok(bytes) => bytes,
        Err(err) => {
            // Only a question name that parsed but cannot be re-encoded gets here.
            debug!(error = %err, "cannot encode the dns answer");
            return None;
        }
    };
    if transport == Transport::Udp && bytes.len() > MAX_UDP_ANSWER {
        let mut bytes = encode(&[]).ok()?;
        if let Some(high) = bytes.get_mut(2) {
            *high |= (FLAG_TC >> 8) as u8;
        }
        return Some(Answered { bytes, question, rcode: code, ips: Vec::new(), truncated: true });
    }
    Some(Answered { bytes, question, rcode: code, ips, truncated: false })
}

/// A record type's mnemonic, or `TYPE<n>` (RFC 3597).
pub fn type_name(qtype: u16) -> Cow<'static, str> {
    let name = match qtype {
        rtype::A => "A",
        2 => "NS",
        rtype::CNAME => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        rtype::AAAA => "AAAA",
        33 => "SRV",
        64 => "SVCB",
        65 => "HTTPS",
        rtype::ANY => "ANY",
        other => return Cow::Owned(format!("TYPE{other}")),
    };
    Cow::Borrowed(name)
}

/// A response code's mnemonic, or `RCODE<n>`.
pub fn rcode_name(code: u8) -> Cow<'static, str> {
    let name = match code {
        rcode::NOERROR => "NOERROR",
        rcode::FORMERR => "FORMERR",
        rcode::SERVFAIL => "SERVFAIL",
        rcode::NXDOMAIN => "NXDOMAIN",
        rcode::NOTIMP => "NOTIMP",
        rcode::REFUSED => "REFUSED",
        other => return Cow::Owned(format!("RCODE{other}")),
    };
    Cow::Borrowed(name)
}

/// Addresses joined with `,`, or `-` for none.
struct IpList<'a>(&'a [IpAddr]);

impl fmt::Display for IpList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, ip) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{ip}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        "example.com=10.201.0.10,v6.example.com=2001:db8::10".parse().unwrap()
    }

    /// `"<rcode> <flags> <answers>"` for the answer to `query`, or `"dropped"`.
    fn check(query: &[u8], transport: Transport, expect: &str) {
        let got = match answer(&zone(), query, transport) {
            None => "dropped".to_owned(),
            Some(answered) => {
                let response = dns::parse_response(&answered.bytes).unwrap();
                let ips: Vec<String> = response.ips().map(|ip| ip.to_string()).collect();
                let flags = [(dns::FLAG_AA, "aa"), (FLAG_TC, "tc")]
                    .iter()
                    .filter(|(bit, _)| response.flags & bit != 0)
                    .map(|(_, name)| *name)
                    .collect::<Vec<_>>()
                    .join("+");
                format!("{} {flags} [{}]", rcode_name(response.rcode), ips.join(","))
            }
        };
        assert_eq!(got, expect);
    }

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        dns::encode_query(0x1234, name, qtype).unwrap()
    }

    #[test]
    fn answers_from_the_zone() {
        use Transport::{Tcp, Udp};
        check(&query("example.com", rtype::A), Udp, "NOERROR aa [10.201.0.10]");
        check(&query("Example.COM", rtype::A), Tcp, "NOERROR aa [10.201.0.10]");
        check(&query("example.com", rtype::AAAA), Udp, "NOERROR aa []");
        check(&query("v6.example.com", rtype::AAAA), Udp, "NOERROR aa [2001:db8::10]");
        check(&query("v6.example.com", rtype::ANY), Udp, "NOERROR aa [2001:db8::10]");
        check(&query("example.com", 15), Udp, "NOERROR aa []");
        check(&query("nope.example.com", rtype::A), Udp, "NXDOMAIN aa []");
    }

    #[test]
    fn odd_queries() {
        use Transport::Udp;
        let mut chaos = query("example.com", rtype::A);
        let len = chaos.len();
        chaos[len - 1] = 3; // class CH
        check(&chaos, Udp, "REFUSED aa []");
        let mut status = query("example.com", rtype::A);
        status[2] |= 0x10; // opcode 2, STATUS
        check(&status, Udp, "NOTIMP aa []");
        let mut two = query("example.com", rtype::A);
        two[5] = 2; // claims two questions, has one
        check(&two, Udp, "FORMERR aa []");
        let mut none = query("example.com", rtype::A);
        none.truncate(12);
        none[5] = 0;
        check(&none, Udp, "FORMERR aa []");
        check(&query("example.com", rtype::A)[..11], Udp, "dropped");
        let response = answer(&zone(), &query("example.com", rtype::A), Udp).unwrap();
        check(&response.bytes, Udp, "dropped");
    }

    #[test]
    fn large_udp_answers_are_truncated() {
        let many: Vec<String> = (0..40).map(|i| format!("big.test=10.0.0.{i}")).collect();
        let zone: Zone = many.join(",").parse().unwrap();
        let q = query("big.test", rtype::A);
        let udp = answer(&zone, &q, Transport::Udp).unwrap();
        assert!(udp.truncated);
        let response = dns::parse_response(&udp.bytes).unwrap();
        assert_eq!((response.flags & FLAG_TC, response.answers.len()), (FLAG_TC, 0));
        let tcp = answer(&zone, &q, Transport::Tcp).unwrap();
        assert_eq!(dns::parse_response(&tcp.bytes).unwrap().answers.len(), 40);
    }

    #[test]
    fn names_for_logs() {
        assert_eq!(type_name(rtype::AAAA), "AAAA");
        assert_eq!(type_name(99), "TYPE99");
        assert_eq!(rcode_name(rcode::NXDOMAIN), "NXDOMAIN");
        assert_eq!(IpList(&[]).to_string(), "-");
        let ips = ["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(IpList(&ips).to_string(), "10.0.0.1,::1");
    }
}
