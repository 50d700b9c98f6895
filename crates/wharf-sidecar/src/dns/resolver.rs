//! One DNS query, answered: the allow-list decision, forwarding, synthetic answers, the event.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;
use wharf_policy::{SYNTHETIC_TTL, SYNTHETIC_V4, SYNTHETIC_V6, allow_list_matches};
use wharf_wire::control::{DnsDecision, DnsEvent};
use wharf_wire::dns::{self, Answer, CLASS_IN, FLAG_QR, Query, Question, Reply, rcode, rtype};

use super::DnsParams;
use super::log::DnsLog;
use crate::egress_state::Egress;
use crate::marked::OwnMark;

/// How the app's query arrived, and so how it is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram.
    Udp,
    /// A length-prefixed message on a TCP connection.
    Tcp,
}

/// Answers queries by the egress state in force.
#[derive(Debug)]
pub(super) struct Resolver {
    egress: Egress,
    upstream: Option<SocketAddr>,
    forward_timeout: Duration,
    mark: OwnMark,
    log: DnsLog,
}

/// What was answered, for the app and for the event.
#[derive(Debug)]
struct Outcome {
    reply: Option<Vec<u8>>,
    decision: DnsDecision,
    addresses: Vec<IpAddr>,
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("no upstream resolver configured")]
    NoUpstream,
    #[error("no answer from {upstream} within {timeout:?}")]
    Timeout { upstream: SocketAddr, timeout: Duration },
    #[error("forwarding to {upstream}")]
    Io { upstream: SocketAddr, source: io::Error },
    #[error("unreadable answer from {upstream}")]
    Garbage { upstream: SocketAddr, source: dns::DnsError },
}

// === impl Resolver ===

impl Resolver {
    pub(super) fn new(params: &DnsParams, log: DnsLog) -> Resolver {
        Resolver {
            egress: params.egress.clone(),
            upstream: params.upstream.map(|u| u.addr()),
            forward_timeout: params.forward_timeout,
            mark: params.mark,
            log,
        }
    }

    /// The reply to `query`, or `None` when there is nothing sensible to answer.
    pub(super) async fn answer(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let started = Instant::now();
        let parsed = match dns::parse_query(query) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable dns query");
                return format_error(query);
            }
        };
        let Some(question) = parsed.questions.first().cloned() else {
            return format_error(query);
        };
        let state = self.egress.current();
        let rule = allow_list_matches(state.dns_allow(), &question.name).map(str::to_owned);
        let outcome = if state.internet_enabled() {
            self.forwarded(query, &parsed, &question, rule.is_some(), transport).await
        } else if rule.is_some() {
            synthetic(&parsed, &question)
        } else {
            nxdomain(&parsed)
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(
            name = %question.name,
            qtype = question.qtype,
            decision = ?outcome.decision,
            rule = rule.as_deref(),
            duration_ms,
            "dns answered"
        );
        self.log.record(DnsEvent {
            name: question.name,
            qtype: question.qtype,
            decision: outcome.decision,
            addresses: outcome.addresses,
            rule,
            duration_ms,
        });
        outcome.reply
    }

    async fn forwarded(
        &self,
        raw: &[u8],
        query: &Query,
        question: &Question,
        allowed: bool,
        transport: Transport,
    ) -> Outcome {
        let (answer, response) = match self.forward(raw, transport).await {
            Ok(forwarded) => forwarded,
            Err(e) => {
                tracing::debug!(error = %crate::egress::error_chain(&e), "dns forwarding failed");
                return server_failure(query);
            }
        };
        if response.rcode == rcode::NXDOMAIN && allowed {
            return synthetic(query, question);
        }
        Outcome {
            addresses: response.ips().collect(),
            reply: Some(answer),
            decision: DnsDecision::Forwarded,
        }
    }

    /// Sends `query` upstream as it is and returns the upstream's answer as it is, and read.
    async fn forward(
        &self,
        query: &[u8],
        transport: Transport,
    ) -> Result<(Vec<u8>, dns::Response), ForwardError> {
        let upstream = self.upstream.ok_or(ForwardError::NoUpstream)?;
        let exchange = async {
            match transport {
                Transport::Udp => self.exchange_udp(upstream, query).await,
                Transport::Tcp => self.exchange_tcp(upstream, query).await,
            }
        };
        let answer = match tokio::time::timeout(self.forward_timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(source)) => return Err(ForwardError::Io { upstream, source }),
            Err(_) => {
                return Err(ForwardError::Timeout { upstream, timeout: self.forward_timeout });
            }
        };
        match dns::parse_response(&answer) {
            Ok(response) => Ok((answer, response)),
            Err(source) => Err(ForwardError::Garbage { upstream, source }),
        }
    }

    async fn exchange_udp(&self, upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        let socket = self.mark.udp(upstream).await?;
        socket.send(query).await?;
        let mut buf = vec![0u8; 65535];
        loop {
            let len = socket.recv(&mut buf).await?;
            // The socket is connected, so only the upstream reaches it; still, a late answer to
            // nothing we asked is not this answer.
            if is_answer_to(&buf[..len], query) {
                buf.truncate(len);
                return Ok(buf);
            }
        }
    }

    async fn exchange_tcp(&self, upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        let len = u16::try_from(query.len()).map_err(|_| io::Error::other("query too long"))?;
        let mut stream = self.mark.connect(upstream).await?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut answer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut answer).await?;
        Ok(answer)
    }
}

