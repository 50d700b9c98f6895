//! nf_tables batches (PURE): the one that replaces table `inet wharf`, the one that refills
//! the internet gate, and their encoding into `NFNL_SUBSYS_NFTABLES` netlink messages.
//!
//! A batch is committed by the kernel as a whole or not at all. Replacing the table is
//! `add table; delete table; add table …` in one batch, so it works whether or not an old table
//! (from a sidecar restarted in the same namespace) exists, and nothing ever stacks.
//!
//! The encoding follows what `nft` 1.0.6 sends for the same rules, attribute for attribute, plus
//! `NLM_F_ACK` on every message (`nft` relies on errors alone); `tests.rs` holds the vectors.

use std::fmt;

use super::netlink::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, Writer};
use super::rules::{
    Base, Chain, ChainKind, CmpOp, CtKey, Expr, Feature, Hook, INTERNET_CHAIN, MetaKey,
    PayloadBase, Reg, Reject, Rule, Ruleset, TABLE, Verdict, gate_rule,
};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;

const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NFNETLINK_V0: u8 = 0;

// Attribute numbers, from linux/netfilter/nf_tables.h.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_RETURN: i32 = -5;
/// `NF_NAT_RANGE_PROTO_SPECIFIED`: `redirect to :port`.
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;

/// One nf_tables message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NftMsg {
    /// `add table inet wharf`.
    AddTable,
    /// `delete table inet wharf`.
    DeleteTable,
    /// `add chain inet wharf <name> { … }`, without its rules.
    AddChain { name: &'static str, base: Option<Base> },
    /// `add rule inet wharf <chain> …`.
    AddRule { chain: &'static str, rule: Rule },
    /// `flush chain inet wharf <chain>`.
    FlushChain(&'static str),
}

/// Messages the kernel commits together, or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NftBatch {
    msgs: Vec<NftMsg>,
}

// === impl NftBatch ===

impl NftBatch {
    /// Replaces table `inet wharf`, whatever it held, with `ruleset`.
    pub(crate) fn replace(ruleset: &Ruleset) -> NftBatch {
        let mut msgs = vec![NftMsg::AddTable, NftMsg::DeleteTable, NftMsg::AddTable];
        msgs.extend(ruleset.chains.iter().map(NftMsg::add_chain));
        for chain in &ruleset.chains {
            let rules = chain.rules.iter().cloned();
            msgs.extend(rules.map(|rule| NftMsg::AddRule { chain: chain.name, rule }));
        }
        NftBatch { msgs }
    }

    /// Refills the internet gate: open (`enabled`) or closed.
    pub(crate) fn set_internet(enabled: bool) -> NftBatch {
        let refill = NftMsg::AddRule { chain: INTERNET_CHAIN, rule: gate_rule(enabled) };
        NftBatch { msgs: vec![NftMsg::FlushChain(INTERNET_CHAIN), refill] }
    }

    /// The messages, in order.
    pub(crate) fn messages(&self) -> &[NftMsg] {
        &self.msgs
    }

    /// The sequence number of message `index` when the batch begins at `first_seq`.
    pub(crate) fn seq_of(first_seq: u32, index: usize) -> u32 {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        first_seq.wrapping_add(1).wrapping_add(index)
    }

    /// The index of the message numbered `seq`, if it is one of ours (not the batch begin).
    pub(crate) fn index_of(&self, first_seq: u32, seq: u32) -> Option<usize> {
        let index = seq.wrapping_sub(first_seq).checked_sub(1)? as usize;
        (index < self.msgs.len()).then_some(index)
    }

    /// The batch as netlink bytes: batch begin (`first_seq`), the messages, batch end.
    pub(crate) fn encode(&self, first_seq: u32) -> Vec<u8> {
        let mut w = Writer::default();
        batch_marker(&mut w, NFNL_MSG_BATCH_BEGIN, first_seq);
        for (index, msg) in self.msgs.iter().enumerate() {
            msg.encode(&mut w, NftBatch::seq_of(first_seq, index));
        }
        batch_marker(&mut w, NFNL_MSG_BATCH_END, NftBatch::seq_of(first_seq, self.msgs.len()));
        w.finish()
    }
}

fn batch_marker(w: &mut Writer, kind: u16, seq: u32) {
    w.message(kind, NLM_F_REQUEST, seq, |w| {
        w.raw(&[NFPROTO_UNSPEC, NFNETLINK_V0]);
        w.raw(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
    });
}

// === impl NftMsg ===

impl NftMsg {
    fn add_chain(chain: &Chain) -> NftMsg {
        NftMsg::AddChain { name: chain.name, base: chain.base }
    }

    /// The kernel parts this message needs beyond nf_tables' core.
    pub(crate) fn features(&self) -> Vec<Feature> {
        match self {
            NftMsg::AddChain { name, base } => {
                Chain { name, base: *base, rules: Vec::new() }.features()
            }
            NftMsg::AddRule { rule, .. } => rule.features(),
            NftMsg::AddTable | NftMsg::DeleteTable | NftMsg::FlushChain(_) => Vec::new(),
        }
    }

    fn encode(&self, w: &mut Writer, seq: u32) {
        let (kind, flags) = match self {
            NftMsg::AddTable => (NFT_MSG_NEWTABLE, 0),
            NftMsg::DeleteTable => (NFT_MSG_DELTABLE, 0),
            NftMsg::AddChain { .. } => (NFT_MSG_NEWCHAIN, NLM_F_CREATE),
            NftMsg::AddRule { .. } => (NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND),
            NftMsg::FlushChain(_) => (NFT_MSG_DELRULE, 0),
        };
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        w.message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, |w| {
            w.raw(&[NFPROTO_INET, NFNETLINK_V0, 0, 0]);
            self.encode_attrs(w);
        });
    }

    fn encode_attrs(&self, w: &mut Writer) {
        match self {
            NftMsg::AddTable => {
                w.attr_str(NFTA_TABLE_NAME, TABLE);
                w.attr_u32_be(NFTA_TABLE_FLAGS, 0);
            }
            NftMsg::DeleteTable => w.attr_str(NFTA_TABLE_NAME, TABLE),
            NftMsg::AddChain { name, base } => encode_chain(w, name, base.as_ref()),
            NftMsg::AddRule { chain, rule } => {
                w.attr_str(NFTA_RULE_TABLE, TABLE);
                w.attr_str(NFTA_RULE_CHAIN, chain);
                w.nested(NFTA_RULE_EXPRESSIONS, |w| {
                    for expr in rule.lower() {
                        w.nested(NFTA_LIST_ELEM, |w| encode_expr(w, &expr));
                    }
                });
            }
            NftMsg::FlushChain(chain) => {
                w.attr_str(NFTA_RULE_TABLE, TABLE);
                w.attr_str(NFTA_RULE_CHAIN, chain);
            }
        }
    }
}

fn encode_chain(w: &mut Writer, name: &str, base: Option<&Base>) {
    w.attr_str(NFTA_CHAIN_TABLE, TABLE);
    w.attr_str(NFTA_CHAIN_NAME, name);
    let Some(base) = base else { return };
    w.attr_str(NFTA_CHAIN_TYPE, base.kind.name());
    w.attr_u32_be(NFTA_CHAIN_POLICY, NF_ACCEPT as u32);
    w.nested(NFTA_CHAIN_HOOK, |w| {
        w.attr_u32_be(NFTA_HOOK_HOOKNUM, base.hook.number());
        w.attr(NFTA_HOOK_PRIORITY, &base.priority.to_be_bytes());
    });
}

impl fmt::Display for NftMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftMsg::AddTable => write!(f, "add table inet {TABLE}"),
            NftMsg::DeleteTable => write!(f, "delete table inet {TABLE}"),
            NftMsg::AddChain { name, base: Some(base) } => {
                write!(f, "add chain inet {TABLE} {name} {{ {base} }}")
            }
            NftMsg::AddChain { name, base: None } => write!(f, "add chain inet {TABLE} {name}"),
            NftMsg::AddRule { chain, rule } => write!(f, "add rule inet {TABLE} {chain} {rule}"),
            NftMsg::FlushChain(chain) => write!(f, "flush chain inet {TABLE} {chain}"),
        }
    }
}

