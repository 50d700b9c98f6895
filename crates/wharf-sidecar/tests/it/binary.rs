//! The `wharf-sidecar` binary itself: usage errors, failing closed, and a prompt exit on SIGTERM.
//!
//! The binary sets up real interception, so every run that gets that far happens in a fresh
//! network namespace (`unshare -n`, with `lo` up and a veth uplink), never in the test host's:
//! [`NetnsSidecar`]. Those tests need root and `unshare`/`ip`, and are skipped otherwise, with
//! one line on stderr.

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_wharf-sidecar");

/// Network setup before the sidecar starts: loopback up, and an uplink (one end of a veth pair
/// whose other end goes nowhere, with a default route) so that outbound traffic is routable.
const NETNS_SETUP: &str = "ip link set lo up && ip link add d0 type veth peer name d1 \
     && ip link set d1 up && ip link set d0 up && ip addr add 10.9.0.2/24 dev d0 \
     && ip route add default via 10.9.0.1 dev d0";

/// The sidecar binary running alone in a fresh network namespace; killed when dropped.
pub(crate) struct NetnsSidecar {
    child: Child,
    stderr: BufReader<ChildStderr>,
    /// Every log line read so far.
    pub(crate) log: Vec<String>,
    _ca_dir: TempDir,
}

impl NetnsSidecar {
    /// Starts the binary with `args` (plus a temp `--ca-dir`), or `None` when the host cannot
    /// make network namespaces for it (the reason goes to stderr once).
    pub(crate) fn spawn(args: &[&str]) -> Option<NetnsSidecar> {
        if !can_make_netns() {
            return None;
        }
        let ca_dir = tempfile::tempdir().unwrap();
        // $0 is the binary, $1 the CA dir, the rest its flags.
        let script =
            format!("{NETNS_SETUP} && dir=\"$1\" && shift && exec \"$0\" --ca-dir \"$dir\" \"$@\"");
        let mut child = Command::new("unshare")
            .args(["-n", "sh", "-c", &script, BIN])
            .arg(ca_dir.path())
            .args(args)
            .env("WHARF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        Some(NetnsSidecar { child, stderr, log: Vec::new(), _ca_dir: ca_dir })
    }

    /// The process id (the binary's: `unshare` and `sh` exec into it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the log until a line contains `needle`; `false` if the process ended first.
    pub(crate) fn wait_for(&mut self, needle: &str) -> bool {
        loop {
            let mut line = String::new();
            if self.stderr.read_line(&mut line).unwrap() == 0 {
                return false;
            }
            let found = line.contains(needle);
            self.log.push(line);
            if found {
                return true;
            }
        }
    }

    /// Sends SIGTERM and waits; the exit code and how long the exit took.
    pub(crate) fn terminate(mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let kill = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        (status.code(), started.elapsed())
    }

    /// Waits for the process to exit by itself; its exit code.
    pub(crate) fn exit_code(&mut self) -> Option<i32> {
        while self.wait_for("") {}
        self.child.wait().unwrap().code()
    }
}

impl Drop for NetnsSidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether network namespaces can be made here (root, `unshare`, `ip`); if not, says why on
/// stderr, once.
pub(crate) fn can_make_netns() -> bool {
    let Some(reason) = skip_reason() else { return true };
    static NOTICE: Once = Once::new();
    NOTICE.call_once(|| {
        let _ = writeln!(
            io::stderr(),
            "wharf-sidecar: netns tests of the binary and kernel skipped: {reason}"
        );
    });
    false
}

fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not running as root".to_owned());
    }
    for tool in ["unshare", "ip"] {
        match Command::new(tool).arg("-V").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Some(format!("`{tool} -V` failed: {}", out.status)),
            Err(e) => return Some(format!("no `{tool}` command: {e}")),
        }
    }
    None
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = Command::new(BIN).arg("--proxy-everything-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unexpected argument '--proxy-everything-flag'"), "{stderr}");

    for bad in [
        &["--http-egress-port", "0x10"][..],
        &["--dns-upstream", "dns.google"],
        &["--internet-initially", "maybe"],
        &["--peek-timeout-ms", "-5"],
    ] {
        let out = Command::new(BIN).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{bad:?}");
    }
}

#[test]
fn help_is_not_an_error() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--http-egress-port",
        "--http-ingress-address",
        "--control-token",
        "--ca-dir",
        "--egress-listen-port",
        "--dns-listen-port",
        "--own-mark",
        "--peek-timeout-ms",
        "--dns-upstream",
        "--dns-forward-timeout-ms",
        "--internet-initially",
    ] {
        assert!(stdout.contains(flag), "{flag} in {stdout}");
    }
}

#[test]
fn sigterm_exits_zero_promptly() {
    let args = ["--gateway-ip", "127.0.0.1", "--tls-intercept", "--dns-enabled", "--disable-ipv6"];
    let Some(mut sidecar) = NetnsSidecar::spawn(&args) else { return };
    assert!(sidecar.wait_for("sidecar ready"), "exited before it was ready: {:?}", sidecar.log);
    let (code, took) = sidecar.terminate();
    assert_eq!(code, Some(0));
    assert!(took.as_secs() < 2, "{took:?}");
}

#[test]
fn it_refuses_to_run_unenforced() {
    // Mark 0 would exempt everything, so interception refuses it and the sidecar exits.
    let args = ["--gateway-ip", "127.0.0.1", "--disable-ipv6", "--own-mark", "0"];
    let Some(mut sidecar) = NetnsSidecar::spawn(&args) else { return };
    assert_eq!(sidecar.exit_code(), Some(1));
    let log = sidecar.log.concat();
    assert!(log.contains("interception parameters are unusable"), "{log}");
    assert!(!log.contains("sidecar ready"), "{log}");
}
