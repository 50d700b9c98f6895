//! `/pid-namespace`: the app's view of its PID namespace, read from `/proc`.

use serde::Serialize;

/// The body of `/pid-namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PidNamespace {
    /// This process's PID (1 when the app is the container's init).
    pub pid: u32,
    /// The parent's PID, from `/proc/self/stat`.
    pub ppid: u32,
    /// `/proc/1/cmdline`, arguments joined by spaces.
    pub init: String,
}

/// Reads the PID namespace facts from `/proc`.
pub async fn read() -> std::io::Result<PidNamespace> {
    let stat = tokio::fs::read_to_string("/proc/self/stat").await?;
    let cmdline = tokio::fs::read("/proc/1/cmdline").await?;
    let ppid = parse_ppid(&stat).unwrap_or_else(std::os::unix::process::parent_id);
    Ok(PidNamespace { pid: std::process::id(), ppid, init: cmdline_to_string(&cmdline) })
}

/// The fourth field of `/proc/<pid>/stat`. The command name (field two) is in parentheses and
/// may itself contain spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// A NUL-separated command line as one string: NULs become spaces, the ends are trimmed.
pub fn cmdline_to_string(raw: &[u8]) -> String {
    let spaced: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    String::from_utf8_lossy(&spaced).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_the_fourth_field() {
        assert_eq!(parse_ppid("1 (app) S 0 1 1 0 -1"), Some(0));
        assert_eq!(parse_ppid("42 (my (odd) app) R 7 42 42"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn cmdline_nuls_become_spaces() {
        assert_eq!(
            cmdline_to_string(b"/images/container-client-test/app\0--flag\0"),
            "/images/container-client-test/app --flag"
        );
        assert_eq!(cmdline_to_string(b""), "");
    }
}
