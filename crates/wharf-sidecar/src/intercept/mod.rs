//! Traffic interception: the seam, the proof that it is in force, and its netfilter
//! implementation.
//!
//! The sidecar must never serve while unenforced (fail closed, architecture invariant I8). So
//! the control server's `serve` takes an [`Intercepting`], which only [`setup_interception`]
//! makes, and only when [`Interception::setup`] succeeded. Readiness is a successful
//! `PUT /egress`, and a PUT is only ever accepted by a server that holds that proof.
//!
//! [`NetlinkInterception`] is the real implementation: nftables rules in table `inet wharf`
//! plus, for TPROXY, policy routing, all programmed over netlink (no `nft` or `iptables`
//! binary in the image). [`NoInterception`] intercepts nothing, for tests.
//!
//! * `rules.rs` (PURE) builds the ruleset from the parameters; its module docs explain the
//!   chains and the decisions (IPv6, rejects, marks). `rules/lower.rs` lowers it to nf_tables
//!   expressions.
//! * `nftables.rs`, `routing.rs` and `netlink.rs` (PURE) encode it, byte for byte as `nft` and
//!   `ip` would, and read the kernel's answers.
//! * `socket.rs` is the only I/O: the `Netlink` trait and its kernel implementation (`rustix`,
//!   no `unsafe`); `fake.rs` is a scripted kernel for the probe tests in `tests.rs`.
//! * `tests/it/netfilter.rs` checks it all against the real kernel in throwaway namespaces.
//!
//! # Probing
//!
//! `setup` tries TPROXY first: the policy routing, then the TPROXY ruleset. When the kernel
//! refuses something only TPROXY needs (`nft_tproxy`, fwmark rules) as unsupported, it installs
//! the NAT REDIRECT ruleset instead. Any other refusal is fatal, with the kernel part that is
//! missing named, e.g. "the kernel lacks nft_tproxy and nft_redir (NAT): cannot intercept TCP;
//! refusing to run unenforced".

mod netlink;
mod nftables;
mod routing;
mod rules;
mod socket;

#[cfg(test)]
mod fake;

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::config::Cidr;
use crate::gateway::EgressGateway;

use self::nftables::NftBatch;
use self::routing::RouteRequest;
use self::rules::{Feature, Plan, TcpMode};
use self::socket::{KernelNetlink, Netlink, NetlinkError, is_unsupported};

pub use self::rules::ParamsError;

/// What interception needs to know to build its rules, taken from the flags and startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterceptParams {
    /// Where intercepted connections are tunnelled. Unlike proxy-everything, wharf's rules do
    /// not exempt its /24: the app reaches the engine only through the engine's policy (W6).
    pub gateway: EgressGateway,
    /// The Docker bridge subnet (`--docker-gateway-cidr`). Not exempt either (W6).
    pub docker_gateway_cidr: Option<Cidr>,
    /// Where the control and ingress listener is bound. Connections from the engine (arriving
    /// on an outside interface) and their replies are left alone; the app may not connect to
    /// its port.
    pub control_addr: SocketAddr,
    /// Which IP families to intercept.
    pub families: IpFamilies,
    /// Whether to intercept DNS (`--dns-enabled`).
    pub dns: DnsInterception,
    /// Where intercepted TCP is delivered: the sidecar's egress listeners (v4, and v6 unless
    /// disabled). With TPROXY they are bound with `IP_TRANSPARENT`; with REDIRECT they read
    /// `SO_ORIGINAL_DST`.
    pub tcp_listeners: Vec<SocketAddr>,
    /// The local port the sidecar's DNS listener (UDP and TCP) is bound to; UDP/53 is
    /// redirected there.
    pub dns_port: u16,
    /// Packets carrying this mark (the sidecar's own sockets: tunnels to the engine, DNS
    /// forwarding) are never intercepted. Must not be 0 (that would exempt everything).
    pub own_mark: u32,
    /// The internet flag at start (non-DNS UDP and ICMP are dropped while it is off, W7).
    pub internet: bool,
}

/// How TCP is intercepted, as probed at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptMode {
    /// TPROXY: the listener's local address is the original destination.
    Tproxy,
    /// NAT REDIRECT: the original destination comes from `SO_ORIGINAL_DST`.
    Redirect,
    /// Nothing is intercepted (tests only; never in an image).
    None,
}

impl InterceptMode {
    /// `tproxy`, `redirect` or `none`, as reported by `GET /egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            InterceptMode::Tproxy => "tproxy",
            InterceptMode::Redirect => "redirect",
            InterceptMode::None => "none",
        }
    }
}

/// The IP families interception covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamilies {
    /// IPv4 only (`--disable-ipv6`).
    V4Only,
    /// IPv4 and IPv6.
    Both,
}

/// Whether UDP/53 is intercepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsInterception {
    /// DNS goes out untouched.
    Off,
    /// DNS is answered by the allow-list (`--dns-enabled`).
    On,
}

