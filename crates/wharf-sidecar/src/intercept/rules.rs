//! The ruleset as a value (PURE): checked [`InterceptParams`] and a TCP mode in, table
//! `inet wharf` out, with an nft-syntax rendering for tests, logs and errors.
//!
//! Each rule is a list of [`Stmt`]s written the way `nft list ruleset` shows them; `lower.rs`
//! turns each statement into the nf_tables expressions ([`Expr`]) that `nft` itself would send
//! for it, dependencies included (`ip daddr` brings `meta nfproto ipv4`). `nftables.rs` encodes
//! those. `tests.rs` holds the rendered rulesets.
//!
//! # The chains
//!
//! * `internet` (regular): the gate for non-DNS UDP, ICMP and ICMPv6 (W7). Refuses while the
//!   internet is off, accepts while it is on. `set_internet` replaces its one rule.
//! * `divert` (route, output, mangle), TPROXY only: marks the app's TCP with [`DIVERT_MARK`] so
//!   that policy routing ([`DIVERT_TABLE`]) sends it through `lo`.
//! * `deliver` (filter, prerouting, mangle), TPROXY only: hands marked TCP coming back in on
//!   `lo` to the egress listener; the original destination stays the socket's local address.
//! * `rewrite` (nat, output, -110): UDP/53 (and TCP/53 to loopback, Docker's 127.0.0.11) to the
//!   DNS port; under REDIRECT also all other TCP to the egress listener (`SO_ORIGINAL_DST`).
//!   Priority -110 runs it before a Docker embedded-DNS chain at the usual -100.
//! * `egress` (filter, output, filter): the backstop. Whatever was not diverted or rewritten and
//!   would leave by an interface other than `lo` is refused, unless it is the sidecar's own
//!   (`own_mark`), a reply (connections that came in, W34), IPv6 neighbour discovery, or passes
//!   the `internet` gate. With DNS intercepted, the app may not reach Docker's embedded
//!   resolver (127.0.0.11) on its real port either. The hook's output interface is the one routed *before* `divert` and
//!   `rewrite` ran, so diverted (mark) and rewritten (loopback destination) packets are
//!   recognised by those instead.
//! * `control` (filter, input, filter): the app may not open connections to the control port;
//!   connections arriving on `lo` are the app's (or the sidecar's own, exempt by mark).
//!
//! Nothing is exempt because of where it goes: unlike proxy-everything, the Docker subnet and
//! the gateway's /24 are intercepted like the internet (W6), so the engine's policy decides.
//! Only TCP, UDP and ICMP(v6) ever leave; another IP protocol is refused whatever the gate says.
//!
//! Refusals are rejects, not silent drops: administratively-prohibited ICMP (a reset for TCP),
//! so the app's `connect` or `send` fails at once instead of timing out (a QUIC client falls
//! back to TCP at once). Nothing more leaves than with a drop. Each refusing rule counts.
//!
//! # IPv6
//!
//! With both families IPv6 is intercepted like IPv4, to the `[::1]` listener, and ICMPv6 types
//! 130–136 and 143 (MLD, router and neighbour discovery) always pass: without them the
//! namespace loses its IPv6 link, the engine's too. With [`IpFamilies::V4Only`]
//! (`--disable-ipv6`, no IPv6 listener) no IPv6 leaves at all but the sidecar's own and
//! replies; neighbour discovery is refused too.
//!
//! # Marks and tables
//!
//! [`DIVERT_MARK`] 0x1, routing table [`DIVERT_TABLE`] 100 and the rule preference 100 are
//! proxy-everything's numbers, familiar to whoever debugs this with `ip rule`. The sidecar's
//! own mark comes from its flags and must differ (and not be 0, which would exempt everything).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{DnsInterception, InterceptParams, IpFamilies};

pub(crate) use self::lower::{CtKey, Expr, MetaKey, PayloadBase, Reg};

