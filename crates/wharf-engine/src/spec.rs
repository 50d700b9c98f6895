//! Pure: turns what the engine wants into [`ContainerSpec`]s for the sidecar and the app.
//!
//! **Architecture invariant:** this is the only builder of create bodies, so every container
//! wharf creates carries the ownership labels (`crate::labels`). Nothing here does I/O.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use wharf_wire::control::CONTROL_PORT;

use crate::docker::{BridgeInfo, ContainerSpec, NetworkMode, Publish, Resources};
use crate::labels::{Owner, Role};
use crate::params::{ContainerId, StartParams};

/// The `CLOUDFLARE_*` defaults every app gets (engine spec §4.6). User env overrides them.
pub const CLOUDFLARE_DEFAULTS: [(&str, &str); 6] = [
    ("CLOUDFLARE_COUNTRY_A2", "XX"),
    ("CLOUDFLARE_DEPLOYMENT_ID", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"),
    ("CLOUDFLARE_LOCATION", "loc01"),
    ("CLOUDFLARE_REGION", "REGN"),
    ("CLOUDFLARE_APPLICATION_ID", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"),
    (
        "CLOUDFLARE_DURABLE_OBJECT_ID",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ),
];

/// Docker names of one slot's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The app container.
    pub app: String,
    /// The sidecar that owns the app's network namespace.
    pub sidecar: String,
}

/// What the sidecar needs to know at create time.
#[derive(Debug, Clone, Copy)]
pub struct SidecarPlan<'a> {
    /// The sidecar image reference.
    pub image: &'a str,
    /// The engine's egress listener port on the gateway.
    pub egress_port: u16,
    /// The default bridge, as Docker reports it.
    pub bridge: &'a BridgeInfo,
    /// The per-sidecar control token.
    pub token: &'a str,
    /// Upstream DNS resolvers for the sidecar (empty: Docker's default).
    pub dns: &'a [IpAddr],
}

// === impl Names ===

impl Names {
    /// Names for container `id` of engine `engine`.
    pub fn new(engine: &str, id: &ContainerId) -> Names {
        let app = format!("wharf-{engine}-{id}");
        Names { sidecar: format!("{app}-sidecar"), app }
    }
}

/// The gateway address containers on the bridge reach the host at.
///
/// Docker 20.10 as installed here reports no `Gateway` (W43), so fall back to the first host of
/// the subnet, which is what dockerd assigns to the bridge by default.
pub fn bridge_gateway(bridge: &BridgeInfo) -> Option<IpAddr> {
    bridge.gateway.or_else(|| match bridge.subnet? {
        ipnet::IpNet::V4(net) => {
            let first = u32::from(net.network()).checked_add(1)?;
            Some(IpAddr::V4(Ipv4Addr::from(first)))
        }
        ipnet::IpNet::V6(_) => None,
    })
}

/// The sidecar's create body: bridge network, `NET_ADMIN`, control port on 127.0.0.1 only (W5),
/// proxy-everything's flags plus `--control-token`.
pub fn sidecar(
    names: &Names,
    id: &ContainerId,
    owner: Owner<'_>,
    plan: SidecarPlan<'_>,
) -> ContainerSpec {
    sidecar_named(&names.sidecar, owner.labels(Role::Sidecar, Some(id.as_str())), plan)
}

/// A sidecar for the warm pool: the same body, but named `name` and owned by no container id
/// until an app claims it (the app's [`crate::labels::SIDECAR`] label then names it).
pub fn pooled_sidecar(name: &str, owner: Owner<'_>, plan: SidecarPlan<'_>) -> ContainerSpec {
    sidecar_named(name, owner.labels(Role::Sidecar, None), plan)
}

