//! cargo-fuzz target `acl`: see `fuzz/harness/acl.rs` (also replayed by `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../harness/acl.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
