//! Control-plane test support: temporary folders, the demo snapshot at a given version (optionally
//! with alice's grant revoked), real `scopegate` processes whose listen address is read from their
//! log, and an in-process sidecar Authorizer pointed at a control plane.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scopegate::accounts::RemoteOptions;
use scopegate::accounts::{DEMO_SNAPSHOT_YAML, SnapshotSource};
use scopegate::authz::Authorizer;

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty folder.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("scopegate-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo snapshot for `account` at `version`; `revoked` removes the assignment that lets alice
/// execute pipelines (eng_leads → _organization_admin of eng).
pub fn demo(account: &str, version: u64, revoked: bool) -> String {
    let mut yaml = DEMO_SNAPSHOT_YAML.replace(
        "account: acme\nversion: 1\n",
        &format!("account: {account}\nversion: {version}\n"),
    );
    assert!(yaml.contains(&format!("version: {version}\n")));
    if revoked {
        let start = yaml.find("  - identifier: ra_eng_leads_admin").unwrap();
        let end = yaml.find("  - identifier: ra_bob_runner").unwrap();
        yaml.replace_range(start..end, "");
    }
    yaml
}

/// `demo`, made invalid: an assignment names a role that does not exist.
pub fn invalid_demo(account: &str, version: u64) -> String {
    let yaml = demo(account, version, true);
    yaml.replace("role: pipeline_runner\n", "role: no_such_role\n")
}

/// Writes `text` to `path` atomically (temporary file + rename), as an operator's tool would.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A running `scopegate` process, killed on drop.
pub struct Process {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The management API's address, when the process logs one (`control-plane`).
    pub management: Option<SocketAddr>,
}

impl Process {
    /// Starts `scopegate ARGS` and waits (up to 30 s) for its "listening" log line.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // `serve` logs JSON to stderr, `control-plane` text: watch both streams, both forms
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [stdout, stderr] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if !line.contains("listening") {
                        continue;
                    }
                    let addr = if let Some(rest) = line.split("local=").nth(1) {
                        rest.split_whitespace().next().unwrap_or_default().to_owned()
                    } else if let Some(rest) = line.split("\"local\":\"").nth(1) {
                        rest.split('"').next().unwrap_or_default().to_owned()
                    } else {
                        continue;
                    };
                    let management = line
                        .split("management=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .or_else(|| {
                            line.split("\"management\":\"")
                                .nth(1)
                                .and_then(|rest| rest.split('"').next())
                        })
                        .and_then(|m| m.trim_matches('"').parse::<SocketAddr>().ok());
                    let _ = tx.send((addr, management));
                }
            });
        }
        let (addr, management) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the process did not report its address");
        Self {
            child,
            addr: addr.parse().unwrap(),
            management,
        }
    }

    /// `scopegate control-plane --source DIR --listen ADDR EXTRA...`.
    pub fn control_plane(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut args = vec![
            "control-plane",
            "--source",
            dir.to_str().unwrap(),
            "--listen",
            listen,
        ];
        // the management API's default port would collide between parallel tests
        if !extra.contains(&"--http-listen") {
            args.extend_from_slice(&["--http-listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// `scopegate control-plane --database URL --listen LISTEN` (a replica on PostgreSQL) with
    /// `extra` arguments; its management API on an ephemeral port unless `extra` names one.
    pub fn database(url: &str, listen: &str, extra: &[&str]) -> Self {
        let mut args = vec!["control-plane", "--database", url, "--listen", listen];
        if !extra.contains(&"--http-listen") {
            args.extend_from_slice(&["--http-listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The `http://` URL of the address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process (SIGKILL: no goodbye to the sidecars) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options for a test sidecar: quick reconnects, a generous first-load wait.
pub fn remote(url: &str) -> RemoteOptions {
    RemoteOptions {
        url: url.to_owned(),
        load_timeout: Duration::from_secs(5),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..RemoteOptions::default()
    }
}

/// A sidecar Authorizer reading from a control plane.
pub fn sidecar(options: RemoteOptions) -> Arc<Authorizer> {
    Arc::new(Authorizer::load(SnapshotSource::ControlPlane(options), None).unwrap())
}

/// Polls `f` every 20 ms until it returns true or `limit` passes; returns the time it took.
pub async fn eventually(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
