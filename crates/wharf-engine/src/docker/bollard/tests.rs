//! Tier-0 tests of the pure parts of `bollard.rs`: host parsing, create bodies, answer mapping.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use bollard::models::{ContainerState, EndpointSettings, NetworkSettings};
use expect_test::{Expect, expect};

use super::*;
use crate::docker::{Publish, Resources};

fn check_host(host: Option<&str>, expected: Expect) {
    expected.assert_eq(&format!("{:?}", parse_host(host)));
}

#[test]
fn hosts() {
    check_host(None, expect![[r#"Ok(Unix("/var/run/docker.sock"))"#]]);
    check_host(
        Some("unix:///run/user/1000/docker.sock"),
        expect![[r#"Ok(Unix("/run/user/1000/docker.sock"))"#]],
    );
    check_host(Some("unix:/var/run/docker.sock"), expect![[r#"Ok(Unix("/var/run/docker.sock"))"#]]);
    check_host(Some("/tmp/d.sock"), expect![[r#"Ok(Unix("/tmp/d.sock"))"#]]);
    check_host(Some("tcp://127.0.0.1:2375"), expect![[r#"Ok(Http("127.0.0.1:2375"))"#]]);
    check_host(Some("http://docker:2375/"), expect![[r#"Ok(Http("docker:2375"))"#]]);
    check_host(
        Some("ssh://me@host"),
        expect![[
            r#"Err(Other { status: 0, message: "unsupported docker host \"ssh://me@host\": use unix:///path, /path, tcp://host:port or http://host:port" })"#
        ]],
    );
    check_host(
        Some("unix://relative.sock"),
        expect![[
            r#"Err(Other { status: 0, message: "unsupported docker host \"unix://relative.sock\": use unix:///path, /path, tcp://host:port or http://host:port" })"#
        ]],
    );
}

fn spec(name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: "wharf/testapp:latest".to_owned(),
        entrypoint: None,
        cmd: None,
        env: Vec::new(),
        labels: BTreeMap::new(),
        network: NetworkMode::Bridge,
        publish: Vec::new(),
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        extra_hosts: Vec::new(),
        dns: Vec::new(),
        sysctls: BTreeMap::new(),
        resources: Resources::default(),
    }
}

fn check_body(spec: &ContainerSpec, expected: Expect) {
    let json = serde_json::to_value(create_body(spec)).expect("a create body serializes");
    expected.assert_eq(&serde_json::to_string_pretty(&json).expect("json prints"));
}

#[test]
fn minimal_body_has_no_zero_fields() {
    check_body(
        &spec("app"),
        expect![[r#"
            {
              "Image": "wharf/testapp:latest",
              "HostConfig": {
                "NetworkMode": "bridge",
                "RestartPolicy": {
                  "Name": "no"
                }
              }
            }"#]],
    );
}

#[test]
fn sidecar_like_body() {
    let mut s = spec("app-proxy");
    s.cmd = Some(vec!["--http-egress-port".to_owned(), "4000".to_owned()]);
    s.env = vec!["A=1".to_owned()];
    s.labels = BTreeMap::from([("dev.wharf.managed".to_owned(), "true".to_owned())]);
    s.publish = vec![
        Publish { container_port: 39001, host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST) },
        Publish { container_port: 39001, host_ip: "::1".parse().expect("literal") },
    ];
    s.cap_add = vec!["NET_ADMIN".to_owned()];
    s.extra_hosts = vec!["host.docker.internal:host-gateway".to_owned()];
    s.dns = vec!["1.1.1.1".to_owned()];
    s.sysctls = BTreeMap::from([("net.ipv6.conf.all.disable_ipv6".to_owned(), "1".to_owned())]);
    s.resources = Resources { nano_cpus: 500_000_000, memory_bytes: 0 };
    check_body(
        &s,
        expect![[r#"
            {
              "ExposedPorts": {
                "39001/tcp": {}
              },
              "Env": [
                "A=1"
              ],
              "Cmd": [
                "--http-egress-port",
                "4000"
              ],
              "Image": "wharf/testapp:latest",
              "Labels": {
                "dev.wharf.managed": "true"
              },
              "HostConfig": {
                "NanoCpus": 500000000,
                "NetworkMode": "bridge",
                "PortBindings": {
                  "39001/tcp": [
                    {
                      "HostIp": "127.0.0.1",
                      "HostPort": ""
                    },
                    {
                      "HostIp": "::1",
                      "HostPort": ""
                    }
                  ]
                },
                "RestartPolicy": {
                  "Name": "no"
                },
                "CapAdd": [
                  "NET_ADMIN"
                ],
                "Dns": [
                  "1.1.1.1"
                ],
                "ExtraHosts": [
                  "host.docker.internal:host-gateway"
                ],
                "Sysctls": {
                  "net.ipv6.conf.all.disable_ipv6": "1"
                }
              }
            }"#]],
    );
}

#[test]
fn app_joins_sidecar_namespace() {
    let mut s = spec("app");
    s.network = NetworkMode::Container("app-proxy".to_owned());
    s.entrypoint = Some(vec!["/bin/sh".to_owned()]);
    s.resources = Resources { nano_cpus: 0, memory_bytes: 64 << 20 };
    check_body(
        &s,
        expect![[r#"
            {
              "Image": "wharf/testapp:latest",
              "Entrypoint": [
                "/bin/sh"
              ],
              "HostConfig": {
                "Memory": 67108864,
                "NetworkMode": "container:app-proxy",
                "RestartPolicy": {
                  "Name": "no"
                }
              }
            }"#]],
    );
}

#[test]
fn exec_body() {
    let spec = ExecSpec {
        cmd: vec!["sh".to_owned()],
        env: vec!["X=1".to_owned()],
        cwd: Some("/tmp".to_owned()),
        user: Some("nobody".to_owned()),
        stdin: true,
        tty: Some((80, 24)),
    };
    let json = serde_json::to_string(&exec_config(&spec)).expect("serializes");
    expect![[r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"ConsoleSize":[24,80],"Tty":true,"Env":["X=1"],"Cmd":["sh"],"User":"nobody","WorkingDir":"/tmp"}"#]]
        .assert_eq(&json);
}

fn ipam(subnet: &str, gateway: Option<&str>) -> IpamConfig {
    IpamConfig {
        subnet: Some(subnet.to_owned()),
        gateway: gateway.map(str::to_owned),
        ..Default::default()
    }
}

#[test]
fn bridges() {
    // Debian's Docker 20.10 here: no gateway (W43).
    expect![[r#"BridgeInfo { subnet: Some(172.17.0.0/16), gateway: None, ipv6: false }"#]]
        .assert_eq(&format!("{:?}", bridge_info(&[ipam("172.17.0.0/16", None)])));
    expect![[
        r#"BridgeInfo { subnet: Some(172.17.0.0/16), gateway: Some(172.17.0.1), ipv6: true }"#
    ]]
    .assert_eq(&format!(
        "{:?}",
        bridge_info(&[ipam("fd00::/64", Some("")), ipam("172.17.0.0/16", Some("172.17.0.1"))])
    ));
    expect![[r#"BridgeInfo { subnet: None, gateway: None, ipv6: false }"#]]
        .assert_eq(&format!("{:?}", bridge_info(&[])));
}

fn inspect_answer(status: ContainerStateStatusEnum) -> ContainerInspectResponse {
    let ports = PortMap::from([
        (
            "39001/tcp".to_owned(),
            Some(vec![
                PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some("32770".to_owned()),
                },
                PortBinding { host_ip: Some(String::new()), host_port: Some("32771".to_owned()) },
                PortBinding { host_ip: Some("::".to_owned()), host_port: Some("32772".to_owned()) },
            ]),
        ),
        (
            "53/udp".to_owned(),
            Some(vec![PortBinding { host_ip: None, host_port: Some("1".to_owned()) }]),
        ),
        ("80/tcp".to_owned(), None),
    ]);
    ContainerInspectResponse {
        id: Some("abc".to_owned()),
        name: Some("/app-proxy".to_owned()),
        state: Some(ContainerState {
            status: Some(status),
            exit_code: Some(137),
            oom_killed: Some(true),
            ..Default::default()
        }),
        config: Some(bollard::models::ContainerConfig {
            image: Some("wharf/sidecar:0.1.0-abc".to_owned()),
            cmd: Some(vec!["--x".to_owned()]),
            labels: Some(HashMap::from([("k".to_owned(), "v".to_owned())])),
            ..Default::default()
        }),
        network_settings: Some(NetworkSettings {
            ports: Some(ports),
            networks: Some(HashMap::from([(
                "bridge".to_owned(),
                EndpointSettings { gateway: Some("172.17.0.1".to_owned()), ..Default::default() },
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn inspect_maps_state_ports_and_gateway() {
    let info = container_info(inspect_answer(ContainerStateStatusEnum::EXITED));
    expect![[r#"
        Ok(
            ContainerInfo {
                id: "abc",
                name: "app-proxy",
                image: "wharf/sidecar:0.1.0-abc",
                labels: {
                    "k": "v",
                },
                cmd: [
                    "--x",
                ],
                state: Exited,
                exit_code: 137,
                oom_killed: true,
                published: {
                    39001: [
                        127.0.0.1:32770,
                        0.0.0.0:32771,
                        [::]:32772,
                    ],
                },
                gateway: Some(
                    172.17.0.1,
                ),
                ip: None,
            },
        )"#]]
    .assert_eq(&format!("{info:#?}"));
}

#[test]
fn inspect_rejects_missing_state() {
    let mut answer = inspect_answer(ContainerStateStatusEnum::EMPTY);
    expect![[
        r#"Err(Other { status: 0, message: "container app-proxy has an empty State.Status" })"#
    ]]
    .assert_eq(&format!("{:?}", container_info(answer.clone())));
    answer.state = None;
    expect![[r#"Err(Other { status: 0, message: "docker answer has no container State" })"#]]
        .assert_eq(&format!("{:?}", container_info(answer)));
}

#[test]
fn joined_container_has_no_gateway() {
    let mut answer = inspect_answer(ContainerStateStatusEnum::RUNNING);
    answer.network_settings = Some(NetworkSettings {
        networks: Some(HashMap::from([(
            "bridge".to_owned(),
            EndpointSettings { gateway: Some(String::new()), ..Default::default() },
        )])),
        ..Default::default()
    });
    let info = container_info(answer).expect("maps");
    assert_eq!((info.gateway, info.published.len()), (None, 0));
}

fn check_error(err: BollardError, expected: Expect) {
    expected.assert_eq(&format!("{:?}", classify(err)));
}

#[test]
fn errors_are_classified_by_variant() {
    let server = |status_code, message: &str| BollardError::DockerResponseServerError {
        status_code,
        message: message.to_owned(),
    };
    check_error(
        server(404, "No such container: x"),
        expect![[r#"NotFound("No such container: x")"#]],
    );
    check_error(server(409, "name in use"), expect![[r#"Conflict("name in use")"#]]);
    check_error(server(304, ""), expect!["NotModified"]);
    check_error(server(500, "boom"), expect![[r#"Other { status: 500, message: "boom" }"#]]);
    check_error(
        BollardError::RequestTimeoutError,
        expect![[r#"Unavailable("no answer within 60s")"#]],
    );
    check_error(
        BollardError::SocketNotFoundError("/nope.sock".to_owned()),
        expect![[r#"Unavailable("Socket not found: /nope.sock")"#]],
    );
    check_error(
        BollardError::IOError { err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused) },
        expect![[r#"Unavailable("connection refused")"#]],
    );
    check_error(
        BollardError::DockerStreamError { error: "bad".to_owned() },
        expect![[r#"Other { status: 0, message: "Docker stream error: bad" }"#]],
    );
}

#[test]
fn image_names_skip_none_tags() {
    assert_eq!(image_name(&["<none>:<none>".to_owned()], "sha256:1"), "sha256:1");
    assert_eq!(image_name(&["wharf/x:1".to_owned()], "sha256:1"), "wharf/x:1");
    assert_eq!(image_name(&[], "sha256:1"), "sha256:1");
}

#[tokio::test]
async fn connect_to_a_missing_socket_is_unavailable() {
    let err = BollardDocker::connect(Some("unix:///nonexistent/wharf.sock")).await.map(|_| ());
    expect![[r#"Err(Unavailable("Socket not found: /nonexistent/wharf.sock"))"#]]
        .assert_eq(&format!("{err:?}"));
}
