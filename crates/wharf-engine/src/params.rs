//! Validated inputs to the engine: ids, images, labels, env, signals, start and exec parameters.
//!
//! Parse, don't validate: every type here can only hold a valid value, so engine verbs never
//! re-check. Messages follow the Container API's own wording where its tests match them
//! (engine spec §5.3 #13, #14, #16).

use std::fmt;
use std::time::Duration;

/// Why an input is refused. The API maps each variant to a `400` with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A container id outside `[A-Za-z0-9_.-]{1,128}`.
    #[error("{0}")]
    Id(String),
    /// A bad image reference.
    #[error("{0}")]
    Image(String),
    /// A bad label set.
    #[error("{0}")]
    Labels(String),
    /// A bad env entry.
    #[error("{0}")]
    Env(String),
    /// A bad entrypoint or exec command.
    #[error("{0}")]
    Command(String),
    /// A bad instance shape.
    #[error("{0}")]
    Instance(String),
    /// A bad timeout.
    #[error("{0}")]
    Timeout(String),
    /// A signal outside 1..=64.
    #[error("{0}")]
    Signal(String),
    /// A port outside 1..=65535.
    #[error("{0}")]
    Port(String),
    /// A combination the engine does not accept.
    #[error("{0}")]
    Conflict(String),
}

/// The client-chosen name of a container: 1 to 128 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

/// An image reference: non-space printable ASCII, at most 4096 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(String);

/// Up to 10 labels, in insertion order, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

/// One `NAME=VALUE` environment entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    name: String,
    value: String,
}

/// A signal number, 1 to 64. Real-time signals are delivered as asked (W12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(u8);

/// A TCP port inside the container, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppPort(u16);

/// CPU and memory limits (`instance` in StartParams).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shape {
    /// CPUs, e.g. 0.5.
    pub vcpu: Option<f64>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Disk in MB (recorded; enforced where the storage driver allows).
    pub disk_mb: Option<u64>,
}

/// Validated `start` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct StartParams {
    /// The image to run.
    pub image: ImageRef,
    /// Replaces the image's `CMD` (the image `ENTRYPOINT` is kept, as in workerd).
    pub entrypoint: Option<Vec<String>>,
    /// User env; it overrides the `CLOUDFLARE_*` defaults (W28).
    pub env: Vec<EnvVar>,
    /// Whether unmatched egress may reach the internet.
    pub enable_internet: bool,
    /// Labels to report in status.
    pub labels: Labels,
    /// Stop the container this long after start; `None` for never.
    pub hard_timeout: Option<Duration>,
    /// cgroup limits.
    pub shape: Shape,
}

/// Validated `exec` parameters (run to completion).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecParams {
    /// argv, run without a shell.
    pub cmd: Vec<String>,
    /// Extra env for this process.
    pub env: Vec<EnvVar>,
    /// Working directory.
    pub cwd: Option<String>,
    /// User (a name, or `uid[:gid]`).
    pub user: Option<String>,
    /// Put stderr into stdout, in arrival order.
    pub combined_output: bool,
}

// === impl ContainerId ===