/// Whether `answer` is a response carrying `query`'s transaction id.
fn is_answer_to(answer: &[u8], query: &[u8]) -> bool {
    let flags = answer.get(2..4).map(|f| u16::from_be_bytes([f[0], f[1]]));
    answer.get(..2) == query.get(..2) && flags.is_some_and(|f| f & FLAG_QR != 0)
}

/// The synthetic answer for an allowed name: authoritative, TTL 60.
fn synthetic(query: &Query, question: &Question) -> Outcome {
    let addresses: Vec<IpAddr> = match (question.qclass, question.qtype) {
        (CLASS_IN, rtype::A) => vec![SYNTHETIC_V4.into()],
        (CLASS_IN, rtype::AAAA) => vec![SYNTHETIC_V6.into()],
        (CLASS_IN, rtype::ANY) => vec![SYNTHETIC_V4.into(), SYNTHETIC_V6.into()],
        // The name "exists", without records of this type (NODATA).
        _ => Vec::new(),
    };
    let answers: Vec<Answer> =
        addresses.iter().map(|ip| Answer::ip(&question.name, *ip, SYNTHETIC_TTL)).collect();
    let reply = Reply { rcode: rcode::NOERROR, authoritative: true, answers: &answers };
    Outcome { reply: encode(query, &reply), decision: DnsDecision::Synthetic, addresses }
}

fn nxdomain(query: &Query) -> Outcome {
    let reply = Reply { rcode: rcode::NXDOMAIN, authoritative: true, answers: &[] };
    Outcome { reply: encode(query, &reply), decision: DnsDecision::Nxdomain, addresses: Vec::new() }
}

fn server_failure(query: &Query) -> Outcome {
    let reply = Reply { rcode: rcode::SERVFAIL, authoritative: false, answers: &[] };
    Outcome { reply: encode(query, &reply), decision: DnsDecision::Failed, addresses: Vec::new() }
}

fn encode(query: &Query, reply: &Reply<'_>) -> Option<Vec<u8>> {
    dns::encode_answer(query, reply)
        .inspect_err(|e| tracing::debug!(error = %e, "cannot encode the dns reply"))
        .ok()
}

/// FORMERR for a query that cannot be read, when at least its header can (never for a message
/// that is itself a response, so two servers cannot bounce errors at each other).
fn format_error(raw: &[u8]) -> Option<Vec<u8>> {
    let header = raw.get(..4)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let flags = u16::from_be_bytes([header[2], header[3]]);
    if flags & FLAG_QR != 0 {
        return None;
    }
    let query = Query { id, flags, questions: Vec::new() };
    encode(&query, &Reply { rcode: rcode::FORMERR, authoritative: false, answers: &[] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Query {
        dns::parse_query(&dns::encode_query(7, name, qtype).unwrap()).unwrap()
    }

    fn decoded(outcome: &Outcome) -> dns::Response {
        dns::parse_response(outcome.reply.as_ref().unwrap()).unwrap()
    }

    #[test]
    fn synthetic_answers_by_type() {
        for (qtype, expected) in [
            (rtype::A, vec!["11.0.0.1"]),
            (rtype::AAAA, vec!["fd00::1"]),
            (rtype::ANY, vec!["11.0.0.1", "fd00::1"]),
            (15, vec![]),
        ] {
            let q = query("api.example.com", qtype);
            let outcome = synthetic(&q, &q.questions[0]);
            let response = decoded(&outcome);
            let ips: Vec<String> = response.ips().map(|ip| ip.to_string()).collect();
            assert_eq!(ips, expected, "qtype {qtype}");
            assert_eq!(response.rcode, rcode::NOERROR);
            assert_ne!(response.flags & dns::FLAG_AA, 0, "authoritative");
            assert!(response.answers.iter().all(|a| a.ttl == 60 && a.name == "api.example.com"));
            assert_eq!(outcome.decision, DnsDecision::Synthetic);
            assert_eq!(outcome.addresses.len(), expected.len());
        }
    }

    #[test]
    fn refusals_and_failures() {
        let q = query("denied.example", rtype::A);
        let response = decoded(&nxdomain(&q));
        assert_eq!((response.id, response.rcode), (7, rcode::NXDOMAIN));
        let response = decoded(&server_failure(&q));
        assert_eq!(response.rcode, rcode::SERVFAIL);
        assert_eq!(response.flags & dns::FLAG_AA, 0);
    }

    #[test]
    fn unreadable_queries_get_formerr_unless_they_are_responses() {
        let reply = format_error(&[0xab, 0xcd, 0x01, 0x00, 0, 9]).unwrap();
        let response = dns::parse_response(&reply).unwrap();
        assert_eq!((response.id, response.rcode), (0xabcd, rcode::FORMERR));
        assert_eq!(format_error(&[0xab, 0xcd, 0x81, 0x00, 0, 9]), None);
        assert_eq!(format_error(&[0xab]), None);
    }

    #[test]
    fn answers_match_their_query() {
        let query = dns::encode_query(0x1234, "a.example", rtype::A).unwrap();
        let q = dns::parse_query(&query).unwrap();
        let answer = nxdomain(&q).reply.unwrap();
        assert!(is_answer_to(&answer, &query));
        assert!(!is_answer_to(&query, &query), "a query is not an answer");
        let other = dns::encode_query(0x4321, "a.example", rtype::A).unwrap();
        assert!(!is_answer_to(&answer, &other));
    }
}
