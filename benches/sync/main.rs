//! Sync figures on the generated 100,000-assignment account (`support::Shape::default()`) plus a
//! probe service account whose one role assignment the changes add and remove, wall-clock
//! percentiles, so a hand-written main rather than criterion:
//! - `wire_bytes`: the encoded Sync answer for one-line changes (an assignment added and removed, a
//!   user joining a group, a token rotated) against the whole snapshot's, and what publishing one
//!   change costs the control plane (`Store::publish`: the diff, its encoding and the snapshot's).
//! - `sidecar_deltas`: an in-process sidecar following a scripted control plane that sends the next
//!   delta when the last one is acknowledged, through 10,000 changes: delta sent → ACK received
//!   p50/p99 (decode, incremental compile, apply, publish), and the process's resident memory every
//!   1,000 changes.
//! - `database_to_decision`: a throwaway PostgreSQL (`tests/common/postgres.rs`, fsync off), a
//!   `scopegate control-plane --database` process and an in-process sidecar: the change is
//!   committed through `PgStore::change`, the clock runs from its commit until a Check on the
//!   sidecar answers the other way; p50/p99. Beside it, the replica's old path per change (read
//!   the account whole, compile it) as the baseline.
//! - `fan_out`: a `scopegate control-plane --source DIR` process with 1,000 demo-sized accounts and
//!   10,000 Sync streams (10 per account over 100 HTTP/2 connections): its memory per stream, and
//!   the CPU it spends per change (every account changed once, each change reaching 10 streams), less its idle
//!   CPU over the same time.
//!
//! Run: `cargo bench --bench sync` (several minutes); `SYNC_PARTS=wire,sidecar,database,fanout`
//! picks parts, `SYNC_CHANGES` sets the sidecar's change count (10,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../../tests/common/control_plane.rs"]
mod cp;
mod fan_out;
#[path = "../support/measure.rs"]
mod measure;
#[path = "../../tests/common/postgres.rs"]
mod postgres;
#[path = "../support/mod.rs"]
mod support;
#[path = "../support/sync_client.rs"]
mod sync_client;

use std::collections::HashMap;

use measure::{rss_kib, summary};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use scopegate::authn::api_key::{TokenKind, mint};
use scopegate::authz::Authorizer;
use scopegate::control_plane::Store;
use scopegate::control_plane::admin::replace_with;
use scopegate::control_plane::changes::{AccountStore, ChangeSummary};
use scopegate::control_plane::postgres::{PgStore, connect, read_account};
use scopegate::proto::delta::to_wire;
use scopegate::proto::encoded::Encoded;
use scopegate::proto::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use scopegate::proto::{SyncRequest, SyncResponse, sync_request, sync_response};
use scopegate::rbac::model::{
    AccountSnapshot, ApiKey, ApiKeyParent, ApiToken, PrincipalRef, PrincipalType, RoleAssignment,
    ServiceAccount,
};
use scopegate::rbac::{AccountDelta, Catalog, Entity, EntityChange, compile};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const ACCOUNT: &str = "bench";
const PROBE_ASSIGNMENT: &str = "ra_probe";

/// The probe's token, and the generated account with the probe service account and its API key.
fn account(catalog: &Catalog) -> (String, AccountSnapshot) {
    let minted = mint(ACCOUNT, TokenKind::Sat, Some("probetok")).unwrap();
    let mut doc = support::generate(&support::Shape::default(), catalog);
    doc.version = 1;
    doc.service_accounts.push(ServiceAccount {
        identifier: "probe".to_owned(),
        scope: None,
    });
    doc.api_keys.push(ApiKey {
        identifier: "probe_key".to_owned(),
        parent: Some(ApiKeyParent {
            r#type: PrincipalType::ServiceAccount as i32,
            identifier: "probe".to_owned(),
            scope: None,
        }),
        tokens: vec![ApiToken {
            identifier: "probe_token".to_owned(),
            id: minted.id.clone(),
            secret_hash: minted.secret_hash.clone(),
            valid_from: "2020-01-01T00:00:00Z".to_owned(),
            valid_to: "2099-01-01T00:00:00Z".to_owned(),
            rotated_expire_at: None,
            permissions: Vec::new(),
        }],
    });
    (minted.token, doc)
}

/// The assignment the changes add and remove: the probe as account viewer.
fn probe_assignment() -> RoleAssignment {
    RoleAssignment {
        identifier: PROBE_ASSIGNMENT.to_owned(),
        scope: None,
        principal: Some(PrincipalRef {
            r#type: PrincipalType::ServiceAccount as i32,
            identifier: "probe".to_owned(),
            scope_level: 0,
        }),
        role: "_account_viewer".to_owned(),
        resource_group: "_all_account_level_resources".to_owned(),
        disabled: false,
    }
}

