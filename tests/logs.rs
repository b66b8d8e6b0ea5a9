//! The logs an operator reads: `serve` and `control-plane` write one format to one stream (stderr),
//! chosen by the same `--log-format` flag, and in JSON every line either command writes parses as
//! one object without a repeated key (a second `message` key used to hide the real message from
//! `jq`). The lines come from real processes: start, a control plane that goes away under a
//! watching sidecar (the watch-failure warning), an invalid snapshot, and shutdown.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::control_plane::{TempDir, demo, invalid_demo, write_atomic};

/// A `scopegate` process whose every output line is kept, per stream.
struct Logged {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let keep = |stream: Box<dyn Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let into = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    into.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = keep(Box::new(child.stdout.take().unwrap()));
        let stderr = keep(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits (up to 30 s) for a stderr line containing `needle`.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.stderr.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with `{needle}`: {:?}",
                self.stderr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of the first "listening" line, in either format.
    fn listening(&self) -> String {
        let line = self.wait_for("listening");
        let value = line
            .split("\"local\":\"")
            .nth(1)
            .map(|rest| rest.split('"').next().unwrap())
            .or_else(|| {
                line.split("local=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
            })
            .unwrap_or_else(|| panic!("no address in {line}"));
        value.to_owned()
    }

    /// SIGTERM, the exit, and every line written to (stdout, stderr).
    fn stop(mut self) -> (Vec<String>, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100)); // the reader threads drain the pipes
        let take = |lines: &Mutex<Vec<String>>| std::mem::take(&mut *lines.lock().unwrap());
        (take(&self.stdout), take(&self.stderr))
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON value whose objects, at any depth, never repeat a key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut seen = BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("key `{key}` twice")));
                    }
                    map.next_value::<UniqueKeys>()?;
                }
                Ok(UniqueKeys)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
                while seq.next_element::<UniqueKeys>()?.is_some() {}
                Ok(UniqueKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Runs a control plane and a sidecar watching it through start, a broken watch, an invalid
/// snapshot and shutdown, both with `--log-format FORMAT`; every line each wrote, per stream.
fn run_both(format: &str) -> [(Vec<String>, Vec<String>); 2] {
    let dir = TempDir::new(&format!("logs-{format}"));
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let source = dir.0.to_str().unwrap();
    let plane_args = [
        "control-plane",
        "--source",
        source,
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let plane = Logged::start(&[&plane_args[..], &["--log-format", format]].concat());
    let url = format!("http://{}", plane.listening());
    let config = dir.join("sidecar.yaml");
    let text = format!("snapshot:\n  control_plane: {{url: \"{url}\", accounts: [acme]}}\n");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let sidecar = Logged::start(&[
        "serve",
        "--config",
        &config,
        "--listen",
        "127.0.0.1:0",
        "--audit",
        "off",
        "--log-format",
        format,
    ]);
    sidecar.listening();
    write_atomic(&dir.join("acme.yaml"), &invalid_demo("acme", 2));
    plane.wait_for("acme.yaml");
    let plane_lines = plane.stop();
    sidecar.wait_for("retrying with backoff");
    [plane_lines, sidecar.stop()]
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr_with_no_repeated_key() {
    for (command, (stdout, stderr)) in ["control-plane", "serve"].iter().zip(run_both("json")) {
        assert!(stdout.is_empty(), "{command} wrote to stdout: {stdout:?}");
        assert!(stderr.len() >= 2, "{command}: {stderr:?}");
        for line in &stderr {
            if let Err(error) = serde_json::from_str::<UniqueKeys>(line) {
                panic!("{command}: not one JSON object without a repeated key ({error}): {line}");
            }
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                value["fields"]["message"].is_string(),
                "{command}: no message: {line}"
            );
            assert!(value["level"].is_string(), "{command}: no level: {line}");
        }
    }
}

#[test]
fn text_logs_go_to_the_same_stream_for_both_commands() {
    for (command, (stdout, stderr)) in ["control-plane", "serve"].iter().zip(run_both("text")) {
        assert!(stdout.is_empty(), "{command} wrote to stdout: {stdout:?}");
        assert!(
            stderr.iter().any(|l| l.contains("listening")),
            "{command}: {stderr:?}"
        );
        for line in &stderr {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_err(),
                "{command}: {line}"
            );
        }
    }
}
