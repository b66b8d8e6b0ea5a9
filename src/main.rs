//! The scopegate binary: parses the command line and dispatches to `scopegate::cli`.
//!
//! The global allocator is mimalloc (feature `mimalloc`, on by default), jemalloc with feature
//! `jemalloc`, else the system allocator: measured in README "Performance".

use std::process::ExitCode;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    scopegate::cli::run()
}
