//! Replays every committed fuzz corpus input (`fuzz/corpus/<target>/`) through the harness the
//! cargo-fuzz target runs (`fuzz/harness/<target>.rs`, compiled here as well), on stable and
//! without libFuzzer: a crash the fuzzers found and that was fixed stays fixed. A harness fails by
//! panicking (its assertions), which fails the test with the offending file named.

#[path = "../fuzz/harness/acl.rs"]
mod acl;
#[path = "../fuzz/harness/http_target.rs"]
mod http_target;
#[path = "../fuzz/harness/jwt.rs"]
mod jwt;
#[path = "../fuzz/harness/route.rs"]
mod route;
#[path = "../fuzz/harness/snapshot.rs"]
mod snapshot;
#[path = "../fuzz/harness/token.rs"]
mod token;

use std::path::PathBuf;

/// Runs `harness` on each file of `fuzz/corpus/<target>/`; the corpus must not be empty.
#[allow(clippy::unwrap_used, clippy::panic)] // test code: a missing corpus fails the test
fn replay(target: &str, harness: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap();
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus", dir.display());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| harness(&data));
        assert!(outcome.is_ok(), "{target}: {} fails the harness", file.display());
    }
}

#[test]
fn route_corpus_replays() {
    replay("route", route::run);
}

#[test]
fn token_corpus_replays() {
    replay("token", token::run);
}

#[test]
fn jwt_corpus_replays() {
    replay("jwt", jwt::run);
}

#[test]
fn snapshot_corpus_replays() {
    replay("snapshot", snapshot::run);
}

#[test]
fn acl_corpus_replays() {
    replay("acl", acl::run);
}

#[test]
fn http_target_corpus_replays() {
    replay("http_target", http_target::run);
}
