//! The environment, read in one place: default paths, `DOCKER_HOST`, `WHARF_*` variables.
#![allow(clippy::disallowed_methods)] // This module is the one place that reads the environment.

use std::path::PathBuf;

/// The daemon's default socket: `$WHARF_SOCKET`, else `$XDG_RUNTIME_DIR/wharf.sock`, else
/// `/run/wharf/wharf.sock` (http-api.md).
pub fn default_socket() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_SOCKET") {
        return PathBuf::from(p);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("wharf.sock"),
        None => PathBuf::from("/run/wharf/wharf.sock"),
    }
}

/// The root of per-engine state directories: `$WHARF_STATE_DIR`, else
/// `$XDG_RUNTIME_DIR/wharf`, else `/run/wharf` (root) or a per-user directory in /tmp.
pub fn default_state_root() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_STATE_DIR") {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join("wharf");
    }
    let is_root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::env::var("HOME").map(|h| h == "/root").unwrap_or(false);
    if is_root {
        PathBuf::from("/run/wharf")
    } else {
        std::env::temp_dir().join(format!("wharf-{}", whoami()))
    }
}

/// `DOCKER_HOST`, when set and not empty.
pub fn docker_host() -> Option<String> {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty())
}

/// `WHARF_URL`: the daemon's address for CLI verbs, when not the default socket.
pub fn daemon_url() -> Option<String> {
    std::env::var("WHARF_URL").ok().filter(|u| !u.is_empty())
}

/// `WHARF_TOKEN`: the bearer token for a TCP daemon.
pub fn daemon_token() -> Option<String> {
    std::env::var("WHARF_TOKEN").ok().filter(|t| !t.is_empty())
}

/// The log filter: `WHARF_LOG`, else `RUST_LOG`.
pub fn log_filter() -> Option<String> {
    std::env::var("WHARF_LOG").or_else(|_| std::env::var("RUST_LOG")).ok()
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "user".to_owned())
}
