//! The scopegate binary: parses the command line and dispatches to `scopegate::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    scopegate::cli::run()
}