/// The table, always of family `inet`.
pub(crate) const TABLE: &str = "wharf";
/// The mark `divert` puts on the app's TCP under TPROXY, for policy routing to `lo`.
pub(crate) const DIVERT_MARK: u32 = 0x1;
/// The routing table holding `local default dev lo`, looked up for [`DIVERT_MARK`].
pub(crate) const DIVERT_TABLE: u8 = 100;
/// The `ip rule` preference of the [`DIVERT_MARK`] rule (before `main` at 32766).
pub(crate) const DIVERT_RULE_PREF: u32 = 100;
/// `lo`'s interface index, the same in every network namespace.
pub(crate) const LOOPBACK_IFINDEX: u32 = 1;
/// The gate chain that `set_internet` refills.
pub(crate) const INTERNET_CHAIN: &str = "internet";
/// ICMPv6 types 130–136: MLD query/report/done, router and neighbour solicitation/advert.
const ICMPV6_LINK_TYPES: (u8, u8) = (130, 136);
/// ICMPv6 type 143: MLDv2 listener report.
const ICMPV6_MLD2_REPORT: u8 = 143;
/// The DNS port.
const DNS: u16 = 53;
/// Docker's embedded DNS server, in every container on a user-defined network.
const DOCKER_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Hook priorities, as nft names them.
const MANGLE: i32 = -150;
const FILTER: i32 = 0;
/// Before the usual `dstnat` (-100), so that a Docker embedded-DNS DNAT does not win.
const NAT_BEFORE_DOCKER: i32 = -110;

/// How intercepted TCP reaches the egress listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpMode {
    /// Mark, route through `lo`, `tproxy` in prerouting.
    Tproxy,
    /// `redirect` in nat output.
    Redirect,
}

/// [`InterceptParams`], checked and reduced to what the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Where IPv4 TCP is delivered.
    pub(crate) v4_listener: SocketAddrV4,
    /// Where IPv6 TCP is delivered; `None` with [`IpFamilies::V4Only`], when no IPv6 leaves.
    pub(crate) v6_listener: Option<SocketAddrV6>,
    /// The DNS listener's port, when DNS is intercepted.
    pub(crate) dns_port: Option<u16>,
    /// The control listener's port.
    pub(crate) control_port: u16,
    /// The sidecar's own mark.
    pub(crate) own_mark: u32,
    /// The gate's initial state.
    pub(crate) internet: bool,
}

/// Why [`InterceptParams`] cannot be turned into rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// No IPv4 address among `tcp_listeners`.
    #[error("no IPv4 TCP listener to deliver intercepted connections to")]
    NoV4Listener,
    /// IPv6 is intercepted but no IPv6 address is among `tcp_listeners`.
    #[error("IPv6 is intercepted but there is no IPv6 TCP listener")]
    NoV6Listener,
    /// A listener, the DNS port or the control port is port 0.
    #[error("{0} has port 0")]
    PortZero(&'static str),
    /// `own_mark` would exempt everything (0) or collide with the divert mark.
    #[error("own mark {0:#x} is unusable: it must be non-zero and not {DIVERT_MARK:#x}")]
    OwnMark(u32),
    /// NAT REDIRECT delivers to `127.0.0.1` or `::1` only.
    #[error("REDIRECT delivers to 127.0.0.1 and ::1, not to the listener at {0}")]
    RedirectListener(SocketAddr),
}

/// A kernel part that a rule needs beyond nf_tables' core, named when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Feature {
    /// `nft_tproxy`.
    Tproxy,
    /// Policy routing (`ip rule fwmark`), which TPROXY needs.
    PolicyRouting,
    /// `nft_chain_nat` and `nft_redir`.
    Nat,
    /// `nft_ct`.
    Conntrack,
    /// `nft_reject_inet`.
    Reject,
}

/// The whole table, in the order its chains are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ruleset {
    pub(crate) chains: Vec<Chain>,
}

/// A chain and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) name: &'static str,
    /// `None` for a regular chain (only reached by `jump`).
    pub(crate) base: Option<Base>,
    pub(crate) rules: Vec<Rule>,
}

/// What makes a base chain: its type, hook and priority. The policy is always `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Base {
    pub(crate) kind: ChainKind,
    pub(crate) hook: Hook,
    pub(crate) priority: i32,
}

/// A base chain's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainKind {
    Filter,
    Route,
    Nat,
}

/// The netfilter hooks used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Prerouting,
    Input,
    Output,
}

/// One rule: its statements, matched left to right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule(pub(crate) Vec<Stmt>);

