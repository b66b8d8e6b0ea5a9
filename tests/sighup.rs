#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! SIGHUP is a reload signal, never an exit: the real `scopegate serve` (plaintext) and
//! `scopegate control-plane` processes survive it, keep answering and lose no audit line.

use crate::common;
use crate::common::http;
use crate::common::process;

use std::time::Duration;

use common::control_plane::{Process as ControlPlane, TempDir, demo, eventually, write_atomic};
use common::{ALICE, EXECUTE};
use http::send;
use process::Process;
use scopegate::proto::GetRequest;
use scopegate::proto::snapshot_service_client::SnapshotServiceClient;

const LONG: Duration = Duration::from_secs(30);

fn hangup(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn audit_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "a line was cut");
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn allowed_over_http(server: &Process, request_id: &str) -> bool {
    let headers = [
        ("harness-account", "acme"),
        ("x-api-key", ALICE),
        ("x-request-id", request_id),
    ];
    // the default http_source (envoy): the request itself is what is authorized
    send(server.http, "POST", EXECUTE, &headers, None).await.status == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_on_sighup_keeps_answering_and_loses_no_audit_line() {
    let dir = TempDir::new("sighup-serve");
    let snapshots = dir.join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    write_atomic(&snapshots.join("acme.yaml"), &demo("acme", 1, false));
    let audit = dir.join("audit.jsonl");
    let config = dir.join("scopegate.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: {{grpc: 127.0.0.1:0, http: 127.0.0.1:0}}\nsnapshot: {{files: \"{}\"}}\naudit: {{sink: \"file:{}\"}}\ntelemetry: {{log_format: json}}\n",
            snapshots.display(),
            audit.display()
        ),
    )
    .unwrap();
    let mut server = Process::start(&config);
    for i in 0..5 {
        assert!(allowed_over_http(&server, &format!("before-{i}")).await);
    }
    hangup(server.pid());
    eventually(LONG, "the SIGHUP reload is logged", async || {
        server.logged("SIGHUP") >= 1
    })
    .await;
    assert!(server.is_running(), "SIGHUP killed `serve`");
    for i in 0..5 {
        assert!(allowed_over_http(&server, &format!("after-{i}")).await);
    }
    hangup(server.pid());
    eventually(LONG, "the second SIGHUP reload is logged", async || {
        server.logged("SIGHUP") >= 2
    })
    .await;
    assert!(server.is_running());
    let before: Vec<_> = audit_lines(&audit)
        .into_iter()
        .filter(|l| l["request_id"].as_str().is_some_and(|r| r.starts_with("before-")))
        .collect();
    assert_eq!(before.len(), 5, "lines written before the SIGHUP are intact");
    server.terminate();
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 10, "no audit line lost at SIGTERM");
    assert!(lines.iter().all(|l| l["result"] == "allow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_rescans_on_sighup_and_keeps_serving() {
    let dir = TempDir::new("sighup-cp");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let mut cp = ControlPlane::control_plane(&dir.0, "127.0.0.1:0", &[]);
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 2, false));
    hangup(cp.pid());
    let url = cp.url();
    eventually(LONG, "the control plane serves version 2", async || {
        let Ok(mut client) = SnapshotServiceClient::connect(url.clone()).await else {
            return false;
        };
        let got = client
            .get(GetRequest {
                account: "acme".to_owned(),
            })
            .await;
        got.is_ok_and(|g| g.into_inner().snapshot.is_some_and(|s| s.version == 2))
    })
    .await;
    hangup(cp.pid());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cp.is_running(), "SIGHUP killed `control-plane`");
    let mut client = SnapshotServiceClient::connect(cp.url()).await.unwrap();
    let got = client
        .get(GetRequest {
            account: "acme".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(got.into_inner().snapshot.unwrap().version, 2);
    cp.kill();
}
