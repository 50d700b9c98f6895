//! Every fake-internet role at once, configured from the environment as the binary does.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use wharf_testapp::config::Config;
use wharf_testapp::dns_client;
use wharf_testapp::roles::Roles;
use wharf_wire::dns::rtype;

use crate::support::{RECORDS, loopback_config, start_roles};

fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test]
async fn all_roles_run_together() {
    let mut config = Config::from_strings(&env(&[
        ("TCP_PORT", "0"),
        ("UDP_PORT", "0"),
        ("GREETING_PORT", "0"),
        ("DNS_STUB", "1"),
        ("DNS_PORT", "0"),
        ("DNS_RECORDS", RECORDS),
    ]))
    .unwrap();
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let addrs = start_roles(&config).await;

    let mut tcp = TcpStream::connect(addrs.tcp_echo.unwrap()).await.unwrap();
    tcp.write_all(b"t").await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "echo:t");

    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    udp.send_to(b"u", addrs.udp_echo.unwrap()).await.unwrap();
    let mut buf = [0; 16];
    let len = udp.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..len], b"echo:u");

    let mut greeter = TcpStream::connect(addrs.greeter.unwrap()).await.unwrap();
    let mut greeting = [0; 25];
    greeter.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"220 wharf-greeter ready\r\n");

    let dns = addrs.dns.unwrap();
    let over_udp = dns_client::query_udp(dns, "example.com", rtype::A).await.unwrap();
    let over_tcp = dns_client::query_tcp(dns, "v6.example.com", rtype::AAAA).await.unwrap();
    assert_eq!(over_udp.ips().map(|ip| ip.to_string()).collect::<Vec<_>>(), ["10.201.0.10"]);
    assert_eq!(over_tcp.ips().map(|ip| ip.to_string()).collect::<Vec<_>>(), ["2001:db8::10"]);
}

#[tokio::test]
async fn a_taken_port_fails_the_start() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let mut config = loopback_config();
    config.udp_echo_port = Some(0);
    config.greeting_port = Some(taken.local_addr().unwrap().port());
    let err = Roles::bind(&config).await.unwrap_err();
    assert_eq!(err.to_string(), format!("binding the greeter on {}", taken.local_addr().unwrap()));
    assert_eq!(err.source.kind(), std::io::ErrorKind::AddrInUse);
}