/// A statement as nft writes it; [`Stmt::lower`] gives its expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stmt {
    /// `iif "lo"`.
    IifLoopback,
    /// `oif "lo"`.
    OifLoopback,
    /// `meta mark 0x…` or `meta mark != 0x…`.
    Mark(CmpOp, u32),
    /// `meta nfproto ipv4`.
    NfProto(Family),
    /// `meta l4proto tcp`.
    L4Proto(L4),
    /// `ip daddr 127.0.0.11`.
    Daddr4(Ipv4Addr),
    /// `ip daddr 127.0.0.0/8`.
    Daddr4Loopback,
    /// `ip6 daddr ::1`.
    Daddr6Loopback,
    /// `tcp dport 53`.
    Dport(L4, u16),
    /// `ct direction reply`.
    CtReply,
    /// `ct state new`.
    CtNew,
    /// `icmpv6 type 130-136` (or one type).
    Icmpv6Type(u8, u8),
    /// `counter`.
    Counter,
    /// `meta mark set 0x…`.
    SetMark(u32),
    /// `tproxy ip to 127.0.0.1:15001`.
    Tproxy(SocketAddr),
    /// `redirect to :15053`.
    Redirect(u16),
    /// `reject with …`.
    Reject(Reject),
    /// `accept`, `return`, `jump …`.
    Verdict(Verdict),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Neq,
    Gte,
    Lte,
}

/// A network-layer family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4 {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

/// How a refused packet is answered to the local sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// ICMP(v6) administratively prohibited: `connect`/`send` fail at once.
    IcmpxAdminProhibited,
    /// A TCP reset: `connect` fails with "connection refused".
    TcpReset,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    Return,
    Jump(&'static str),
}

// === impl Plan ===

impl Plan {
    /// Checks `params`.
    pub(crate) fn new(params: &InterceptParams) -> Result<Plan, ParamsError> {
        let v4_listener = params
            .tcp_listeners
            .iter()
            .find_map(|addr| match addr {
                SocketAddr::V4(v4) => Some(*v4),
                SocketAddr::V6(_) => None,
            })
            .ok_or(ParamsError::NoV4Listener)?;
        let v6_listener = match params.families {
            IpFamilies::V4Only => None,
            IpFamilies::Both => Some(first_v6(&params.tcp_listeners)?),
        };
        let dns_port = match params.dns {
            DnsInterception::Off => None,
            DnsInterception::On => Some(nonzero(params.dns_port, "the DNS listener")?),
        };
        nonzero(v4_listener.port(), "the IPv4 TCP listener")?;
        if let Some(v6) = v6_listener {
            nonzero(v6.port(), "the IPv6 TCP listener")?;
        }
        let control_port = nonzero(params.control_addr.port(), "the control listener")?;
        if params.own_mark == 0 || params.own_mark == DIVERT_MARK {
            return Err(ParamsError::OwnMark(params.own_mark));
        }
        Ok(Plan {
            v4_listener,
            v6_listener,
            dns_port,
            control_port,
            own_mark: params.own_mark,
            internet: params.internet,
        })
    }

    /// Checks that REDIRECT, which delivers to `127.0.0.1`/`::1`, reaches the listeners.
    pub(crate) fn check_redirect(&self) -> Result<(), ParamsError> {
        let v4 = SocketAddr::V4(self.v4_listener);
        let v6 = self.v6_listener.map(SocketAddr::V6);
        match [Some(v4), v6].into_iter().flatten().find(|addr| !redirect_reaches(addr.ip())) {
            Some(addr) => Err(ParamsError::RedirectListener(addr)),
            None => Ok(()),
        }
    }

    fn both_families(&self) -> bool {
        self.v6_listener.is_some()
    }
}

fn first_v6(listeners: &[SocketAddr]) -> Result<SocketAddrV6, ParamsError> {
    listeners
        .iter()
        .find_map(|addr| match addr {
            SocketAddr::V6(v6) => Some(*v6),
            SocketAddr::V4(_) => None,
        })
        .ok_or(ParamsError::NoV6Listener)
}

fn nonzero(port: u16, what: &'static str) -> Result<u16, ParamsError> {
    if port == 0 { Err(ParamsError::PortZero(what)) } else { Ok(port) }
}

/// Whether a listener bound to `ip` receives what `redirect` sends to loopback.
fn redirect_reaches(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.is_unspecified() || v6 == Ipv6Addr::LOCALHOST,
    }
}

// === the ruleset ===