/// Adds the probe's assignment when it is missing, removes it otherwise.
fn toggle(doc: &mut AccountSnapshot) {
    match doc
        .role_assignments
        .iter()
        .position(|a| a.identifier == PROBE_ASSIGNMENT)
    {
        Some(index) => {
            doc.role_assignments.remove(index);
        }
        None => doc.role_assignments.push(probe_assignment()),
    }
}

/// A Check listing the account's organizations (`core_organization_view`) with the probe's token.
fn probe_check(token: &str) -> CheckRequest {
    let headers: HashMap<String, String> = [("harness-account", ACCOUNT), ("x-api-key", token)]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "GET".to_owned(),
                    path: format!("/ng/api/organizations?accountIdentifier={ACCOUNT}"),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

async fn allowed(state: &Authorizer, request: &CheckRequest) -> bool {
    let response = scopegate::envoy::check(state, request).await;
    matches!(response.http_response, Some(HttpResponse::OkResponse(_)))
}

fn wire_bytes(doc: &AccountSnapshot) {
    let store = Store::default();
    store.publish(doc.clone()).unwrap();
    let snapshot_bytes = store.served(ACCOUNT).unwrap().encoded.0.len();
    let mut current = doc.clone();
    let mut publish = |name: &str, edit: &dyn Fn(&mut AccountSnapshot)| {
        let mut next = current.clone();
        edit(&mut next);
        next.version = current.version + 1;
        let start = Instant::now();
        store.publish(next.clone()).unwrap();
        let took = start.elapsed();
        let deltas = store
            .deltas(ACCOUNT, current.version, next.version, usize::MAX)
            .unwrap();
        let bytes: usize = deltas.iter().map(|d| d.0.len()).sum();
        println!("wire_bytes/{name}: {bytes} B (publish {took:.1?})");
        current = next;
    };
    publish("role_assignment_added", &toggle);
    publish("role_assignment_removed", &toggle);
    publish("user_joins_group", &|doc| {
        let joining = doc.users[0].identifier.clone();
        let group = doc
            .user_groups
            .iter_mut()
            .find(|g| !g.users.contains(&joining))
            .unwrap();
        group.users.push(joining);
    });
    publish("token_rotated", &|doc| {
        let key = doc
            .api_keys
            .iter_mut()
            .find(|k| k.identifier == "probe_key")
            .unwrap();
        let mut rotated = key.tokens[0].clone();
        key.tokens[0].rotated_expire_at = Some("2027-01-01T00:00:00Z".to_owned());
        rotated.identifier = "probe_token_2".to_owned();
        rotated.id = "probetok2".to_owned();
        key.tokens.push(rotated);
    });
    let start = Instant::now();
    let encoded = Encoded::snapshot(&current);
    let encoding = start.elapsed();
    let mut next = current.clone();
    toggle(&mut next);
    next.version += 1;
    let start = Instant::now();
    let delta = AccountDelta::between(&current, &next).unwrap();
    let diffing = start.elapsed();
    println!(
        "wire_bytes/whole_snapshot: {snapshot_bytes} B ({} role assignments); of a publish, the diff takes \
         {diffing:.1?} ({} change) and the snapshot's encoding {encoding:.1?} ({} B)",
        doc.role_assignments.len(),
        delta.changes.len(),
        encoded.0.len()
    );
}

/// A control plane that sends what the bench scripts and reports each acknowledged version.
struct Scripted {
    answers: std::sync::Mutex<Option<mpsc::Receiver<Result<Encoded, tonic::Status>>>>,
    acks: mpsc::UnboundedSender<Result<u64, String>>,
}

#[tonic::async_trait]
impl SnapshotService for Scripted {
    async fn sync(
        &self,
        request: tonic::Request<tonic::Streaming<SyncRequest>>,
    ) -> Result<tonic::Response<scopegate::control_plane::WatchResponses>, tonic::Status> {
        let answers = self.answers.lock().unwrap().take();
        let answers = answers.ok_or_else(|| tonic::Status::unavailable("one stream only"))?;
        let mut requests = request.into_inner();
        let acks = self.acks.clone();
        tokio::spawn(async move {
            while let Ok(Some(request)) = requests.message().await {
                let answer = match request.kind {
                    Some(sync_request::Kind::Ack(ack)) => Ok(ack.version),
                    Some(sync_request::Kind::Nack(nack)) => Err(nack.error),
                    _ => continue,
                };
                let _ = acks.send(answer);
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(answers))))
    }
}

fn delta_answer(from: u64, change: EntityChange) -> Encoded {
    let delta = AccountDelta {
        from_version: from,
        to_version: from + 1,
        changes: vec![change],
    };
    Encoded::of(&SyncResponse {
        update: Some(sync_response::Update::Delta(to_wire(ACCOUNT, delta))),
    })
}

async fn sidecar_deltas(token: &str, doc: &AccountSnapshot, changes: u64) {
    let (answers_tx, answers_rx) = mpsc::channel(4);
    let (acks_tx, mut acks) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let scripted = Scripted {
        answers: std::sync::Mutex::new(Some(answers_rx)),
        acks: acks_tx,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SnapshotServiceServer::new(scripted).max_decoding_message_size(64 << 20))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    answers_tx.send(Ok(Encoded::snapshot(doc))).await.unwrap();
    let mut options = cp::remote(&url);
    options.load_timeout = Duration::from_secs(120);
    let state = cp::sidecar(options);
    state.accounts().start();
    assert!(state.accounts().load(ACCOUNT).await, "the account loads");
    assert_eq!(acks.recv().await.unwrap(), Ok(1));
    let request = probe_check(token);
    assert!(
        !allowed(&state, &request).await,
        "the probe starts without a grant"
    );
    let me = std::process::id();
    let mut rss = vec![(0, rss_kib(me))];
    let mut samples = Vec::with_capacity(changes as usize);
    let key = Entity::RoleAssignment(probe_assignment()).key();
    for n in 0..changes {
        let version = 1 + n;
        let granted = n % 2 == 0;
        let change = if granted {
            EntityChange::Upsert(Entity::RoleAssignment(probe_assignment()))
        } else {
            EntityChange::Delete(key.clone())
        };
        let answer = delta_answer(version, change);
        let start = Instant::now();
        answers_tx.send(Ok(answer)).await.unwrap();
        assert_eq!(acks.recv().await.unwrap(), Ok(version + 1));
        samples.push(start.elapsed());
        if n % 100 == 0 {
            assert_eq!(allowed(&state, &request).await, granted, "after change {n}");
        }
        if (n + 1) % 1000 == 0 {
            rss.push((n + 1, rss_kib(me)));
        }
    }
    let stats = state.accounts().stats();
    assert_eq!((stats.deltas_applied, stats.deltas_rejected), (changes, 0));
    println!("sidecar_deltas/send_to_ack: {}", summary(samples));
    let shown: Vec<String> = rss
        .iter()
        .map(|(n, kib)| format!("{n}: {} MiB", kib / 1024))
        .collect();
    println!("sidecar_deltas/rss_by_changes: {}", shown.join(", "));
}

async fn database_to_decision(token: &str, doc: &AccountSnapshot, changes: usize) {
    let pg = postgres::Postgres::start();
    let url = pg.create("sync");
    let catalog = Arc::new(Catalog::embedded().unwrap());
    let store = PgStore::new(connect(&url, 4).await.unwrap(), catalog);
    let start = Instant::now();
    store
        .change(ACCOUNT, "bench", true, replace_with(doc.clone(), "import".into()))
        .await
        .unwrap();
    println!("database_to_decision: import {:.1?}", start.elapsed());
    let replica = cp::Process::database(&url, "127.0.0.1:0", &[]);
    let mut options = cp::remote(&replica.url());
    options.load_timeout = Duration::from_secs(120);
    let state = cp::sidecar(options);
    state.accounts().start();
    assert!(state.accounts().load(ACCOUNT).await, "the account loads");
    let request = probe_check(token);
    let (mut writes, mut samples) = (Vec::new(), Vec::new());
    for n in 0..changes {
        let before = allowed(&state, &request).await;
        let start = Instant::now();
        let edit = Box::new(|doc: &mut AccountSnapshot| {
            toggle(doc);
            Ok(ChangeSummary("probe assignment toggled".to_owned()))
        });
        store.change(ACCOUNT, "bench", false, edit).await.unwrap();
        let committed = Instant::now();
        writes.push(committed - start);
        while allowed(&state, &request).await == before {
            assert!(
                committed.elapsed() < Duration::from_secs(30),
                "change {n} never arrived"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        samples.push(committed.elapsed());
    }
    let stats = state.accounts().stats();
    println!(
        "database_to_decision/commit_to_decision: {} ({} deltas, {} rejected)",
        summary(samples),
        stats.deltas_applied,
        stats.deltas_rejected
    );
    println!(
        "database_to_decision/write (PgStore::change): {}",
        summary(writes)
    );
    // The baseline in the same run: what a replica did per change before the change log carried
    // deltas (and still does past a gap): read the account whole and compile it.
    let mut whole = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let doc = read_account(store.pool(), ACCOUNT).await.unwrap().unwrap();
        compile(&doc, Arc::new(Catalog::embedded().unwrap()), None).unwrap();
        whole.push(start.elapsed());
    }
    println!(
        "database_to_decision/whole_read_and_compile_baseline: {}",
        summary(whole)
    );
    replica.kill();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let parts = std::env::var("SYNC_PARTS").unwrap_or_else(|_| "wire,sidecar,database,fanout".to_owned());
    let changes = std::env::var("SYNC_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let catalog = Catalog::embedded().unwrap();
    let (token, doc) = account(&catalog);
    if parts.contains("wire") {
        wire_bytes(&doc);
    }
    if parts.contains("sidecar") {
        sidecar_deltas(&token, &doc, changes).await;
    }
    if parts.contains("database") {
        database_to_decision(&token, &doc, 50).await;
    }
    if parts.contains("fanout") {
        fan_out::fan_out().await;
    }
}
