#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Deltas over Sync, end to end against a real `scopegate control-plane` process:
//! - a one-line change reaches an in-process sidecar as a delta (compiled incrementally), under a
//!   kilobyte on the wire, and flips the decision;
//! - a sidecar restarted on its last-known-good copy (snapshot plus the deltas applied) resumes
//!   from the revision it holds and gets only what it missed;
//! - a raw Sync client: a rejection (NACK) is answered with the whole snapshot, a rejected snapshot
//!   is not sent again until a newer version, a resume gets only the deltas, and the control plane
//!   lists which node holds which revision (`GET /v1/sidecars`) and counts it (`GET /metrics`).

use crate::common;
use crate::common::http;

use std::time::Duration;

use common::control_plane::{Process, TempDir, demo, eventually, remote, sidecar, write_atomic};
use common::{Server, alice};
use prost::Message;
use scopegate::authn::api_key::{TokenKind, mint};
use scopegate::proto::snapshot_service_client::SnapshotServiceClient;
use scopegate::proto::{Ack, Nack, Subscribe, SyncRequest, SyncResponse, sync_request, sync_response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_arrives_as_a_delta_and_a_restarted_sidecar_resumes_from_its_saved_copy() {
    let dir = TempDir::new("sync-delta");
    let cache = TempDir::new("sync-delta-cache");
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 1, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let options = || {
        let mut options = remote(&cp.url());
        options.cache_dir = Some(cache.0.clone());
        options
    };
    let state = sidecar(options());
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    assert_eq!(alice(&mut client, "acme").await, 200);
    assert_eq!(
        state.accounts().stats().deltas_applied,
        0,
        "the first load is a snapshot"
    );

    write_atomic(&dir.join("acme.yaml"), &demo("acme", 2, true));
    eventually(LONG, "alice denied after the revocation", async || {
        alice(&mut client, "acme").await == 403
    })
    .await;
    let stats = state.accounts().stats();
    assert_eq!(
        (
            stats.versions_applied,
            stats.deltas_applied,
            stats.deltas_rejected
        ),
        (2, 1, 0)
    );
    server.stop().await;
    drop(state);

    // Restarted while the account moves on: the saved copy (version 1 plus the delta to 2) is
    // served and the stream resumes from version 2, so version 3 comes as one more delta.
    write_atomic(&dir.join("acme.yaml"), &demo("acme", 3, false));
    let state = sidecar(options());
    let server = Server::start(state.clone()).await;
    let mut client = server.client().await;
    eventually(LONG, "alice allowed again at version 3", async || {
        alice(&mut client, "acme").await == 200
    })
    .await;
    let stats = state.accounts().stats();
    assert_eq!(stats.accounts[0].version, 3);
    assert_eq!(stats.deltas_applied, 1, "resumed from version 2: {stats:?}");
    server.stop().await;
    cp.kill();
}

/// A raw Sync stream: the sender of its requests and its answers.
struct RawSync {
    requests: mpsc::Sender<SyncRequest>,
    answers: tonic::Streaming<SyncResponse>,
}

impl RawSync {
    async fn open(url: &str, account: &str, known_version: u64, node: &str) -> Self {
        let (requests, outbound) = mpsc::channel(8);
        requests
            .send(SyncRequest {
                kind: Some(sync_request::Kind::Subscribe(Subscribe {
                    account: account.to_owned(),
                    known_version,
                    node: node.to_owned(),
                })),
            })
            .await
            .unwrap();
        let mut client = SnapshotServiceClient::connect(url.to_owned()).await.unwrap();
        let answers = client
            .sync(ReceiverStream::new(outbound))
            .await
            .unwrap()
            .into_inner();
        Self { requests, answers }
    }

    async fn next(&mut self) -> sync_response::Update {
        let answer = tokio::time::timeout(LONG, self.answers.message()).await;
        answer.unwrap().unwrap().unwrap().update.unwrap()
    }

    async fn send(&self, kind: sync_request::Kind) {
        self.requests
            .send(SyncRequest { kind: Some(kind) })
            .await
            .unwrap();
    }
}

fn snapshot_version(update: &sync_response::Update) -> u64 {
    match update {
        sync_response::Update::Snapshot(s) => s.version,
        sync_response::Update::Delta(d) => panic!(
            "a delta {}→{} where a snapshot was due",
            d.from_version, d.to_version
        ),
    }
}

fn delta_versions(update: &sync_response::Update) -> (u64, u64) {
    match update {
        sync_response::Update::Delta(d) => (d.from_version, d.to_version),
        sync_response::Update::Snapshot(s) => {
            panic!("a snapshot of version {} where a delta was due", s.version)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_get_the_snapshot_resumes_get_deltas_and_the_control_plane_lists_its_sidecars() {
    let admin = mint("acme", TokenKind::Sat, Some("statustok")).unwrap();
    let with_admin = |version: u64, revoked: bool| {
        format!(
            "{}  - identifier: status_key\n    parent: {{type: SERVICE_ACCOUNT, identifier: ops}}\n    tokens: [{{identifier: t, id: statustok, secret_hash: \"{}\", valid_from: \"2020-01-01T00:00:00Z\", valid_to: \"2099-01-01T00:00:00Z\"}}]\n",
            demo("acme", version, revoked).replace("service_accounts:\n", "service_accounts:\n  - {identifier: ops}\n").replace("role_assignments:\n", "role_assignments:\n  - {identifier: ra_ops, principal: {type: SERVICE_ACCOUNT, identifier: ops}, role: _account_viewer, resource_group: _all_account_level_resources}\n"),
            admin.secret_hash
        )
    };
    let dir = TempDir::new("sync-raw");
    write_atomic(&dir.join("acme.yaml"), &with_admin(1, false));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let url = cp.url();

    let mut stream = RawSync::open(&url, "acme", 0, "pod-a").await;
    assert_eq!(snapshot_version(&stream.next().await), 1);
    stream.send(sync_request::Kind::Ack(Ack { version: 1 })).await;

    write_atomic(&dir.join("acme.yaml"), &with_admin(2, true));
    let delta = stream.next().await;
    assert_eq!(delta_versions(&delta), (1, 2));
    let wire = SyncResponse { update: Some(delta) }.encoded_len();
    assert!(wire <= 1024, "a one-assignment delta took {wire} bytes");

    // rejected: the whole snapshot follows; rejected again: nothing until a newer version
    stream
        .send(sync_request::Kind::Nack(Nack {
            version: 2,
            error: "cannot apply".to_owned(),
        }))
        .await;
    assert_eq!(snapshot_version(&stream.next().await), 2);
    stream
        .send(sync_request::Kind::Nack(Nack {
            version: 2,
            error: "still cannot".to_owned(),
        }))
        .await;
    write_atomic(&dir.join("acme.yaml"), &with_admin(3, false));
    assert_eq!(
        snapshot_version(&stream.next().await),
        3,
        "held 1, so a snapshot of 3"
    );
    stream.send(sync_request::Kind::Ack(Ack { version: 3 })).await;

    // a second node resuming from version 2 gets only the delta to 3
    let mut resumed = RawSync::open(&url, "acme", 2, "pod-b").await;
    assert_eq!(delta_versions(&resumed.next().await), (2, 3));
    resumed.send(sync_request::Kind::Ack(Ack { version: 3 })).await;

    let management = cp.management.unwrap();
    let listed = |caller: Option<String>| async move {
        let headers: Vec<(&str, &str)> = caller.iter().map(|t| ("x-api-key", t.as_str())).collect();
        http::send(
            management,
            "GET",
            "/v1/sidecars?accountIdentifier=acme",
            &headers,
            None,
        )
        .await
    };
    assert_eq!(listed(None).await.status, 401);
    eventually(
        LONG,
        "both nodes listed at version 3, pod-a's rejection kept",
        async || {
            let reply = listed(Some(admin.token.clone())).await;
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            let sidecars = body["data"]["sidecars"].as_array().cloned().unwrap_or_default();
            reply.status == 200
                && body["data"]["servedVersion"] == 3
                && sidecars.len() == 2
                && sidecars.iter().all(|s| s["ackedVersion"] == 3)
                && sidecars[0]["node"] == "pod-a"
                && sidecars[0]["rejected"]["error"] == "still cannot"
                && sidecars[1]["resumedFrom"] == 2
        },
    )
    .await;
    let metrics = http::send(management, "GET", "/metrics", &[], None).await;
    for line in [
        "scopegate_control_plane_sync_streams 2",
        "scopegate_control_plane_sync_streams_behind 0",
        "scopegate_control_plane_sync_rejections_total 2",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "missing `{line}` in\n{}",
            metrics.body
        );
    }
    drop(stream);
    drop(resumed);
    cp.kill();
}