/// The table for `plan` with TCP intercepted by `mode`.
pub(crate) fn ruleset(plan: &Plan, mode: TcpMode) -> Ruleset {
    let mut chains = vec![internet(plan.internet)];
    if mode == TcpMode::Tproxy {
        chains.push(divert(plan));
        chains.push(deliver(plan));
    }
    chains.extend(rewrite(plan, mode));
    chains.push(egress(plan, mode));
    chains.push(control(plan, mode));
    Ruleset { chains }
}

/// The gate chain: refuse or accept.
pub(crate) fn internet(enabled: bool) -> Chain {
    Chain { name: INTERNET_CHAIN, base: None, rules: vec![gate_rule(enabled)] }
}

/// The gate chain's one rule.
pub(crate) fn gate_rule(enabled: bool) -> Rule {
    if enabled {
        rule([Stmt::Verdict(Verdict::Accept)])
    } else {
        rule([Stmt::Counter, Stmt::Reject(Reject::IcmpxAdminProhibited)])
    }
}

fn divert(plan: &Plan) -> Chain {
    let mut mark_tcp = Vec::new();
    if !plan.both_families() {
        mark_tcp.push(Stmt::NfProto(Family::V4));
    }
    mark_tcp.extend([Stmt::L4Proto(L4::Tcp), Stmt::SetMark(DIVERT_MARK)]);
    Chain {
        name: "divert",
        base: Some(Base { kind: ChainKind::Route, hook: Hook::Output, priority: MANGLE }),
        rules: vec![
            rule([Stmt::OifLoopback, ret()]),
            rule([Stmt::Mark(CmpOp::Eq, plan.own_mark), ret()]),
            rule([Stmt::CtReply, ret()]),
            Rule(mark_tcp),
        ],
    }
}

fn deliver(plan: &Plan) -> Chain {
    let v4 = SocketAddr::V4(plan.v4_listener);
    let v6 = plan.v6_listener.map(SocketAddr::V6);
    let rules = [Some(v4), v6].into_iter().flatten().map(tproxy_rule).collect();
    Chain {
        name: "deliver",
        base: Some(Base { kind: ChainKind::Filter, hook: Hook::Prerouting, priority: MANGLE }),
        rules,
    }
}

fn tproxy_rule(listener: SocketAddr) -> Rule {
    rule([
        Stmt::IifLoopback,
        Stmt::Mark(CmpOp::Eq, DIVERT_MARK),
        Stmt::NfProto(family_of(listener.ip())),
        Stmt::L4Proto(L4::Tcp),
        Stmt::Tproxy(listener),
        accept(),
    ])
}

fn rewrite(plan: &Plan, mode: TcpMode) -> Option<Chain> {
    let mut rules = plan.dns_port.map(|port| dns_rules(plan, port)).unwrap_or_default();
    if mode == TcpMode::Redirect {
        rules.push(rule([Stmt::OifLoopback, ret()]));
        rules.push(redirect_tcp(Family::V4, plan.v4_listener.port()));
        if let Some(v6) = plan.v6_listener {
            rules.push(redirect_tcp(Family::V6, v6.port()));
        }
    }
    if rules.is_empty() {
        return None;
    }
    rules.insert(0, rule([Stmt::Mark(CmpOp::Eq, plan.own_mark), ret()]));
    Some(Chain {
        name: "rewrite",
        base: Some(Base { kind: ChainKind::Nat, hook: Hook::Output, priority: NAT_BEFORE_DOCKER }),
        rules,
    })
}

/// UDP/53 to anywhere, and TCP/53 to loopback (which TCP interception leaves alone), go to
/// the DNS listener.
fn dns_rules(plan: &Plan, port: u16) -> Vec<Rule> {
    let mut udp = Vec::new();
    if !plan.both_families() {
        udp.push(Stmt::NfProto(Family::V4));
    }
    udp.extend([Stmt::Dport(L4::Udp, DNS), Stmt::Redirect(port)]);
    let mut rules = vec![
        Rule(udp),
        rule([Stmt::Daddr4Loopback, Stmt::Dport(L4::Tcp, DNS), Stmt::Redirect(port)]),
    ];
    if plan.both_families() {
        rules.push(rule([Stmt::Daddr6Loopback, Stmt::Dport(L4::Tcp, DNS), Stmt::Redirect(port)]));
    }
    rules
}

fn redirect_tcp(family: Family, port: u16) -> Rule {
    rule([Stmt::NfProto(family), Stmt::L4Proto(L4::Tcp), Stmt::Redirect(port)])
}

