//! Python with the third-party clients of `tests/python/requirements.txt` (Harness's
//! `harness-open-api`, `grpcio`, `grpcio-reflection`), for tests that drive scopegate with clients
//! it did not write. `.ci/run` makes the virtual environment at `target/test-venv`;
//! `SCOPEGATE_TEST_PYTHON` names another interpreter. Without either, these tests fail and say how
//! to make it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The interpreter: `$SCOPEGATE_TEST_PYTHON`, else `target/test-venv/bin/python`.
pub fn interpreter() -> PathBuf {
    if let Some(path) = std::env::var_os("SCOPEGATE_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "no Python test environment at {}: run `.ci/run` once, or \
         `python3 -m venv target/test-venv && target/test-venv/bin/pip install -r tests/python/requirements.txt`, \
         or set SCOPEGATE_TEST_PYTHON",
        venv.display()
    );
    venv
}

/// Runs `script` (fed on stdin) with `args` and `env`, and returns what it did. Panics with its
/// output when it exits non-zero.
pub fn run(script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(interpreter())
        .arg("-")
        .args(args)
        .envs(env.iter().copied())
        // the clients must never reach past loopback, proxies included
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the Python interpreter");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Python script failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
