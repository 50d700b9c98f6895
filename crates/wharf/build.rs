//! Builds `wharf-sidecar` and `wharf-testapp` as static binaries and embeds them in `wharf`,
//! so `wharf` can build its images offline, `FROM scratch`, with no step run by hand.
//!
//! The static build runs a nested cargo into its own target directory (`target/static`), with
//! `+crt-static` on the gnu target. Only `RUSTFLAGS` for that nested build change; the outer
//! build, its build scripts and proc macros are untouched.
#![allow(clippy::disallowed_methods)] // A build script reads cargo's environment by design.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TRIPLE: &str = "x86_64-unknown-linux-gnu";
const BINARIES: [(&str, &str); 2] =
    [("wharf-sidecar", "WHARF_SIDECAR_BIN"), ("wharf-testapp", "WHARF_TESTAPP_BIN")];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest.join("../..");
    for dir in ["crates/wharf-sidecar", "crates/wharf-testapp", "crates/wharf-wire", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=WHARF_STATIC_TARGET_DIR");
    let target_dir = env::var_os("WHARF_STATIC_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/static"));
    // While the sidecar is mid-change, `WHARF_SKIP_STATIC_BUILD=1` reuses what target/static has.
    println!("cargo:rerun-if-env-changed=WHARF_SKIP_STATIC_BUILD");
    let skip = env::var_os("WHARF_SKIP_STATIC_BUILD").is_some_and(|v| v == "1");
    if !skip && let Err(message) = build_static(&workspace, &target_dir) {
        // A build script's panic is how cargo shows a failed step with its message.
        panic!("{message}");
    }
    for (name, var) in BINARIES {
        let path = target_dir.join(TRIPLE).join("release").join(name);
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

fn build_static(workspace: &Path, target_dir: &Path) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", TRIPLE, "--target-dir"])
        .arg(target_dir);
    for (name, _) in BINARIES {
        cmd.args(["-p", name]);
    }
    // Start from a clean slate: the outer build's flags and wrappers (clippy, coverage) must
    // not leak into the static build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    // The images carry these binaries: no debug info, stripped.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false").env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    // Cargo reads directives from a build script's stdout; keep the nested output on stderr.
    cmd.stdout(Stdio::from(std::io::stderr()));
    let status =
        cmd.status().map_err(|e| format!("cannot run cargo for the static sidecar build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the static build of the sidecar and test app failed ({status}); see the output above"
        ))
    }
}