fn egress(plan: &Plan, mode: TcpMode) -> Chain {
    let mut rules = vec![
        rule([Stmt::Mark(CmpOp::Eq, plan.own_mark), accept()]),
        rule([Stmt::CtReply, accept()]),
    ];
    if plan.dns_port.is_some() {
        // Docker's embedded resolver: port 53 was rewritten to ours above; its real port would
        // forward the app's queries upstream.
        rules.push(rule([Stmt::Daddr4(DOCKER_DNS), Stmt::Counter, reject_icmpx()]));
    }
    rules.extend([
        rule([Stmt::OifLoopback, accept()]),
        rule([Stmt::Daddr4Loopback, accept()]),
        rule([Stmt::Daddr6Loopback, accept()]),
    ]);
    if mode == TcpMode::Tproxy {
        rules.push(rule([Stmt::Mark(CmpOp::Eq, DIVERT_MARK), accept()]));
    }
    if plan.both_families() {
        let (first, last) = ICMPV6_LINK_TYPES;
        rules.push(rule([Stmt::Icmpv6Type(first, last), accept()]));
        rules.push(rule([Stmt::Icmpv6Type(ICMPV6_MLD2_REPORT, ICMPV6_MLD2_REPORT), accept()]));
    } else {
        rules.push(rule([Stmt::NfProto(Family::V6), Stmt::Counter, reject_icmpx()]));
    }
    for l4 in [L4::Udp, L4::Icmp, L4::Icmpv6] {
        rules.push(rule([Stmt::L4Proto(l4), Stmt::Verdict(Verdict::Jump(INTERNET_CHAIN))]));
    }
    rules.push(rule([Stmt::L4Proto(L4::Tcp), Stmt::Counter, Stmt::Reject(Reject::TcpReset)]));
    rules.push(rule([Stmt::Counter, reject_icmpx()]));
    Chain {
        name: "egress",
        base: Some(Base { kind: ChainKind::Filter, hook: Hook::Output, priority: FILTER }),
        rules,
    }
}

fn control(plan: &Plan, mode: TcpMode) -> Chain {
    let mut stmts = vec![Stmt::IifLoopback];
    if mode == TcpMode::Tproxy {
        // Diverted app TCP to a remote port equal to the control port arrives on `lo` too.
        stmts.push(Stmt::Mark(CmpOp::Neq, DIVERT_MARK));
    }
    stmts.extend([
        Stmt::Mark(CmpOp::Neq, plan.own_mark),
        Stmt::Dport(L4::Tcp, plan.control_port),
        Stmt::CtNew,
        Stmt::Counter,
        Stmt::Reject(Reject::TcpReset),
    ]);
    Chain {
        name: "control",
        base: Some(Base { kind: ChainKind::Filter, hook: Hook::Input, priority: FILTER }),
        rules: vec![Rule(stmts)],
    }
}

fn rule<const N: usize>(stmts: [Stmt; N]) -> Rule {
    Rule(stmts.into())
}

fn accept() -> Stmt {
    Stmt::Verdict(Verdict::Accept)
}

fn ret() -> Stmt {
    Stmt::Verdict(Verdict::Return)
}

fn reject_icmpx() -> Stmt {
    Stmt::Reject(Reject::IcmpxAdminProhibited)
}

fn family_of(ip: IpAddr) -> Family {
    match ip {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

// === impl TcpMode ===

impl TcpMode {
    /// The mode as the seam reports it.
    pub(crate) fn intercept_mode(self) -> super::InterceptMode {
        match self {
            TcpMode::Tproxy => super::InterceptMode::Tproxy,
            TcpMode::Redirect => super::InterceptMode::Redirect,
        }
    }
}

// === impl Feature ===

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Tproxy => "nft_tproxy",
            Feature::PolicyRouting => "policy routing (ip rule fwmark)",
            Feature::Nat => "nft_redir (NAT)",
            Feature::Conntrack => "nft_ct (conntrack)",
            Feature::Reject => "nft_reject",
        })
    }
}

// === impl Chain ===