/// Sets up traffic interception in the sidecar's network namespace.
///
/// `setup` runs once, at start, before the control listener accepts anything, so it may block.
/// It must be all-or-nothing from the caller's point of view: an `Err` makes the sidecar exit.
pub trait Interception: Send + Sync + fmt::Debug {
    /// Installs interception for `params`: TPROXY for TCP where the kernel has it, else NAT
    /// REDIRECT; UDP/53 by REDIRECT. Returns the mode in force.
    fn setup(&self, params: &InterceptParams) -> Result<InterceptMode, InterceptError>;

    /// Opens or closes the internet gate for non-DNS UDP and ICMP (W7), atomically. Called
    /// before a `PUT /egress` that changes `internet` answers.
    fn set_internet(&self, enabled: bool) -> Result<(), InterceptError>;
}

/// Intercepts nothing. Used by tests that have no `CAP_NET_ADMIN`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInterception;

/// Interception by nftables (table `inet wharf`) and policy routing, programmed over netlink.
///
/// Each call acts on the network namespace of the calling thread, through netlink sockets it
/// opens and closes itself; each blocks for one or a few netlink round trips (milliseconds).
/// It needs `CAP_NET_ADMIN`.
#[derive(Debug)]
pub struct NetlinkInterception {
    netlink: Box<dyn Netlink>,
    modes: Modes,
}

/// Which TCP modes [`NetlinkInterception::setup`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modes {
    /// TPROXY where the kernel has it, else NAT REDIRECT.
    Probe,
    /// NAT REDIRECT only.
    RedirectOnly,
}

/// Why one attempt at a mode did not succeed.
#[derive(Debug)]
enum Attempt {
    /// The kernel refused, as unsupported, something needing these parts.
    Lacks(Vec<Feature>),
    /// Anything else: fatal.
    Failed(InterceptError),
}

/// Proof that interception was set up. Only [`setup_interception`] makes one.
#[derive(Debug)]
pub struct Intercepting {
    mode: InterceptMode,
}

impl Intercepting {
    /// The mode in force.
    pub fn mode(&self) -> InterceptMode {
        self.mode
    }
}

