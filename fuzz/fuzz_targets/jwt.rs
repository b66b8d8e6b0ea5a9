//! cargo-fuzz target `jwt`: see `fuzz/harness/jwt.rs` (also replayed by `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../harness/jwt.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
