//! Propagation between replicas: how long a change written through one control-plane replica takes
//! to reach every sidecar stream open on another. A throwaway PostgreSQL (`tests/common/postgres.rs`,
//! fsync off), the demo account loaded with `scopegate admin import`, an administrator's token from
//! `scopegate admin bootstrap`, and two real `scopegate control-plane --database URL` processes on it:
//! replica A takes the writes on its management API, replica B serves 100 raw Sync streams (one
//! HTTP/2 connection each, as 100 sidecars would hold; each acknowledges what it receives, as
//! `benches/sync.rs`'s `follow` does).
//!
//! Then 200 changes, one after another: `POST /ng/api/organizations` on replica A (one new
//! organization each; A commits it in PostgreSQL, which NOTIFYs B; B reads the change log's delta and
//! sends it on every stream). For each change the clock starts when A's answer has arrived, and the
//! figures are the time until the first of the 100 streams on B received that revision, and until
//! the last one did (all 100): p50/p99/max. A stream can receive a revision before A's answer is back
//! (the notification goes out at commit, and the answer is written after): such arrivals count as 0.
//!
//! Everything runs on one machine: the streams' receive loop shares the CPU with both replicas and
//! PostgreSQL, so read the figures as an upper bound on a quiet cluster.
//!
//! Run: `cargo bench --bench propagation` (under a minute once built); `PROPAGATION_CHANGES` and
//! `PROPAGATION_STREAMS` change the counts (200, 100).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../tests/common/control_plane.rs"]
mod cp;
#[path = "support/measure.rs"]
mod measure;
#[path = "../tests/common/postgres.rs"]
mod postgres;
#[path = "support/sync_client.rs"]
mod sync_client;

use measure::summary;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scopegate::proto::sync_response;

const ACCOUNT: &str = "acme";
const REVISION_HEADER: &str = "x-scopegate-revision";

/// What one stream received: the newest version, and every version with the instant it arrived.
#[derive(Default)]
struct StreamLog {
    latest: AtomicU64,
    arrivals: Mutex<Vec<(u64, Instant)>>,
    deltas: AtomicU64,
    snapshots: AtomicU64,
}

impl StreamLog {
    /// When this stream first held `version` or a newer one.
    fn reached(&self, version: u64) -> Option<Instant> {
        let arrivals = self.arrivals.lock().unwrap();
        arrivals.iter().find(|(v, _)| *v >= version).map(|(_, at)| *at)
    }
}

/// One raw Sync stream on `channel`, logging each version it receives.
async fn follow(channel: tonic::transport::Channel, node: String, log: Arc<StreamLog>) {
    sync_client::follow(channel, ACCOUNT.to_owned(), node, |update| {
        let arrived = Instant::now();
        let version = match update {
            sync_response::Update::Snapshot(s) => {
                log.snapshots.fetch_add(1, Ordering::Relaxed);
                s.version
            }
            sync_response::Update::Delta(d) => {
                log.deltas.fetch_add(1, Ordering::Relaxed);
                d.to_version
            }
        };
        log.arrivals.lock().unwrap().push((version, arrived));
        log.latest.store(version, Ordering::Release);
    })
    .await;
}

/// Waits until every stream holds `version` or a newer one.
async fn all_reached(logs: &[Arc<StreamLog>], version: u64, limit: Duration) {
    let start = Instant::now();
    while logs.iter().any(|l| l.latest.load(Ordering::Acquire) < version) {
        let behind = logs
            .iter()
            .filter(|l| l.latest.load(Ordering::Acquire) < version)
            .count();
        assert!(
            start.elapsed() < limit,
            "{behind} of {} streams never received revision {version}",
            logs.len()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `scopegate ARGS`, which must succeed: its stdout and stderr.
fn scopegate(args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "scopegate {args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

fn count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let changes = count("PROPAGATION_CHANGES", 200);
    let streams = count("PROPAGATION_STREAMS", 100);
    let pg = postgres::Postgres::start();
    let url = pg.create("propagation");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/examples/snapshots/demo.yaml");
    scopegate(&["admin", "import", "--database", &url, demo]);
    let (token, _) = scopegate(&[
        "admin",
        "bootstrap",
        "--database",
        &url,
        "--account",
        ACCOUNT,
        "--user",
        "bench_admin",
    ]);
    let token = token.trim().to_owned();

    let replica = || cp::Process::database(&url, "127.0.0.1:0", &["--audit", "off"]);
    let (a, b) = (replica(), replica());
    let management = a.management.expect("replica A logs no management address");

    let mut logs = Vec::with_capacity(streams);
    for n in 0..streams {
        let channel = tonic::transport::Endpoint::from_shared(b.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let log = Arc::new(StreamLog::default());
        tokio::spawn(follow(channel, format!("bench-{n}"), Arc::clone(&log)));
        logs.push(log);
    }
    all_reached(&logs, 1, Duration::from_secs(60)).await;
    // settle: every stream holds the account's current revision before the first write
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_revision = logs
        .iter()
        .map(|l| l.latest.load(Ordering::Acquire))
        .max()
        .unwrap();
    all_reached(&logs, start_revision, Duration::from_secs(30)).await;
    println!(
        "propagation/setup: replicas A and B on one PostgreSQL, {streams} Sync streams on B ({streams} connections), \
         account `{ACCOUNT}` (the demo) at revision {start_revision}; {changes} changes through A's management API"
    );

    let client = reqwest::Client::new();
    let endpoint = format!("http://{management}/ng/api/organizations?accountIdentifier={ACCOUNT}");
    let (mut writes, mut first, mut last) = (Vec::new(), Vec::new(), Vec::new());
    let mut early = 0;
    for n in 0..changes {
        let body = serde_json::json!({
            "organization": {"identifier": format!("bench_org_{n}"), "name": format!("Bench {n}")}
        });
        let sent = Instant::now();
        let response = client
            .post(&endpoint)
            .header("x-api-key", &token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let returned = Instant::now();
        let status = response.status();
        let revision: u64 = response
            .headers()
            .get(REVISION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("change {n}: {status}, no {REVISION_HEADER}"));
        assert!(status.is_success(), "change {n}: {status}");
        assert_eq!(revision, start_revision + 1 + n as u64, "change {n}");
        writes.push(returned - sent);
        all_reached(&logs, revision, Duration::from_secs(30)).await;
        let arrivals: Vec<Instant> = logs.iter().map(|l| l.reached(revision).unwrap()).collect();
        early += arrivals.iter().filter(|at| **at < returned).count();
        let since = |at: &Instant| at.saturating_duration_since(returned);
        first.push(arrivals.iter().map(since).min().unwrap());
        last.push(arrivals.iter().map(since).max().unwrap());
    }
    let deltas: u64 = logs.iter().map(|l| l.deltas.load(Ordering::Relaxed)).sum();
    let snapshots: u64 = logs.iter().map(|l| l.snapshots.load(Ordering::Relaxed)).sum();
    println!(
        "propagation/write (POST /ng/api/organizations on A, until its answer): {}",
        summary(writes)
    );
    println!(
        "propagation/first_stream (A's answer -> the first of {streams} streams on B has the revision): {}",
        summary(first)
    );
    println!(
        "propagation/last_stream (A's answer -> all {streams} streams on B have the revision): {}",
        summary(last)
    );
    println!(
        "propagation/streams: {deltas} deltas and {snapshots} snapshots received ({streams} first snapshots); \
         {early} of {} arrivals came before A's answer (counted as 0)",
        changes * streams
    );
    a.kill();
    b.kill();
}