/// Why interception could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterceptError {
    /// A setup step failed.
    #[error("interception setup failed at {step}")]
    Step {
        /// Which step, e.g. `ip rule add fwmark 0x1 lookup 100 pref 100`.
        step: String,
        /// What went wrong.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The parameters cannot be turned into rules.
    #[error("interception parameters are unusable")]
    Params(#[from] ParamsError),
    /// The kernel lacks what interception needs. No nftables batch was committed (fwmark
    /// routing added while probing TPROXY stays, inert without the rules).
    #[error("the kernel lacks {lacks}: cannot {cannot}; refusing to run unenforced")]
    Unsupported {
        /// The missing kernel parts, e.g. `nft_tproxy and nft_redir (NAT)`.
        lacks: String,
        /// What that prevents, e.g. `intercept TCP`.
        cannot: &'static str,
    },
    /// Opening or closing the internet gate failed; it is as it was.
    #[error("cannot {} the internet gate at {step}", if *enabled { "open" } else { "close" })]
    Gate {
        /// The state asked for.
        enabled: bool,
        /// Which step.
        step: String,
        /// What went wrong.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Runs `interception`'s setup and, only if it succeeded, returns the proof that it is in force.
pub fn setup_interception(
    interception: &dyn Interception,
    params: &InterceptParams,
) -> Result<Intercepting, InterceptError> {
    let mode = interception.setup(params)?;
    tracing::info!(mode = mode.as_str(), "interception in force");
    tracing::debug!(?params, implementation = ?interception);
    Ok(Intercepting { mode })
}

// === impl InterceptParams ===

impl InterceptParams {
    /// The gateway address.
    pub fn gateway_ip(&self) -> IpAddr {
        self.gateway.ip()
    }
}

// === impl NoInterception ===

impl Interception for NoInterception {
    fn setup(&self, _params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        Ok(InterceptMode::None)
    }

    fn set_internet(&self, _enabled: bool) -> Result<(), InterceptError> {
        Ok(())
    }
}

// === impl NetlinkInterception ===

impl NetlinkInterception {
    /// TPROXY where the kernel has it, else NAT REDIRECT.
    pub fn new() -> NetlinkInterception {
        NetlinkInterception::with_netlink(Box::new(KernelNetlink), Modes::Probe)
    }

    /// NAT REDIRECT only, never TPROXY: for tests, and for kernels whose TPROXY misbehaves.
    pub fn redirect_only() -> NetlinkInterception {
        NetlinkInterception::with_netlink(Box::new(KernelNetlink), Modes::RedirectOnly)
    }

    fn with_netlink(netlink: Box<dyn Netlink>, modes: Modes) -> NetlinkInterception {
        NetlinkInterception { netlink, modes }
    }

    /// TPROXY, or REDIRECT when the kernel lacks only what TPROXY needs.
    fn probe(&self, plan: &Plan) -> Result<TcpMode, InterceptError> {
        let lacks = match self.attempt(plan, TcpMode::Tproxy) {
            Ok(()) => return Ok(TcpMode::Tproxy),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Lacks(lacks)) if !only_tproxy_needs(&lacks) => {
                // REDIRECT would need it too. Under TPROXY, NAT is only DNS's.
                let cannot = if lacks.contains(&Feature::Nat) {
                    "intercept DNS"
                } else {
                    "enforce the egress rules"
                };
                return Err(InterceptError::Unsupported { lacks: one_of(&lacks), cannot });
            }
            Err(Attempt::Lacks(lacks)) => lacks,
        };
        tracing::warn!(
            lacks = %one_of(&lacks),
            "the kernel cannot TPROXY; intercepting TCP with NAT REDIRECT instead"
        );
        self.redirect(plan, Some(&lacks))
    }

    /// REDIRECT; `tproxy_lacks` is why TPROXY was not used, for the error.
    fn redirect(
        &self,
        plan: &Plan,
        tproxy_lacks: Option<&[Feature]>,
    ) -> Result<TcpMode, InterceptError> {
        plan.check_redirect()?;
        let lacks = match self.attempt(plan, TcpMode::Redirect) {
            Ok(()) => return Ok(TcpMode::Redirect),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Lacks(lacks)) => one_of(&lacks),
        };
        let lacks = match tproxy_lacks {
            Some(tproxy) => format!("{} and {lacks}", one_of(tproxy)),
            None => lacks,
        };
        Err(InterceptError::Unsupported { lacks, cannot: "intercept TCP" })
    }

    /// Installs everything `mode` needs.
    fn attempt(&self, plan: &Plan, mode: TcpMode) -> Result<(), Attempt> {
        if mode == TcpMode::Tproxy {
            self.policy_routing(plan)?;
        }
        let ruleset = rules::ruleset(plan, mode);
        tracing::debug!(?mode, %ruleset, "installing the interception rules");
        let batch = NftBatch::replace(&ruleset);
        match self.netlink.commit(&batch) {
            Ok(()) => Ok(()),
            Err(error) => Err(classify(&batch, error)),
        }
    }

    fn policy_routing(&self, plan: &Plan) -> Result<(), Attempt> {
        for request in RouteRequest::for_tproxy(plan.v6_listener.is_some()) {
            match self.netlink.route(request) {
                Ok(()) => {}
                Err(NetlinkError::Refused { errno, .. }) if request.done_despite(errno) => {}
                Err(NetlinkError::Refused { errno, .. }) if is_unsupported(errno) => {
                    return Err(Attempt::Lacks(vec![Feature::PolicyRouting]));
                }
                Err(e) => {
                    let step = request.to_string();
                    return Err(Attempt::Failed(InterceptError::Step {
                        step,
                        source: Box::new(e),
                    }));
                }
            }
        }
        Ok(())
    }
}

impl Default for NetlinkInterception {
    fn default() -> NetlinkInterception {
        NetlinkInterception::new()
    }
}

impl Interception for NetlinkInterception {
    fn setup(&self, params: &InterceptParams) -> Result<InterceptMode, InterceptError> {
        let plan = Plan::new(params)?;
        let mode = match self.modes {
            Modes::Probe => self.probe(&plan)?,
            Modes::RedirectOnly => self.redirect(&plan, None)?,
        };
        Ok(mode.intercept_mode())
    }

    fn set_internet(&self, enabled: bool) -> Result<(), InterceptError> {
        let batch = NftBatch::set_internet(enabled);
        self.netlink.commit(&batch).map_err(|error| InterceptError::Gate {
            enabled,
            step: failed_step(&batch, &error),
            source: Box::new(error),
        })?;
        tracing::info!(enabled, "internet gate set");
        Ok(())
    }
}

/// An unsupported refusal of a message needing something beyond nf_tables' core is a missing
/// kernel part; anything else is fatal.
fn classify(batch: &NftBatch, error: NetlinkError) -> Attempt {
    if let NetlinkError::Refused { index: Some(index), errno } = error {
        let features = batch.messages().get(index).map(|msg| msg.features()).unwrap_or_default();
        if is_unsupported(errno) && !features.is_empty() {
            return Attempt::Lacks(features);
        }
    }
    let step = failed_step(batch, &error);
    Attempt::Failed(InterceptError::Step { step, source: Box::new(error) })
}

/// The refused message, or the batch as a whole.
fn failed_step(batch: &NftBatch, error: &NetlinkError) -> String {
    match error {
        NetlinkError::Refused { index: Some(index), .. } => match batch.messages().get(*index) {
            Some(msg) => msg.to_string(),
            None => format!("message {index} of an nftables batch"),
        },
        _ => format!("an nftables batch of {} messages", batch.messages().len()),
    }
}

/// Whether REDIRECT can do without what is missing.
fn only_tproxy_needs(lacks: &[Feature]) -> bool {
    lacks.iter().any(|f| matches!(f, Feature::Tproxy | Feature::PolicyRouting))
}

/// The parts one refused message needs: the kernel lacks at least one of them (a rule needing
/// conntrack and reject cannot tell which).
fn one_of(lacks: &[Feature]) -> String {
    let names: Vec<String> = lacks.iter().map(Feature::to_string).collect();
    names.join(" or ")
}

#[cfg(test)]
mod tests;
