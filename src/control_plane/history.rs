//! The recent deltas of one account, encoded once: [`History`] keeps the changes between
//! consecutive served versions, so a Sync stream (a new one resuming from the version it holds, or
//! one behind after a burst of changes) gets only what it misses. A stream whose version is older
//! than the oldest kept, or for which the deltas would weigh more than the snapshot, gets the whole
//! snapshot instead. Retention: the last [`MAX_DELTAS`] versions and at most [`MAX_DELTA_BYTES`].

use std::collections::VecDeque;

use crate::proto::encoded::Encoded;

/// The most deltas kept per account.
pub const MAX_DELTAS: usize = 256;
/// The most bytes of deltas kept per account (the oldest go first).
pub const MAX_DELTA_BYTES: usize = 8 * 1024 * 1024;

/// One step: the encoded Sync answer taking `from` to `to`.
#[derive(Debug, Clone)]
struct Step {
    from: u64,
    to: u64,
    encoded: Encoded,
}

/// An account's recent deltas, consecutive: each starts where the one before it ends.
#[derive(Debug, Default)]
pub struct History {
    steps: VecDeque<Step>,
    bytes: usize,
}

impl History {
    /// Records the step from `from` to `to`; `None` (no delta could be made) forgets every step,
    /// as does a step that does not start where the last one ended.
    pub fn record(&mut self, from: u64, to: u64, encoded: Option<Encoded>) {
        let Some(encoded) = encoded else {
            self.clear();
            return;
        };
        if self.steps.back().is_some_and(|last| last.to != from) {
            self.clear();
        }
        self.bytes += encoded.len();
        self.steps.push_back(Step { from, to, encoded });
        while self.steps.len() > MAX_DELTAS || self.bytes > MAX_DELTA_BYTES {
            match self.steps.pop_front() {
                Some(step) => self.bytes -= step.encoded.len(),
                None => break,
            }
        }
    }

    fn clear(&mut self) {
        self.steps.clear();
        self.bytes = 0;
    }

    /// The deltas taking `from` to `to`, in order, if every one is kept and together they weigh
    /// at most `limit` bytes (a snapshot's size: past it, the snapshot is the better answer).
    pub fn between(&self, from: u64, to: u64, limit: usize) -> Option<Vec<Encoded>> {
        let start = self.steps.iter().position(|step| step.from == from)?;
        let mut chain = Vec::new();
        let mut bytes = 0;
        for step in self.steps.iter().skip(start) {
            bytes += step.encoded.len();
            if bytes > limit {
                return None;
            }
            chain.push(step.encoded.clone());
            if step.to == to {
                return Some(chain);
            }
            if step.to > to {
                return None;
            }
        }
        None
    }

    /// How many deltas are kept.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::bytes::Bytes;

    fn step(n: u8) -> Option<Encoded> {
        Some(Encoded(Bytes::from(vec![n; 10])))
    }

    #[test]
    fn chains_are_consecutive_and_bounded() {
        let mut history = History::default();
        history.record(1, 2, step(1));
        history.record(2, 5, step(2));
        history.record(5, 6, step(3));
        let chain = history.between(2, 6, usize::MAX).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].0[0], 2);
        assert_eq!(history.between(1, 6, usize::MAX).unwrap().len(), 3);
        assert!(history.between(3, 6, usize::MAX).is_none(), "no step starts at 3");
        assert!(history.between(1, 6, 25).is_none(), "heavier than the snapshot");
        assert!(history.between(6, 7, usize::MAX).is_none(), "not published yet");
        // a gap forgets the steps before it
        history.record(8, 9, step(4));
        assert_eq!(history.len(), 1);
        assert!(history.between(1, 9, usize::MAX).is_none());
        history.record(9, 10, None);
        assert!(history.is_empty());
        for version in 0..(MAX_DELTAS as u64 + 10) {
            history.record(version, version + 1, step(0));
        }
        assert_eq!(history.len(), MAX_DELTAS);
    }
}
