//! Pure: counting `TIME_WAIT` sockets on one port from `/proc/net/tcp` and `/proc/net/tcp6`, split
//! by which side of the connection holds them.

use serde::Serialize;

/// `TIME_WAIT` sockets whose connection involves one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct TimeWait {
    /// Held by clients (remote port = the server's): each keeps an ephemeral port from reuse.
    pub(super) client_side: u64,
    /// Held by the server (local port = the server's), which closed first.
    pub(super) server_side: u64,
}

/// The `TIME_WAIT` sockets on `port` now; zero if the tables cannot be read.
pub(super) fn time_wait(port: u16) -> TimeWait {
    let mut count = TimeWait::default();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            count_in(&text, port, &mut count);
        }
    }
    count
}

/// Adds the `TIME_WAIT` rows (state `06`) of one table that involve `port`.
fn count_in(table: &str, port: u16, count: &mut TimeWait) {
    for row in table.lines().skip(1) {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let [_, local, remote, state, ..] = fields.as_slice() else { continue };
        if *state != "06" {
            continue;
        }
        if port_of(remote) == Some(port) {
            count.client_side += 1;
        } else if port_of(local) == Some(port) {
            count.server_side += 1;
        }
    }
}

/// The port of `0100007F:1F90`-style addresses.
fn port_of(address: &str) -> Option<u16> {
    u16::from_str_radix(address.rsplit_once(':')?.1, 16).ok()
}

// === impl TimeWait ===

impl TimeWait {
    pub(super) fn total(self) -> u64 {
        self.client_side + self.server_side
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_time_wait_rows_by_side() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
   1: 0100007F:9C40 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3\n\
   2: 0100007F:1F90 0100007F:9C41 06 00000000:00000000 03:00001770 00000000     0        0 0 3\n\
   3: 0100007F:9C42 0100007F:1F91 06 00000000:00000000 03:00001770 00000000     0        0 0 3\n\
   4: 0100007F:9C43 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1 1\n";
        let mut count = TimeWait::default();
        count_in(table, 0x1F90, &mut count);
        assert_eq!(count, TimeWait { client_side: 1, server_side: 1 });
        assert_eq!(count.total(), 2);
    }
}