impl Chain {
    /// The kernel parts that creating this chain needs.
    pub(crate) fn features(&self) -> Vec<Feature> {
        match self.base {
            Some(Base { kind: ChainKind::Nat, .. }) => vec![Feature::Nat],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table inet {TABLE} {{")?;
        for (i, chain) in self.chains.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "\tchain {} {{", chain.name)?;
            if let Some(base) = &chain.base {
                writeln!(f, "\t\t{base}")?;
            }
            for rule in &chain.rules {
                writeln!(f, "\t\t{rule}")?;
            }
            writeln!(f, "\t}}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ChainKind::Filter => "filter",
            ChainKind::Route => "route",
            ChainKind::Nat => "nat",
        };
        write!(f, "type {kind} hook {} priority {}; policy accept;", self.hook, self.priority)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Output => "output",
        })
    }
}

// === impl Rule ===

impl Rule {
    /// The kernel parts this rule needs.
    pub(crate) fn features(&self) -> Vec<Feature> {
        let mut features: Vec<Feature> = self.0.iter().filter_map(Stmt::feature).collect();
        features.sort();
        features.dedup();
        features
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stmt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{stmt}")?;
        }
        Ok(())
    }
}

// === impl Stmt ===

impl Stmt {
    fn feature(&self) -> Option<Feature> {
        match self {
            Stmt::Tproxy(_) => Some(Feature::Tproxy),
            Stmt::Redirect(_) => Some(Feature::Nat),
            Stmt::CtReply | Stmt::CtNew => Some(Feature::Conntrack),
            Stmt::Reject(_) => Some(Feature::Reject),
            _ => None,
        }
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::IifLoopback => f.write_str("iif \"lo\""),
            Stmt::OifLoopback => f.write_str("oif \"lo\""),
            Stmt::Mark(CmpOp::Eq, mark) => write!(f, "meta mark {mark:#010x}"),
            Stmt::Mark(op, mark) => write!(f, "meta mark {op} {mark:#010x}"),
            Stmt::NfProto(family) => write!(f, "meta nfproto {family}"),
            Stmt::L4Proto(l4) => write!(f, "meta l4proto {l4}"),
            Stmt::Daddr4(addr) => write!(f, "ip daddr {addr}"),
            Stmt::Daddr4Loopback => f.write_str("ip daddr 127.0.0.0/8"),
            Stmt::Daddr6Loopback => f.write_str("ip6 daddr ::1"),
            Stmt::Dport(l4, port) => write!(f, "{l4} dport {port}"),
            Stmt::CtReply => f.write_str("ct direction reply"),
            Stmt::CtNew => f.write_str("ct state new"),
            Stmt::Icmpv6Type(first, last) if first == last => write!(f, "icmpv6 type {first}"),
            Stmt::Icmpv6Type(first, last) => write!(f, "icmpv6 type {first}-{last}"),
            Stmt::Counter => f.write_str("counter"),
            Stmt::SetMark(mark) => write!(f, "meta mark set {mark:#010x}"),
            Stmt::Tproxy(listener) => fmt_tproxy(f, *listener),
            Stmt::Redirect(port) => write!(f, "redirect to :{port}"),
            Stmt::Reject(Reject::IcmpxAdminProhibited) => {
                f.write_str("reject with icmpx admin-prohibited")
            }
            Stmt::Reject(Reject::TcpReset) => f.write_str("reject with tcp reset"),
            Stmt::Verdict(Verdict::Accept) => f.write_str("accept"),
            Stmt::Verdict(Verdict::Return) => f.write_str("return"),
            Stmt::Verdict(Verdict::Jump(chain)) => write!(f, "jump {chain}"),
        }
    }
}

fn fmt_tproxy(f: &mut fmt::Formatter<'_>, listener: SocketAddr) -> fmt::Result {
    let family = match listener {
        SocketAddr::V4(_) => "ip",
        SocketAddr::V6(_) => "ip6",
    };
    if listener.ip().is_unspecified() {
        write!(f, "tproxy {family} to :{}", listener.port())
    } else {
        write!(f, "tproxy {family} to {listener}")
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gte => ">=",
            CmpOp::Lte => "<=",
        })
    }
}

// === impl Family, L4 ===

impl Family {
    /// `NFPROTO_IPV4` or `NFPROTO_IPV6`.
    pub(crate) fn nfproto(self) -> u8 {
        match self {
            Family::V4 => 2,
            Family::V6 => 10,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        })
    }
}

impl fmt::Display for L4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
            L4::Icmp => "icmp",
            L4::Icmpv6 => "ipv6-icmp",
        })
    }
}

mod lower;
#[cfg(test)]
pub(crate) mod tests;
