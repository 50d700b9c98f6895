//! `wharf port-forward ID [LOCAL:]REMOTE`: a local listener whose every connection becomes a
//! raw stream to the container port (the ports upgrade).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

use super::container_path;
use crate::cli::PortForwardArgs;
use crate::client::Client;
use crate::{UsageError, output};

pub(crate) async fn port_forward(
    client: &Client,
    args: PortForwardArgs,
) -> anyhow::Result<ExitCode> {
    let (local, remote) = parse_ports(&args.ports)?;
    let path = container_path(&args.id, &format!("/ports/{remote}"))?;
    let listener = TcpListener::bind(SocketAddr::new(args.address, local))
        .await
        .with_context(|| format!("cannot listen on {}:{local}", args.address))?;
    let bound = listener.local_addr()?;
    output::line(&format!("forwarding {bound} -> {}:{remote}", args.id));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = accepted?;
                tokio::spawn(forward_one(client.clone(), path.clone(), stream, peer));
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn forward_one(client: Client, path: String, mut local: TcpStream, peer: SocketAddr) {
    match client.upgrade(&path, "tcp").await {
        Ok(mut remote) => {
            let _ = wharf_engine::io_util::relay(&mut local, &mut remote).await;
        }
        Err(e) => output::error(&format!("connection from {peer}: {e}")),
    }
}

/// `8080` (same port locally), `9000:8080` or `0:8080` (any free port) → (local, remote).
fn parse_ports(raw: &str) -> Result<(u16, u16), UsageError> {
    let bad = || {
        UsageError(format!(
            "ports {raw:?} must look like REMOTE or LOCAL:REMOTE, e.g. 8080 or 9000:8080"
        ))
    };
    let (local, remote) = match raw.split_once(':') {
        Some((l, r)) => (l.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?),
        None => {
            let p: u16 = raw.parse().map_err(|_| bad())?;
            (p, p)
        }
    };
    if remote == 0 {
        return Err(bad());
    }
    Ok((local, remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_ports("8080").unwrap(), (8080, 8080));
        assert_eq!(parse_ports("0:8080").unwrap(), (0, 8080));
        assert_eq!(parse_ports("9000:80").unwrap(), (9000, 80));
        for bad in ["", "x", "1:0", "70000", "1:2:3"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }
}