// === expressions ===

fn encode_expr(w: &mut Writer, expr: &Expr) {
    w.attr_str(NFTA_EXPR_NAME, expr_name(expr));
    w.nested(NFTA_EXPR_DATA, |w| encode_expr_data(w, expr));
}

fn expr_name(expr: &Expr) -> &'static str {
    match expr {
        Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
        Expr::Cmp { .. } => "cmp",
        Expr::Payload { .. } => "payload",
        Expr::Bitwise { .. } => "bitwise",
        Expr::Ct { .. } => "ct",
        Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
        Expr::Redir { .. } => "redir",
        Expr::Tproxy { .. } => "tproxy",
        Expr::Reject(_) => "reject",
        Expr::Counter => "counter",
    }
}

/// The attributes inside `NFTA_EXPR_DATA`, in the order `nft` writes them.
fn encode_expr_data(w: &mut Writer, expr: &Expr) {
    match expr {
        Expr::Meta { key, dreg } => {
            w.attr_u32_be(2, key.number()); // NFTA_META_KEY
            w.attr_u32_be(1, dreg.0); // NFTA_META_DREG
        }
        Expr::MetaSet { key, sreg } => {
            w.attr_u32_be(2, key.number()); // NFTA_META_KEY
            w.attr_u32_be(3, sreg.0); // NFTA_META_SREG
        }
        Expr::Cmp { sreg, op, data } => {
            w.attr_u32_be(1, sreg.0); // NFTA_CMP_SREG
            w.attr_u32_be(2, op.number()); // NFTA_CMP_OP
            w.nested(3, |w| w.attr(NFTA_DATA_VALUE, data)); // NFTA_CMP_DATA
        }
        Expr::Payload { base, offset, len, dreg } => {
            w.attr_u32_be(1, dreg.0); // NFTA_PAYLOAD_DREG
            w.attr_u32_be(2, base.number()); // NFTA_PAYLOAD_BASE
            w.attr_u32_be(3, *offset); // NFTA_PAYLOAD_OFFSET
            w.attr_u32_be(4, *len); // NFTA_PAYLOAD_LEN
        }
        Expr::Bitwise { sreg, dreg, mask, xor } => encode_bitwise(w, *sreg, *dreg, mask, xor),
        Expr::Ct { key, dreg } => {
            w.attr_u32_be(2, key.number()); // NFTA_CT_KEY
            w.attr_u32_be(1, dreg.0); // NFTA_CT_DREG
        }
        Expr::Immediate { dreg, data } => {
            w.attr_u32_be(1, dreg.0); // NFTA_IMMEDIATE_DREG
            w.nested(2, |w| w.attr(NFTA_DATA_VALUE, data)); // NFTA_IMMEDIATE_DATA
        }
        Expr::Verdict(verdict) => encode_verdict(w, *verdict),
        Expr::Redir { port } => {
            w.attr_u32_be(1, port.0); // NFTA_REDIR_REG_PROTO_MIN
            w.attr_u32_be(3, NF_NAT_RANGE_PROTO_SPECIFIED); // NFTA_REDIR_FLAGS
        }
        Expr::Tproxy { family, addr, port } => {
            w.attr_u32_be(1, u32::from(family.nfproto())); // NFTA_TPROXY_FAMILY
            if let Some(addr) = addr {
                w.attr_u32_be(2, addr.0); // NFTA_TPROXY_REG_ADDR
            }
            w.attr_u32_be(3, port.0); // NFTA_TPROXY_REG_PORT
        }
        Expr::Reject(reject) => {
            let (kind, code) = reject.type_and_code();
            w.attr_u32_be(1, kind); // NFTA_REJECT_TYPE
            w.attr(2, &[code]); // NFTA_REJECT_ICMP_CODE
        }
        // A new counter starts at zero; `nft` sends no attributes.
        Expr::Counter => {}
    }
}