fn sidecar_named(
    name: &str,
    labels: BTreeMap<String, String>,
    plan: SidecarPlan<'_>,
) -> ContainerSpec {
    let mut cmd = vec![
        "--http-egress-port".to_owned(),
        plan.egress_port.to_string(),
        "--http-ingress-address".to_owned(),
        format!("0.0.0.0:{CONTROL_PORT}"),
    ];
    if let Some(subnet) = plan.bridge.subnet {
        cmd.extend(["--docker-gateway-cidr".to_owned(), subnet.to_string()]);
    }
    if let Some(gateway) = bridge_gateway(plan.bridge) {
        cmd.extend(["--gateway-ip".to_owned(), gateway.to_string()]);
    }
    cmd.extend(["--dns-enabled".to_owned(), "--tls-intercept".to_owned()]);
    if !plan.bridge.ipv6 {
        cmd.push("--disable-ipv6".to_owned());
    }
    cmd.extend(["--control-token".to_owned(), plan.token.to_owned()]);
    ContainerSpec {
        name: name.to_owned(),
        image: plan.image.to_owned(),
        entrypoint: None,
        cmd: Some(cmd),
        env: Vec::new(),
        labels,
        network: NetworkMode::Bridge,
        publish: vec![Publish {
            container_port: CONTROL_PORT,
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }],
        cap_add: vec!["NET_ADMIN".to_owned()],
        cap_drop: Vec::new(),
        extra_hosts: vec!["host.docker.internal:host-gateway".to_owned()],
        dns: plan.dns.iter().map(IpAddr::to_string).collect(),
        sysctls: BTreeMap::new(),
        resources: Resources::default(),
    }
}

/// The app's create body: it joins the sidecar's network namespace and never restarts (W13).
pub fn app(
    names: &Names,
    id: &ContainerId,
    owner: Owner<'_>,
    params: &StartParams,
) -> ContainerSpec {
    ContainerSpec {
        name: names.app.clone(),
        image: params.image.as_str().to_owned(),
        entrypoint: None,
        cmd: params.entrypoint.clone(),
        env: app_env(params),
        labels: {
            let mut labels = owner.labels(Role::App, Some(id.as_str()));
            labels.insert(crate::labels::SIDECAR.to_owned(), names.sidecar.clone());
            labels
        },
        network: NetworkMode::Container(names.sidecar.clone()),
        publish: Vec::new(),
        cap_add: Vec::new(),
        // Packet sockets bypass the sidecar's netfilter hooks: without NET_RAW the app cannot
        // put a byte on the wire except through the policy.
        cap_drop: vec!["NET_RAW".to_owned()],
        extra_hosts: Vec::new(),
        dns: Vec::new(),
        sysctls: BTreeMap::new(),
        resources: resources(params),
    }
}

/// The defaults (`CLOUDFLARE_*`, then the CA trust variables) first, each replaced by a user
/// entry of the same name (W28), then the rest of the user's entries in their order. No name
/// appears twice, so no Docker precedence rule is relied on.
fn app_env(params: &StartParams) -> Vec<String> {
    let user = |name: &str| params.env.iter().rev().find(|e| e.name() == name);
    let all_defaults = CLOUDFLARE_DEFAULTS.iter().chain(crate::trust::TRUST_ENV.iter());
    let defaults = all_defaults.filter(|(name, _)| user(name).is_none());
    let mut env: Vec<String> = defaults.map(|(n, v)| format!("{n}={v}")).collect();
    for (i, var) in params.env.iter().enumerate() {
        // Only the last entry of a repeated name counts, as in Docker.
        if params.env[i + 1..].iter().all(|later| later.name() != var.name()) {
            env.push(var.to_string());
        }
    }
    env
}

