//! Warnings for refused TLS handshakes (no or untrusted client certificate, a protocol version
//! below the minimum, plaintext to a TLS port), at most one a second per listener, counting the
//! ones left out: an operator sees why a client is refused, and a scanner cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// How often a refused handshake is logged at warn, at most.
const EVERY_MS: u64 = 1_000;

/// One listener's refused-handshake warnings.
#[derive(Debug)]
pub(super) struct RefusalLog {
    since: Instant,
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RefusalLog {
    /// A log whose first refusal is warned about at once.
    pub(super) fn new() -> Self {
        Self {
            since: Instant::now(),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(refusals left out since the last warning)` when a warning is due now, else `None`
    /// (and this refusal is counted).
    pub(super) fn due(&self) -> Option<u64> {
        let now = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(EVERY_MS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::RefusalLog;

    #[test]
    fn the_first_refusal_is_warned_and_a_burst_is_counted() {
        let log = RefusalLog::new();
        assert_eq!(log.due(), Some(0));
        for _ in 0..5 {
            assert_eq!(log.due(), None);
        }
    }
}