fn encode_bitwise(w: &mut Writer, sreg: Reg, dreg: Reg, mask: &[u8], xor: &[u8]) {
    w.attr_u32_be(1, sreg.0); // NFTA_BITWISE_SREG
    w.attr_u32_be(2, dreg.0); // NFTA_BITWISE_DREG
    w.attr_u32_be(3, u32::try_from(mask.len()).unwrap_or(u32::MAX)); // NFTA_BITWISE_LEN
    w.nested(4, |w| w.attr(NFTA_DATA_VALUE, mask)); // NFTA_BITWISE_MASK
    w.nested(5, |w| w.attr(NFTA_DATA_VALUE, xor)); // NFTA_BITWISE_XOR
}

fn encode_verdict(w: &mut Writer, verdict: Verdict) {
    let (code, chain) = match verdict {
        Verdict::Accept => (NF_ACCEPT, None),
        Verdict::Return => (NFT_RETURN, None),
        Verdict::Jump(chain) => (NFT_JUMP, Some(chain)),
    };
    w.attr_u32_be(1, 0); // NFTA_IMMEDIATE_DREG: the verdict register
    w.nested(2, |w| {
        w.nested(NFTA_DATA_VERDICT, |w| {
            w.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
            if let Some(chain) = chain {
                w.attr_str(NFTA_VERDICT_CHAIN, chain);
            }
        });
    });
}

// === kernel numbers ===

impl ChainKind {
    fn name(self) -> &'static str {
        match self {
            ChainKind::Filter => "filter",
            ChainKind::Route => "route",
            ChainKind::Nat => "nat",
        }
    }
}

impl Hook {
    fn number(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Output => 3,
        }
    }
}

impl MetaKey {
    fn number(self) -> u32 {
        match self {
            MetaKey::Mark => 3,
            MetaKey::Iif => 4,
            MetaKey::Oif => 5,
            MetaKey::NfProto => 15,
            MetaKey::L4Proto => 16,
        }
    }
}

impl CtKey {
    fn number(self) -> u32 {
        match self {
            CtKey::State => 0,
            CtKey::Direction => 1,
        }
    }
}

impl CmpOp {
    fn number(self) -> u32 {
        match self {
            CmpOp::Eq => 0,
            CmpOp::Neq => 1,
            CmpOp::Lte => 3,
            CmpOp::Gte => 5,
        }
    }
}

impl PayloadBase {
    fn number(self) -> u32 {
        match self {
            PayloadBase::Network => 1,
            PayloadBase::Transport => 2,
        }
    }
}

impl Reject {
    /// `NFT_REJECT_ICMPX_UNREACH` + `NFT_REJECT_ICMPX_ADMIN_PROHIBITED`, or `NFT_REJECT_TCP_RST`.
    fn type_and_code(self) -> (u32, u8) {
        match self {
            Reject::IcmpxAdminProhibited => (2, 3),
            Reject::TcpReset => (1, 0),
        }
    }
}

#[cfg(test)]
mod tests;
