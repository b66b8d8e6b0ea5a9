//! The verified-token cache for API keys, and the bound on slow (bcrypt) secret checks.
//!
//! An entry is keyed by a digest of (account, token id, secret) and holds the account, the token id
//! and the stored hash it was verified against. A hit counts only when all three match the token
//! being checked, so a cached entry can never authenticate in another account, for another token,
//! with another secret, or after the token's stored hash changed (even within one snapshot
//! version). The key is computed from the parsed parts, not the token string: a legacy
//! `pat.<id>.<secret>` token takes its account from the request, so the string alone does not say
//! which account verified it.
//!
//! bcrypt takes tens of milliseconds of CPU, and only the public token id is needed to make the
//! server pay it. Failures are therefore remembered briefly ([`REFUSED_TTL`]) and at most
//! [`SlowChecks`] bcrypt checks run at once; beyond that a check answers [`SecretCheck::Busy`]
//! (503) instead of queueing CPU work an attacker chose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::authn::verify_secret;
use crate::rbac::compiled::SecretHash;

/// How long a refused bcrypt secret is remembered (answered without hashing again).
pub const REFUSED_TTL: Duration = Duration::from_secs(30);
/// How many refused bcrypt secrets are remembered at most.
pub const REFUSED_CAPACITY: u64 = 10_000;

/// What the cache remembers of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The account whose snapshot held the token.
    pub account: Box<str>,
    /// The token's `<token-id>`.
    pub token_id: Box<str>,
    /// The stored hash the secret was verified against; another hash means verify again.
    pub secret_hash: SecretHash,
}

impl VerifiedToken {
    fn matches(&self, account: &str, token_id: &str, stored: &SecretHash) -> bool {
        *self.account == *account && *self.token_id == *token_id && self.secret_hash == *stored
    }
}

/// The answer for a presented secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    /// The secret matches the stored hash.
    Valid,
    /// It does not.
    Invalid,
    /// Too many slow checks are running; ask again later (503).
    Busy,
}

/// The outcome of [`VerifiedTokens::check`] and whether the verified-token cache answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The answer.
    pub result: SecretCheck,
    /// Whether a verified entry answered without hashing.
    pub cache_hit: bool,
}

/// Verified API tokens, recently refused bcrypt secrets, and the slow-check bound.
pub struct VerifiedTokens {
    /// Entries are shared (`Arc`), so a hit clones a pointer, not the entry's strings.
    verified: moka::sync::Cache<[u8; 32], Arc<VerifiedToken>>,
    refused: moka::sync::Cache<[u8; 32], SecretHash>,
    slow: SlowChecks,
    bcrypt_runs: AtomicU64,
    bcrypt_busy: AtomicU64,
}

/// Counters of the slow checks, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlowCheckCounts {
    /// bcrypt hashes computed.
    pub runs: u64,
    /// Checks answered busy because the bound was reached.
    pub busy: u64,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("verified", &self.verified.entry_count())
            .field("refused", &self.refused.entry_count())
            .finish_non_exhaustive()
    }
}

impl VerifiedTokens {
    /// A cache of at most `capacity` verified tokens, each kept for `ttl`, allowing `slow_limit`
    /// concurrent bcrypt checks.
    pub fn new(capacity: u64, ttl: Duration, slow_limit: usize) -> Self {
        Self {
            verified: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            refused: moka::sync::Cache::builder()
                .max_capacity(REFUSED_CAPACITY)
                .time_to_live(REFUSED_TTL)
                .build(),
            slow: SlowChecks::new(slow_limit),
            bcrypt_runs: AtomicU64::new(0),
            bcrypt_busy: AtomicU64::new(0),
        }
    }

    /// Whether `secret` is the secret of token `token_id` of `account`, whose stored hash is
    /// `stored`; answered from the cache when it can be. `verify` runs a hash check that is not
    /// cached (the caller decides where slow work runs).
    pub fn check(
        &self,
        account: &str,
        token_id: &str,
        secret: &str,
        stored: &SecretHash,
        verify: impl FnOnce(&SecretHash, &str) -> bool,
    ) -> Checked {
        let key = cache_key(account, token_id, secret);
        if self
            .verified
            .get(&key)
            .is_some_and(|entry| entry.matches(account, token_id, stored))
        {
            return Checked {
                result: SecretCheck::Valid,
                cache_hit: true,
            };
        }
        let slow = matches!(stored, SecretHash::Bcrypt(_));
        if slow && self.refused.get(&key).is_some_and(|hash| hash == *stored) {
            return miss(SecretCheck::Invalid);
        }
        let _permit = if slow {
            match self.slow.try_acquire() {
                Some(permit) => Some(permit),
                None => {
                    self.bcrypt_busy.fetch_add(1, Ordering::Relaxed);
                    return miss(SecretCheck::Busy);
                }
            }
        } else {
            None
        };
        if slow {
            self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        }
        if verify(stored, secret) {
            let entry = VerifiedToken {
                account: account.into(),
                token_id: token_id.into(),
                secret_hash: stored.clone(),
            };
            self.verified.insert(key, Arc::new(entry));
            miss(SecretCheck::Valid)
        } else {
            if slow {
                self.refused.insert(key, stored.clone());
            }
            miss(SecretCheck::Invalid)
        }
    }

    /// [`check`](Self::check) with the plain [`verify_secret`].
    pub fn check_inline(&self, account: &str, token_id: &str, secret: &str, stored: &SecretHash) -> Checked {
        self.check(account, token_id, secret, stored, verify_secret)
    }

    /// How many bcrypt hashes were computed and how many checks were refused as busy.
    pub fn slow_check_counts(&self) -> SlowCheckCounts {
        SlowCheckCounts {
            runs: self.bcrypt_runs.load(Ordering::Relaxed),
            busy: self.bcrypt_busy.load(Ordering::Relaxed),
        }
    }

    /// How many verified tokens are cached (approximate, as moka counts).
    pub fn len(&self) -> u64 {
        self.verified.entry_count()
    }

    /// Whether no verified token is cached (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cached entry (verified and refused).
    pub fn clear(&self) {
        self.verified.invalidate_all();
        self.refused.invalidate_all();
    }
}

fn miss(result: SecretCheck) -> Checked {
    Checked {
        result,
        cache_hit: false,
    }
}

/// SHA-256 over the length-prefixed account and token id and the secret: no two distinct
/// (account, id, secret) triples share an input.
fn cache_key(account: &str, token_id: &str, secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"scopegate-api-key-v1\0");
    for part in [account, token_id] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// A counting bound on concurrent slow checks, without blocking: a check that finds no permit is
/// answered at once.
#[derive(Debug)]
struct SlowChecks {
    running: AtomicUsize,
    limit: usize,
}

struct SlowPermit<'a>(&'a AtomicUsize);

impl Drop for SlowPermit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SlowChecks {
    fn new(limit: usize) -> Self {
        Self {
            running: AtomicUsize::new(0),
            limit: limit.max(1),
        }
    }

    fn try_acquire(&self) -> Option<SlowPermit<'_>> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| SlowPermit(&self.running))
    }
}

/// The default bound on concurrent bcrypt checks: the machine's parallelism (at least 1).
pub fn default_slow_limit() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
#[path = "verified_tokens_tests.rs"]
mod tests;
