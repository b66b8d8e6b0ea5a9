//! cargo-fuzz target `token`: see `fuzz/harness/token.rs` (also replayed by `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../harness/token.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
