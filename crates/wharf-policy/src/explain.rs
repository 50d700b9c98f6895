//! `wharf why`: the decision for one connection, step by step, with every mapping tried.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::decide::{Query, Tracer, walk};
use crate::{Connection, Decision, Mapping, Protocol, Table};

/// How [`decide`](fn@crate::decide) reached its decision for one connection. `Display` gives a
/// readable multi-line text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The original destination.
    pub dst: SocketAddr,
    /// The TLS server name, as the sidecar sent it.
    pub sni: Option<String>,
    /// The HTTP `Host`, as the sidecar sent it.
    pub hostname: Option<String>,
    /// The app spoke TLS.
    pub tls: bool,
    /// Unmatched connections may reach the internet.
    pub internet: bool,
    /// The four stages of the decision, in order, up to the one that matched.
    pub steps: Vec<Step>,
    /// The decision.
    pub verdict: Verdict,
}

/// One stage of the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The stage did not apply to this connection.
    Skipped {
        /// Which stage.
        stage: Stage,
        /// Why not.
        why: Skip,
    },
    /// The stage looked the table up.
    Lookup {
        /// Which stage; its protocol is [`Stage::protocol`].
        stage: Stage,
        /// The name globs were matched against, if this stage had one.
        name: Option<String>,
        /// The destination address CIDRs were matched against.
        ip: IpAddr,
        /// The destination port.
        port: u16,
        /// Every mapping of the stage's protocol that was tried, in order; the last one
        /// matched if any did.
        attempts: Vec<Attempt>,
    },
}

/// The four lookups of [`decide`](fn@crate::decide), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// 1: https by server name and address.
    Sni,
    /// 2: http by `Host` and address.
    Hostname,
    /// 3: https by address, for TLS without a server name.
    TlsAddress,
    /// 4: tcp by address.
    Tcp,
}

/// Why a stage did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Skip {
    /// Stage 1 needs a TLS server name.
    NoSni,
    /// Stage 2 needs an HTTP `Host`.
    NoHostname,
    /// Stage 2 serves plain HTTP, and this connection is TLS.
    HostnameOnTls,
    /// Stage 3 is for TLS connections.
    NotTls,
    /// Stage 3 is for TLS without a server name; stage 1 already tried the address.
    SniPresent,
}

/// One mapping tried by a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The mapping's position in the table.
    pub index: usize,
    /// The mapping without its target ([`Mapping::rule`]).
    pub rule: String,
    /// Whether it matched, and why not.
    pub outcome: Outcome,
}

/// Whether a mapping matched, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It matched: the lookup stops here.
    Match,
    /// The mapping is for another port.
    PortDiffers,
    /// The destination address is outside the mapping's CIDR.
    AddressOutside,
    /// The name does not match the mapping's glob.
    NameDiffers,
    /// The mapping is a glob and this lookup has no name.
    NoName,
}

/// The decision, without borrowing the table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Handled by the mapping at `index`.
    Handle {
        /// The mapping's position in the table.
        index: usize,
        /// The mapping without its target.
        rule: String,
    },
    /// Passed through to the destination.
    PassThrough,
    /// Refused.
    Refuse,
}

/// Explains [`decide`](fn@crate::decide)`(table, conn, internet)`, which it runs.
pub fn explain<T>(table: &Table<T>, conn: &Connection<'_>, internet: bool) -> Explanation {
    let mut recorder = Recorder { steps: Vec::new() };
    let decision = walk(table, conn, internet, &mut recorder);
    Explanation {
        dst: conn.dst,
        sni: conn.sni.map(str::to_owned),
        hostname: conn.hostname.map(str::to_owned),
        tls: conn.tls,
        internet,
        steps: recorder.steps,
        verdict: Verdict::of(&decision),
    }
}

