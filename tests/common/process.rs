//! The real `scopegate serve` process for end-to-end tests: started with a configuration file whose
//! listeners bind port 0, with the bound addresses read from its JSON log on stderr; stopped with
//! SIGTERM. Included with `#[path]` by the tests that need it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `scopegate serve` process and the addresses it logged.
pub struct Process {
    child: Child,
    /// The ext_authz gRPC address.
    pub grpc: SocketAddr,
    /// The HTTP listener's address.
    pub http: SocketAddr,
    /// The `message` of every JSON log line after the listeners were logged.
    messages: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `scopegate serve --config CONFIG` (the configuration must set `log_format: json`).
    pub fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let (mut grpc, mut http) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while grpc.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the server never logged its listeners");
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let local = log["fields"]["local"]
                .as_str()
                .map(|a| a.parse::<SocketAddr>().unwrap());
            match log["fields"]["message"].as_str() {
                Some("scopegate ext_authz listening") => grpc = local,
                Some("scopegate http listening") => http = local,
                _ => {}
            }
        }
        // keep draining stderr so the server never blocks on a full pipe
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&messages);
        std::thread::spawn(move || {
            while let Ok(line) = rx.recv() {
                if let Ok(log) = serde_json::from_str::<Value>(&line)
                    && let Some(message) = log["fields"]["message"].as_str()
                {
                    kept.lock().unwrap().push(message.to_owned());
                }
            }
        });
        Self {
            child,
            grpc: grpc.unwrap(),
            http: http.unwrap(),
            messages,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// How many log lines so far had a message starting with `prefix`.
    pub fn logged(&self, prefix: &str) -> usize {
        let messages = self.messages.lock().unwrap();
        messages.iter().filter(|m| m.starts_with(prefix)).count()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            assert!(Instant::now() < deadline, "the server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
