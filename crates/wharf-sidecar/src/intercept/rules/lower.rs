//! Lowering (PURE): each [`Stmt`] to the nf_tables expressions `nft` sends for it, dependencies
//! included; `nftables.rs` encodes those. Values are in the byte order the kernel compares
//! them in: host order for `meta` and `ct` registers, network order for packet bytes and ports.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::{CmpOp, Family, L4, LOOPBACK_IFINDEX, Reject, Rule, Stmt, Verdict, family_of};

/// An nf_tables expression: what a [`Stmt`] lowers to and `nftables.rs` encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `meta load <key> => reg`.
    Meta { key: MetaKey, dreg: Reg },
    /// `meta set <key> with reg`.
    MetaSet { key: MetaKey, sreg: Reg },
    /// `cmp <op> reg <data>`.
    Cmp { sreg: Reg, op: CmpOp, data: Vec<u8> },
    /// `payload load <len>b @ <base> header + <offset> => reg`.
    Payload { base: PayloadBase, offset: u32, len: u32, dreg: Reg },
    /// `bitwise reg = (reg & mask) ^ xor`.
    Bitwise { sreg: Reg, dreg: Reg, mask: Vec<u8>, xor: Vec<u8> },
    /// `ct load <key> => reg`.
    Ct { key: CtKey, dreg: Reg },
    /// `immediate reg <data>`.
    Immediate { dreg: Reg, data: Vec<u8> },
    /// `immediate reg 0 <verdict>`.
    Verdict(Verdict),
    /// `redir proto_min reg flags 0x2`.
    Redir { port: Reg },
    /// `tproxy <family> [addr reg] port reg`.
    Tproxy { family: Family, addr: Option<Reg>, port: Reg },
    /// `reject type <t> code <c>`.
    Reject(Reject),
    /// `counter`.
    Counter,
}

/// A `meta` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaKey {
    Mark,
    Iif,
    Oif,
    NfProto,
    L4Proto,
}

/// A `ct` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtKey {
    State,
    Direction,
}

/// Where a payload load starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadBase {
    Network,
    Transport,
}

/// An nf_tables register: 1 and 2 are the 16-byte data registers nft uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reg(pub(crate) u32);

const REG_1: Reg = Reg(1);
const REG_2: Reg = Reg(2);

/// `ct state new` as a bit of the state register (`NF_CT_STATE_BIT(IP_CT_NEW)`).
const CT_STATE_NEW: u32 = 1 << 3;
/// `ct direction reply` (`IP_CT_DIR_REPLY`).
const CT_DIR_REPLY: u8 = 1;

// === impl Rule ===

impl Rule {
    /// The expressions, in order.
    pub(crate) fn lower(&self) -> Vec<Expr> {
        self.0.iter().flat_map(Stmt::lower).collect()
    }
}

// === impl Stmt ===

