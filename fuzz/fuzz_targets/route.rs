//! cargo-fuzz target `route`: see `fuzz/harness/route.rs` (also replayed by `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../harness/route.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