fn resources(params: &StartParams) -> Resources {
    let nano_cpus = params.shape.vcpu.map_or(0, |v| (v * 1e9).round() as i64);
    let memory_bytes = params.shape.memory_mib.map_or(0, |m| (m as i64).saturating_mul(1 << 20));
    Resources { nano_cpus, memory_bytes }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use expect_test::expect;

    use super::*;
    use crate::params::{EnvVar, ImageRef, Labels, Shape};

    fn params(env: &[&str]) -> StartParams {
        StartParams {
            image: ImageRef::new("wharf/testapp:latest").unwrap(),
            entrypoint: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), "exit 0".to_owned()]),
            env: env.iter().map(|e| EnvVar::parse(e).unwrap()).collect(),
            enable_internet: false,
            labels: Labels::default(),
            hard_timeout: None,
            shape: Shape::new(Some(0.5), Some(256.0), None).unwrap(),
        }
    }

    fn owner() -> Owner<'static> {
        Owner { engine: "ci", lock: Path::new("/run/wharf/ci/lock") }
    }

    fn id() -> ContainerId {
        ContainerId::new("web-1").unwrap()
    }

    #[test]
    fn names() {
        let names = Names::new("ci", &id());
        assert_eq!(names.app, "wharf-ci-web-1");
        assert_eq!(names.sidecar, "wharf-ci-web-1-sidecar");
    }

    #[test]
    fn gateway_is_derived_when_docker_omits_it() {
        let bridge =
            BridgeInfo { subnet: "172.17.0.0/16".parse().ok(), gateway: None, ipv6: false };
        assert_eq!(bridge_gateway(&bridge), "172.17.0.1".parse().ok());
        let reported = BridgeInfo { gateway: "10.0.0.254".parse().ok(), ..bridge.clone() };
        assert_eq!(bridge_gateway(&reported), "10.0.0.254".parse().ok());
        assert_eq!(bridge_gateway(&BridgeInfo { subnet: None, ..bridge }), None);
    }

    #[test]
    fn sidecar_spec() {
        let bridge =
            BridgeInfo { subnet: "172.17.0.0/16".parse().ok(), gateway: None, ipv6: false };
        let plan = SidecarPlan {
            image: "wharf/sidecar:1",
            egress_port: 40123,
            bridge: &bridge,
            token: "tok",
            dns: &[],
        };
        let spec = sidecar(&Names::new("ci", &id()), &id(), owner(), plan);
        expect![[r#"
            Some(
                [
                    "--http-egress-port",
                    "40123",
                    "--http-ingress-address",
                    "0.0.0.0:39001",
                    "--docker-gateway-cidr",
                    "172.17.0.0/16",
                    "--gateway-ip",
                    "172.17.0.1",
                    "--dns-enabled",
                    "--tls-intercept",
                    "--disable-ipv6",
                    "--control-token",
                    "tok",
                ],
            )
        "#]]
        .assert_debug_eq(&spec.cmd);
        assert_eq!(
            spec.publish,
            [Publish { container_port: 39001, host_ip: "127.0.0.1".parse().unwrap() }]
        );
        assert_eq!(spec.labels[crate::labels::ROLE], "sidecar");
        assert_eq!(spec.labels[crate::labels::CONTAINER], "web-1");
        assert_eq!(spec.cap_add, ["NET_ADMIN"]);
    }

    #[test]
    fn app_spec_joins_the_sidecar_and_user_env_wins() {
        let spec = app(
            &Names::new("ci", &id()),
            &id(),
            owner(),
            &params(&["CLOUDFLARE_REGION=EU", "A=1", "A=2"]),
        );
        assert_eq!(spec.network, NetworkMode::Container("wharf-ci-web-1-sidecar".to_owned()));
        assert_eq!(spec.labels[crate::labels::ROLE], "app");
        assert!(spec.env.contains(&"CLOUDFLARE_REGION=EU".to_owned()));
        assert!(!spec.env.contains(&"CLOUDFLARE_REGION=REGN".to_owned()));
        assert!(spec.env.contains(&"CLOUDFLARE_LOCATION=loc01".to_owned()));
        assert!(spec.env.contains(
            &"NODE_EXTRA_CA_CERTS=/etc/cloudflare/certs/cloudflare-containers-ca.crt".to_owned()
        ));
        assert_eq!(spec.env.iter().filter(|e| e.starts_with("A=")).collect::<Vec<_>>(), ["A=2"]);
        assert_eq!(spec.resources, Resources { nano_cpus: 500_000_000, memory_bytes: 256 << 20 });
        assert!(spec.publish.is_empty() && spec.extra_hosts.is_empty());
        assert_eq!(spec.cap_drop, ["NET_RAW"]);
    }
}
