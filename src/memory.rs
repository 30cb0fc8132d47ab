//! The process's resident memory as Linux reports it: the peak, and what it
//! was before the first replication began (the process itself: code, thread
//! pool, parsed scenario), so that the part of the peak due to the simulated
//! users can be told apart. Elsewhere both are unknown (`None`).
//!
//! Must not depend on: anything else of the crate.

use std::fs;
use std::sync::OnceLock;

/// Peak resident set size of this process (`VmHWM`).
pub fn peak_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Records the resident memory now, once: call before the first replication.
/// Later calls keep the first reading.
pub fn mark_start() {
    START.get_or_init(|| status_bytes("VmRSS:"));
}

/// The resident memory recorded by the first [`mark_start`].
pub fn at_start_bytes() -> Option<u64> {
    START.get().copied().flatten()
}

static START: OnceLock<Option<u64>> = OnceLock::new();

/// A `kB` line of `/proc/self/status`, in bytes.
fn status_bytes(key: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_read_once_and_below_the_peak() {
        mark_start();
        let start = at_start_bytes();
        let _grown = vec![1u8; 8 << 20];
        mark_start();
        assert_eq!(at_start_bytes(), start);
        if let (Some(start), Some(peak)) = (start, peak_bytes()) {
            assert!(start > 0 && start <= peak);
        }
    }
}
