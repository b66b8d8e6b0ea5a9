#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `/metrics` of a sidecar fed by a control plane: the loaded accounts' versions and ages and the
//! control-plane source's counters are exported (they once were only for snapshot files).

use crate::common;

use std::time::Duration;

use common::control_plane::{Process, TempDir, demo, eventually, remote, sidecar, write_atomic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_fed_sidecar_exports_its_accounts_and_source_counters() {
    let dir = TempDir::new("cp-metrics");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 3, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let state = sidecar(remote(&cp.url()));
    state.accounts().start();
    eventually(Duration::from_secs(10), "acme loaded", async || {
        state.accounts().load("acme").await
    })
    .await;
    let text = state.metrics_text();
    for line in [
        "scopegate_accounts_loaded 1",
        "scopegate_snapshot_version{account=\"acme\"} 3",
        "scopegate_snapshot_versions_applied_total 1",
        "scopegate_control_plane_watch_streams 1",
        "scopegate_snapshot_load_failures_total 0",
        "scopegate_control_plane_reconnects_total 0",
        "scopegate_account_evictions_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("scopegate_snapshot_age_seconds{account=\"acme\"} ")),
        "{text}"
    );
    cp.kill();
}
