//! The verified-token cache against the uncached check: random sequences over accounts, token ids,
//! secrets and stored hashes (sha256 and bcrypt) that change under the cache.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

const ACCOUNTS: [&str; 3] = ["acme", "other", "third"];
const TOKEN_IDS: [&str; 2] = ["tok01", "tok02"];
const SECRETS: [&str; 3] = ["SecretOne", "SecretTwo", "SecretThree"];

fn sha(secret: &str) -> SecretHash {
    SecretHash::Sha256(Sha256::digest(secret.as_bytes()).into())
}

/// bcrypt hashes of each secret at the lowest cost, computed once.
fn bcrypt_of(index: usize) -> SecretHash {
    static HASHES: OnceLock<Vec<SecretHash>> = OnceLock::new();
    HASHES.get_or_init(|| {
        SECRETS
            .iter()
            .map(|s| SecretHash::Bcrypt(bcrypt::hash(s, 4).unwrap().into()))
            .collect()
    })[index]
        .clone()
}

fn stored(secret: usize, slow: bool) -> SecretHash {
    if slow {
        bcrypt_of(secret)
    } else {
        sha(SECRETS[secret])
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A snapshot (re)publishes token `token` of `account` with the hash of secret `secret`; the
    /// version may or may not change, which the cache must not rely on.
    Publish {
        account: usize,
        token: usize,
        secret: usize,
        slow: bool,
    },
    /// A request presents `secret` for `token` in `account`.
    Present {
        account: usize,
        token: usize,
        secret: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..2usize, 0..3usize, any::<bool>()).prop_map(|(account, token, secret, slow)| {
            Step::Publish {
                account,
                token,
                secret,
                slow,
            }
        }),
        (0..3usize, 0..2usize, 0..3usize).prop_map(|(account, token, secret)| Step::Present {
            account,
            token,
            secret
        }),
        (0..3usize, 0..2usize, 0..3usize).prop_map(|(account, token, secret)| Step::Present {
            account,
            token,
            secret
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Whatever was cached before, the cached answer is the uncached one.
    #[test]
    fn the_cached_answer_is_the_uncached_one(steps in prop::collection::vec(step(), 1..40)) {
        let cache = VerifiedTokens::new(1_000, Duration::from_secs(3600), 64);
        // every token starts with secret 0's sha256 hash in every account
        let mut hashes: HashMap<(usize, usize), SecretHash> = HashMap::new();
        for account in 0..3 {
            for token in 0..2 {
                hashes.insert((account, token), stored(0, false));
            }
        }
        for step in steps {
            match step {
                Step::Publish { account, token, secret, slow } => {
                    hashes.insert((account, token), stored(secret, slow));
                }
                Step::Present { account, token, secret } => {
                    let hash = &hashes[&(account, token)];
                    let uncached = verify_secret(hash, SECRETS[secret]);
                    let cached = cache.check_inline(ACCOUNTS[account], TOKEN_IDS[token], SECRETS[secret], hash);
                    let expected = if uncached { SecretCheck::Valid } else { SecretCheck::Invalid };
                    prop_assert_eq!(cached.result, expected, "{:?}", step);
                }
            }
        }
    }
}

#[test]
fn an_entry_verified_in_one_account_does_not_authenticate_in_another() {
    let cache = VerifiedTokens::new(100, Duration::from_secs(3600), 4);
    let right = sha("SecretOne");
    assert_eq!(
        cache.check_inline("acme", "tok01", "SecretOne", &right).result,
        SecretCheck::Valid
    );
    // the same legacy token string in another account whose tok01 has another secret
    let other = sha("SomethingElse");
    let checked = cache.check_inline("other", "tok01", "SecretOne", &other);
    assert_eq!(checked, miss(SecretCheck::Invalid));
}

#[test]
fn a_changed_stored_hash_invalidates_the_entry_within_one_version() {
    let cache = VerifiedTokens::new(100, Duration::from_secs(3600), 4);
    let old = sha("SecretOne");
    assert_eq!(
        cache.check_inline("acme", "tok01", "SecretOne", &old).result,
        SecretCheck::Valid
    );
    assert!(cache.check_inline("acme", "tok01", "SecretOne", &old).cache_hit);
    let rotated = sha("SecretTwo");
    assert_eq!(
        cache.check_inline("acme", "tok01", "SecretOne", &rotated).result,
        SecretCheck::Invalid
    );
}

#[test]
fn a_refused_bcrypt_secret_is_not_hashed_again_until_the_hash_changes() {
    let cache = VerifiedTokens::new(100, Duration::from_secs(3600), 4);
    let hash = bcrypt_of(0);
    let calls = Cell::new(0);
    let counting = |h: &SecretHash, s: &str| {
        calls.set(calls.get() + 1);
        verify_secret(h, s)
    };
    for _ in 0..5 {
        let checked = cache.check("acme", "tok01", "wrong", &hash, counting);
        assert_eq!(checked.result, SecretCheck::Invalid);
    }
    assert_eq!(calls.get(), 1, "four refusals answered from the refused cache");
    // the right secret is still verified
    let checked = cache.check("acme", "tok01", SECRETS[0], &hash, counting);
    assert_eq!(checked.result, SecretCheck::Valid);
    // a new stored hash for which "wrong" is right: the refusal no longer counts
    let now_right = SecretHash::Bcrypt(bcrypt::hash("wrong", 4).unwrap().into());
    let checked = cache.check("acme", "tok01", "wrong", &now_right, counting);
    assert_eq!(checked.result, SecretCheck::Valid);
    assert_eq!(calls.get(), 3);
}

#[test]
fn slow_checks_beyond_the_bound_are_busy_not_queued() {
    let cache = VerifiedTokens::new(100, Duration::from_secs(3600), 1);
    let hash = bcrypt_of(1);
    let inner = Cell::new(None);
    let outer = cache.check("acme", "tok01", SECRETS[1], &hash, |h, s| {
        // while this slow check runs, a second one finds no permit
        inner.set(Some(
            cache.check_inline("acme", "tok02", SECRETS[1], &hash).result,
        ));
        verify_secret(h, s)
    });
    assert_eq!(outer.result, SecretCheck::Valid);
    assert_eq!(inner.get(), Some(SecretCheck::Busy));
    // the permit is released: the next check runs
    assert_eq!(
        cache.check_inline("acme", "tok02", SECRETS[1], &hash).result,
        SecretCheck::Valid
    );
    // sha256 checks never need a permit
    let fast = sha("x");
    let during = Cell::new(None);
    cache.check("acme", "tok03", "y", &bcrypt_of(2), |h, s| {
        during.set(Some(cache.check_inline("acme", "tok04", "x", &fast).result));
        verify_secret(h, s)
    });
    assert_eq!(during.get(), Some(SecretCheck::Valid));
}
