//! Control-plane figures, end to end on loopback (wall-clock medians, so a hand-written main rather
//! than criterion):
//! - `change_to_decision`: a snapshot file is rewritten (alternately revoking and restoring alice's
//!   grant) until a Check on the sidecar answers differently; median of 20. Includes the control
//!   plane's rescan interval (250 ms), its validation, the push, the sidecar's compile and publish.
//! - `large_account_load`: a sidecar's first load of the 100,000-assignment account of
//!   `support::Shape::default()` (Watch transfer + decode + compile), median of 5, next to the
//!   compile alone.
//! - `sidecar_rss`: resident memory of a real `scopegate serve` process pointed at the control
//!   plane, with 0, 1 and 100 demo-sized accounts loaded, then with the large account as well.
//!
//! Run: `cargo bench --bench control_plane` (about a minute; the control plane runs in process).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(dead_code)]
#[path = "../tests/common/control_plane.rs"]
mod cp;
#[path = "support/measure.rs"]
mod measure;
mod support;

use measure::rss_kib;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use prost::Message;
use scopegate::authz::Authorizer;
use scopegate::control_plane::{Options, SCAN_INTERVAL};
use scopegate::rbac::{Catalog, compile};

const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";

fn alice(account: &str) -> CheckRequest {
    let token = format!("pat.{account}.alicetok01.AliceDemoSecret01");
    let headers: HashMap<String, String> = [("harness-account", account), ("x-api-key", token.as_str())]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "POST".to_owned(),
                    path: EXECUTE.to_owned(),
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

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Starts the control plane in process on `dir`; returns its URL.
async fn control_plane(dir: &std::path::Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let options = Options {
        source: scopegate::control_plane::Source::Folder(dir.to_path_buf()),
        catalog: Arc::new(Catalog::embedded().unwrap()),
        tls: None,
        limits: scopegate::tls::ConnectionLimits::default(),
        scan_interval: SCAN_INTERVAL,
        max_snapshot_bytes: scopegate::control_plane::DEFAULT_MAX_SNAPSHOT_BYTES,
    };
    tokio::spawn(scopegate::control_plane::run_on(
        listener,
        options,
        std::future::pending(),
    ));
    // run_on scans before it accepts: wait until it answers.
    let mut client = loop {
        match scopegate::proto::snapshot_service_client::SnapshotServiceClient::connect(url.clone()).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let _ = client
        .get(scopegate::proto::GetRequest {
            account: "acme".to_owned(),
        })
        .await;
    url
}

async fn change_to_decision() {
    let dir = cp::TempDir::new("bench-cp-change");
    let file = dir.join("acme.yaml");
    cp::write_atomic(&file, &cp::demo("acme", 1, false));
    let url = control_plane(&dir.0).await;
    let state = cp::sidecar(cp::remote(&url));
    state.accounts().start();
    assert!(state.accounts().load("acme").await);
    let request = alice("acme");
    let mut samples = Vec::new();
    for version in 2..22 {
        // Writes land at a random point of the control plane's rescan cycle, as real edits do.
        tokio::time::sleep(SCAN_INTERVAL.mul_f64(rand::random::<f64>())).await;
        let before = allowed(&state, &request).await;
        cp::write_atomic(&file, &cp::demo("acme", version, before));
        let start = Instant::now();
        while allowed(&state, &request).await == before {
            assert!(start.elapsed() < Duration::from_secs(10), "no change");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(start.elapsed());
    }
    let (min, max) = (*samples.iter().min().unwrap(), *samples.iter().max().unwrap());
    println!(
        "change_to_decision: median {:?} (min {min:?}, max {max:?}, n=20; control-plane rescan every {SCAN_INTERVAL:?})",
        median(samples)
    );
}

async fn large_account_load(dir: &cp::TempDir, url: &str) {
    let catalog = Arc::new(Catalog::embedded().unwrap());
    let snapshot = support::generate(&support::Shape::default(), &catalog);
    let mut compiles = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        compile(&snapshot, Arc::clone(&catalog), None).unwrap();
        compiles.push(start.elapsed());
    }
    let mut loads = Vec::new();
    for _ in 0..5 {
        let mut options = cp::remote(url);
        options.load_timeout = Duration::from_secs(120);
        let state = cp::sidecar(options);
        let start = Instant::now();
        assert!(state.accounts().load("bench").await);
        loads.push(start.elapsed());
    }
    println!(
        "large_account_load: {} role assignments, {:.1} MB on the wire: first load median {:?} (compile alone median {:?}), n=5",
        snapshot.role_assignments.len(),
        snapshot.encoded_len() as f64 / 1e6,
        median(loads),
        median(compiles),
    );
    let _ = dir;
}

async fn sidecar_rss(url: &str) {
    let process = cp::Process::start(&["serve", "--control-plane", url, "--listen", "127.0.0.1:0"]);
    let pid = process.pid();
    let mut client = AuthorizationClient::connect(format!("http://{}", process.addr))
        .await
        .unwrap();
    let mut check = async |account: &str| {
        for _ in 0..100 {
            let response = client.check(alice(account)).await.unwrap().into_inner();
            if matches!(response.http_response, Some(HttpResponse::OkResponse(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{account} did not load");
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(pid);
    check("acct000").await;
    let one = rss_kib(pid);
    for n in 1..100 {
        check(&format!("acct{n:03}")).await;
    }
    let hundred = rss_kib(pid);
    for _ in 0..600 {
        let response = client.check(alice("bench")).await.unwrap().into_inner();
        // alice does not exist in the generated account: a 401 means it is loaded.
        if matches!(response.http_response, Some(HttpResponse::DeniedResponse(ref d)) if d.status.as_ref().is_some_and(|s| s.code == 401))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let large = rss_kib(pid);
    println!(
        "sidecar_rss: {:.1} MiB with no account, {:.1} MiB with 1, {:.1} MiB with 100 demo-sized accounts, {:.1} MiB with the 100,000-assignment account added",
        idle as f64 / 1024.0,
        one as f64 / 1024.0,
        hundred as f64 / 1024.0,
        large as f64 / 1024.0
    );
    process.kill();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        change_to_decision().await;
        let dir = cp::TempDir::new("bench-cp-accounts");
        for n in 0..100 {
            let account = format!("acct{n:03}");
            cp::write_atomic(
                &dir.join(&format!("{account}.yaml")),
                &cp::demo(&account, 1, false),
            );
        }
        let catalog = Catalog::embedded().unwrap();
        let snapshot = support::generate(&support::Shape::default(), &catalog);
        let json = serde_json::to_string(&snapshot).unwrap();
        cp::write_atomic(&dir.join("bench.json"), &json);
        let url = control_plane(&dir.0).await;
        large_account_load(&dir, &url).await;
        sidecar_rss(&url).await;
    });
}
