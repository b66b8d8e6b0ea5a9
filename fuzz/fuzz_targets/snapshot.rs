//! cargo-fuzz target `snapshot`: see `fuzz/harness/snapshot.rs` (also replayed by `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../harness/snapshot.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
