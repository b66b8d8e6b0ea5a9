//! cargo-fuzz target `http_target`: see `fuzz/harness/http_target.rs` (also replayed by
//! `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../harness/http_target.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
