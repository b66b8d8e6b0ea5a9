//! Rate-limited failure warnings for one account's Watch loop: the first failure of a run is a
//! warning, repeats within [`WARN_INTERVAL`] are logged at debug and counted, and the next warning
//! after the interval carries how many were suppressed. A control plane that breaks every stream
//! right after opening it then costs one warning a minute per account, not one per retry.

use std::time::{Duration, Instant};

/// The shortest time between two warnings of one account.
pub const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Whether a failure is worth a warning now.
#[derive(Debug, Clone, Default)]
pub struct FailureLog {
    last_warned: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    /// Records a failure at `now`: `Some(n)` when it should be logged as a warning (`n` failures
    /// were logged at debug since the previous warning), `None` when it should be logged at debug.
    pub fn failure(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last_warned
            .is_none_or(|at| now.saturating_duration_since(at) >= WARN_INTERVAL);
        if due {
            self.last_warned = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Records a success (a snapshot applied): the next failure is a warning again. Returns whether
    /// failures were being recorded.
    pub fn recovered(&mut self) -> bool {
        let was_failing = self.last_warned.is_some();
        *self = Self::default();
        was_failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_interval_with_the_count_of_the_others() {
        let start = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.failure(start), Some(0));
        for i in 1..=5 {
            assert_eq!(log.failure(start + Duration::from_secs(i)), None);
        }
        assert_eq!(log.failure(start + WARN_INTERVAL), Some(5));
        assert_eq!(log.failure(start + WARN_INTERVAL), None);
        assert!(log.recovered());
        assert!(!log.recovered());
        assert_eq!(log.failure(start + WARN_INTERVAL), Some(0));
    }
}