impl ContainerId {
    /// Validates an id.
    pub fn new(raw: &str) -> Result<ContainerId, ParamError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if raw.is_empty() || raw.len() > 128 || !raw.chars().all(ok_char) {
            return Err(ParamError::Id(format!(
                "container id must be 1 to 128 characters of [A-Za-z0-9_.-], got {raw:?}"
            )));
        }
        Ok(ContainerId(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl ImageRef ===

impl ImageRef {
    /// Validates an image reference.
    pub fn new(raw: &str) -> Result<ImageRef, ParamError> {
        if raw.is_empty() {
            return Err(ParamError::Image("Container image reference cannot be empty".to_owned()));
        }
        if raw.len() > 4096 {
            return Err(ParamError::Image(
                "Container image reference cannot exceed 4096 bytes".to_owned(),
            ));
        }
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ParamError::Image(
                "Container image reference must contain only non-space printable ASCII characters"
                    .to_owned(),
            ));
        }
        Ok(ImageRef(raw.to_owned()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl Labels ===

impl Labels {
    /// Validates labels given in order. A repeated name is refused (W37).
    pub fn new(entries: Vec<(String, String)>) -> Result<Labels, ParamError> {
        let bad = |m: String| Err(ParamError::Labels(m));
        if entries.len() > 10 {
            return bad("Cannot specify more than 10 container labels".to_owned());
        }
        for (i, (name, value)) in entries.iter().enumerate() {
            if name.is_empty() {
                return bad("Label names cannot be empty".to_owned());
            }
            if name.len() > 16 {
                return bad(format!("Label names cannot exceed 16 bytes (index {i})"));
            }
            if value.len() > 64 {
                return bad(format!("Label values cannot exceed 64 bytes (index {i})"));
            }
            if name.chars().any(char::is_control) {
                return bad(format!("Label names cannot contain control characters (index {i})"));
            }
            if value.chars().any(char::is_control) {
                return bad(format!("Label values cannot contain control characters (index {i})"));
            }
            if entries[..i].iter().any(|(n, _)| n == name) {
                return bad(format!("Label name {name:?} appears twice (index {i})"));
            }
        }
        Ok(Labels(entries))
    }

    /// The labels, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// === impl EnvVar ===

impl EnvVar {
    /// Parses a `NAME=VALUE` entry.
    pub fn parse(raw: &str) -> Result<EnvVar, ParamError> {
        let bad = || {
            ParamError::Env(format!(
                "env entries must look like NAME=VALUE with a non-empty NAME without spaces, got {raw:?}"
            ))
        };
        let (name, value) = raw.split_once('=').ok_or_else(bad)?;
        let name_ok = !name.is_empty()
            && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '=');
        if !name_ok || value.contains('\0') {
            return Err(bad());
        }
        Ok(EnvVar { name: name.to_owned(), value: value.to_owned() })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

// === impl Signal ===

impl Signal {
    /// SIGKILL.
    pub const KILL: Signal = Signal(9);
    /// SIGTERM.
    pub const TERM: Signal = Signal(15);

    /// Validates a signal number.
    pub fn new(n: i64) -> Result<Signal, ParamError> {
        match u8::try_from(n) {
            Ok(n @ 1..=64) => Ok(Signal(n)),
            _ => Err(ParamError::Signal(format!("signal must be 1 to 64, got {n}"))),
        }
    }

    /// Parses `15`, `TERM` or `SIGTERM` (names for 1–31 plus `RTMIN+n`).
    pub fn parse(raw: &str) -> Result<Signal, ParamError> {
        if let Ok(n) = raw.parse::<i64>() {
            return Signal::new(n);
        }
        let upper = raw.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(off) = name.strip_prefix("RTMIN+") {
            let off: i64 = off.parse().map_err(|_| unknown_signal(raw))?;
            return Signal::new(34 + off);
        }
        SIGNAL_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Signal(i as u8 + 1))
            .ok_or_else(|| unknown_signal(raw))
    }

    /// The number.
    pub fn number(self) -> u8 {
        self.0
    }
}

const SIGNAL_NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

fn unknown_signal(raw: &str) -> ParamError {
    ParamError::Signal(format!("unknown signal {raw:?}: use a number 1 to 64 or a name like TERM"))
}

// === impl AppPort ===

impl AppPort {
    /// Validates a port.
    pub fn new(n: i64) -> Result<AppPort, ParamError> {
        match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(AppPort(p)),
            _ => Err(ParamError::Port(format!("port must be 1 to 65535, got {n}"))),
        }
    }

    /// The number.
    pub fn number(self) -> u16 {
        self.0
    }
}

impl fmt::Display for AppPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

// === impl Shape ===

impl Shape {
    /// Validates the instance numbers as the Container API does (#16).
    pub fn new(
        vcpu: Option<f64>,
        memory_mib: Option<f64>,
        disk_mb: Option<f64>,
    ) -> Result<Shape, ParamError> {
        if let Some(v) = vcpu
            && !(v.is_finite() && v > 0.0)
        {
            return Err(ParamError::Instance(
                "Container resource vcpu must be a finite number greater than 0".to_owned(),
            ));
        }
        Ok(Shape {
            vcpu,
            memory_mib: whole("memoryMib", memory_mib)?,
            disk_mb: whole("diskMb", disk_mb)?,
        })
    }
}

fn whole(field: &str, value: Option<f64>) -> Result<Option<u64>, ParamError> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    let Some(v) = value else { return Ok(None) };
    let bad = |what: &str| Err(ParamError::Instance(format!("Container resource {field} {what}")));
    if !(v.is_finite() && v > 0.0) {
        return bad("must be a finite number greater than 0");
    }
    if v.fract() != 0.0 {
        return bad("must be an integer");
    }
    if v > MAX_SAFE {
        return bad("exceeds Number.MAX_SAFE_INTEGER");
    }
    // In range and whole, so the cast is exact.
    Ok(Some(v as u64))
}

/// Validates a command vector (entrypoint or exec argv).
pub fn command(what: &str, argv: Vec<String>) -> Result<Vec<String>, ParamError> {
    if argv.is_empty() {
        return Err(ParamError::Command(format!("{what} must have at least one element")));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(ParamError::Command(format!("{what} elements cannot contain NUL bytes")));
    }
    Ok(argv)
}

/// Validates an inactivity or hard timeout in milliseconds (`> 0`).
pub fn timeout_ms(what: &str, ms: i64) -> Result<Duration, ParamError> {
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(ParamError::Timeout(format!("{what} requires ms > 0, got {ms}"))),
    }
}

#[cfg(test)]
mod tests;