// === impl Explanation ===

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection to {}", self.dst)?;
        if self.tls {
            f.write_str(", TLS")?;
        }
        if let Some(sni) = &self.sni {
            write!(f, ", SNI {sni:?}")?;
        }
        if let Some(host) = &self.hostname {
            write!(f, ", Host {host:?}")?;
        }
        if !self.tls && self.sni.is_none() && self.hostname.is_none() {
            f.write_str(", no TLS and no HTTP Host")?;
        }
        writeln!(f, "; internet {}", if self.internet { "on" } else { "off" })?;
        for (n, step) in self.steps.iter().enumerate() {
            write!(f, "{}. ", n + 1)?;
            step.fmt(f)?;
        }
        write!(f, "decision: {}", self.verdict)?;
        if !matches!(self.verdict, Verdict::Handle { .. }) {
            let internet = if self.internet { "on" } else { "off" };
            write!(f, " (no mapping matched; the internet is {internet})")?;
        }
        writeln!(f)
    }
}

// === impl Step ===

/// The step's lines, each ending in a newline; attempts are indented under their lookup.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Skipped { stage, why } => writeln!(f, "{stage}: skipped, {why}"),
            Step::Lookup { stage, name, ip, port, attempts } => {
                write!(f, "{stage}:")?;
                if let Some(name) = name {
                    write!(f, " name {name:?},")?;
                }
                writeln!(f, " address {ip}, port {port}")?;
                if attempts.is_empty() {
                    writeln!(f, "   no {} mappings", stage.protocol())?;
                }
                for attempt in attempts {
                    writeln!(f, "   #{} {}: {}", attempt.index, attempt.rule, attempt.outcome)?;
                }
                Ok(())
            }
        }
    }
}

// === impl Stage ===

impl Stage {
    /// The protocol whose mappings the stage looks up.
    pub fn protocol(self) -> Protocol {
        match self {
            Stage::Sni | Stage::TlsAddress => Protocol::Https,
            Stage::Hostname => Protocol::Http,
            Stage::Tcp => Protocol::Tcp,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Sni => "https by TLS server name",
            Stage::Hostname => "http by Host",
            Stage::TlsAddress => "https by address (TLS without a server name)",
            Stage::Tcp => "tcp by address",
        })
    }
}

// === impl Skip ===

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::NoSni => "no TLS server name",
            Skip::NoHostname => "no plain HTTP request with a Host was seen",
            Skip::HostnameOnTls => "the connection is TLS, so it is not plain HTTP",
            Skip::NotTls => "the connection is not TLS",
            Skip::SniPresent => "it had a server name, so step 1 already tried the address",
        })
    }
}

// === impl Outcome ===

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Match => "matches",
            Outcome::PortDiffers => "other port",
            Outcome::AddressOutside => "address outside",
            Outcome::NameDiffers => "name does not match",
            Outcome::NoName => "a name rule, and this step has no name",
        })
    }
}

// === impl Verdict ===

impl Verdict {
    /// The verdict of a decision.
    pub fn of<T>(decision: &Decision<'_, T>) -> Verdict {
        match decision {
            Decision::Handle { index, mapping } => {
                Verdict::Handle { index: *index, rule: mapping.rule() }
            }
            Decision::PassThrough => Verdict::PassThrough,
            Decision::Refuse => Verdict::Refuse,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Handle { index, rule } => write!(f, "handle with #{index} {rule}"),
            Verdict::PassThrough => f.write_str("pass through to the destination"),
            Verdict::Refuse => f.write_str("refuse"),
        }
    }
}

/// Records the walk as [`Step`]s.
struct Recorder {
    steps: Vec<Step>,
}

impl Tracer for Recorder {
    fn skipped(&mut self, stage: Stage, why: Skip) {
        self.steps.push(Step::Skipped { stage, why });
    }

    fn lookup(&mut self, stage: Stage, query: &Query<'_>) {
        let Query { name, ip, port, .. } = *query;
        let name = name.map(str::to_owned);
        self.steps.push(Step::Lookup { stage, name, ip, port, attempts: Vec::new() });
    }

    fn attempt<T>(&mut self, index: usize, mapping: &Mapping<T>, outcome: Outcome) {
        if let Some(Step::Lookup { attempts, .. }) = self.steps.last_mut() {
            attempts.push(Attempt { index, rule: mapping.rule(), outcome });
        }
    }
}