impl Stmt {
    /// The expressions `nft` sends for this statement.
    fn lower(&self) -> Vec<Expr> {
        match self {
            Stmt::IifLoopback => meta_eq(MetaKey::Iif, LOOPBACK_IFINDEX.to_ne_bytes().into()),
            Stmt::OifLoopback => meta_eq(MetaKey::Oif, LOOPBACK_IFINDEX.to_ne_bytes().into()),
            Stmt::Mark(op, mark) => vec![
                Expr::Meta { key: MetaKey::Mark, dreg: REG_1 },
                Expr::Cmp { sreg: REG_1, op: *op, data: mark.to_ne_bytes().into() },
            ],
            Stmt::NfProto(family) => meta_eq(MetaKey::NfProto, vec![family.nfproto()]),
            Stmt::L4Proto(l4) => meta_eq(MetaKey::L4Proto, vec![l4.number()]),
            Stmt::Daddr4(addr) => {
                let mut exprs = Stmt::NfProto(Family::V4).lower();
                exprs.extend(load_cmp(PayloadBase::Network, 16, addr.octets().into()));
                exprs
            }
            Stmt::Daddr4Loopback => {
                let mut exprs = Stmt::NfProto(Family::V4).lower();
                exprs.extend(load_cmp(PayloadBase::Network, 16, vec![127]));
                exprs
            }
            Stmt::Daddr6Loopback => {
                let mut exprs = Stmt::NfProto(Family::V6).lower();
                exprs.extend(load_cmp(
                    PayloadBase::Network,
                    24,
                    Ipv6Addr::LOCALHOST.octets().into(),
                ));
                exprs
            }
            Stmt::Dport(l4, port) => {
                let mut exprs = Stmt::L4Proto(*l4).lower();
                exprs.extend(load_cmp(PayloadBase::Transport, 2, port.to_be_bytes().into()));
                exprs
            }
            Stmt::CtReply => vec![
                Expr::Ct { key: CtKey::Direction, dreg: REG_1 },
                Expr::Cmp { sreg: REG_1, op: CmpOp::Eq, data: vec![CT_DIR_REPLY] },
            ],
            Stmt::CtNew => vec![
                Expr::Ct { key: CtKey::State, dreg: REG_1 },
                Expr::Bitwise {
                    sreg: REG_1,
                    dreg: REG_1,
                    mask: CT_STATE_NEW.to_ne_bytes().into(),
                    xor: 0u32.to_ne_bytes().into(),
                },
                Expr::Cmp { sreg: REG_1, op: CmpOp::Neq, data: 0u32.to_ne_bytes().into() },
            ],
            Stmt::Icmpv6Type(first, last) => icmpv6_type(*first, *last),
            Stmt::Counter => vec![Expr::Counter],
            Stmt::SetMark(mark) => vec![
                Expr::Immediate { dreg: REG_1, data: mark.to_ne_bytes().into() },
                Expr::MetaSet { key: MetaKey::Mark, sreg: REG_1 },
            ],
            Stmt::Tproxy(listener) => tproxy(*listener),
            Stmt::Redirect(port) => vec![
                Expr::Immediate { dreg: REG_1, data: port.to_be_bytes().into() },
                Expr::Redir { port: REG_1 },
            ],
            Stmt::Reject(reject) => vec![Expr::Reject(*reject)],
            Stmt::Verdict(verdict) => vec![Expr::Verdict(*verdict)],
        }
    }
}

fn meta_eq(key: MetaKey, data: Vec<u8>) -> Vec<Expr> {
    vec![Expr::Meta { key, dreg: REG_1 }, Expr::Cmp { sreg: REG_1, op: CmpOp::Eq, data }]
}

fn load_cmp(base: PayloadBase, offset: u32, data: Vec<u8>) -> Vec<Expr> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    vec![
        Expr::Payload { base, offset, len, dreg: REG_1 },
        Expr::Cmp { sreg: REG_1, op: CmpOp::Eq, data },
    ]
}

fn icmpv6_type(first: u8, last: u8) -> Vec<Expr> {
    let mut exprs = Stmt::NfProto(Family::V6).lower();
    exprs.extend(Stmt::L4Proto(L4::Icmpv6).lower());
    exprs.push(Expr::Payload { base: PayloadBase::Transport, offset: 0, len: 1, dreg: REG_1 });
    if first == last {
        exprs.push(Expr::Cmp { sreg: REG_1, op: CmpOp::Eq, data: vec![first] });
    } else {
        exprs.push(Expr::Cmp { sreg: REG_1, op: CmpOp::Gte, data: vec![first] });
        exprs.push(Expr::Cmp { sreg: REG_1, op: CmpOp::Lte, data: vec![last] });
    }
    exprs
}

/// The listener's address in register 1 (unless unspecified: then the kernel picks `lo`'s
/// primary address), its port in register 2.
fn tproxy(listener: SocketAddr) -> Vec<Expr> {
    let family = family_of(listener.ip());
    let addr: Option<Vec<u8>> = match listener.ip() {
        IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4.octets().into()),
        IpAddr::V6(v6) if !v6.is_unspecified() => Some(v6.octets().into()),
        _ => None,
    };
    let port = listener.port().to_be_bytes().into();
    match addr {
        Some(addr) => vec![
            Expr::Immediate { dreg: REG_1, data: addr },
            Expr::Immediate { dreg: REG_2, data: port },
            Expr::Tproxy { family, addr: Some(REG_1), port: REG_2 },
        ],
        None => vec![
            Expr::Immediate { dreg: REG_1, data: port },
            Expr::Tproxy { family, addr: None, port: REG_1 },
        ],
    }
}

impl L4 {
    /// The IP protocol number.
    fn number(self) -> u8 {
        match self {
            L4::Tcp => 6,
            L4::Udp => 17,
            L4::Icmp => 1,
            L4::Icmpv6 => 58,
        }
    }
}
