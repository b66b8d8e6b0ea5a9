//! The scopegate binary as an operator runs it: run it with arguments, read what it printed, and
//! write the small input files the command-line tests hand it.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built binary with `args` and waits for it.
pub fn scopegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .output()
        .expect("run scopegate")
}

/// What the command printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the command printed on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `text` to `name` in this test process's scratch folder and returns its path (names
/// are unique across the command-line tests).
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scopegate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
