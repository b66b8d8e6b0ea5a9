//! Criterion benchmark of the whole ext_authz Check handler in process: a `CheckRequest` in, a
//! `CheckResponse` out, through the tonic service's `check` method (the same code path the gRPC
//! server dispatches to, minus HTTP/2 and protobuf framing), on the embedded demo state:
//! - `check/allowed`: alice executing `deploy_prod` (x-api-key, harness-account: acme);
//! - `check/denied_403`: the read-only CI token executing the same pipeline;
//! - `check/missing_credential_401`: no credential at all;
//! - `check/noop_baseline`: a handler that only builds an OK `CheckResponse`, for the ratio;
//! - `check/allowed_audit_file`: `allowed` with the audit log on, writing to a file;
//! - `audit/record`: what one audit record costs the request thread (`AuditLog::record`);
//! - once, not timed by criterion: startup with the generated 100,000-assignment account from a
//!   snapshot file (read, parse, compile, ready), the sidecar's path to SERVING.
//!
//! Each case is asserted once (outside the timed loop), which also warms the token cache. Built
//! with the system allocator (`--no-default-features`), the bench counts the allocations of one
//! Check per case (`scopegate::envoy::check`, request borrowed, response dropped) and prints them;
//! with `mimalloc` (the default) or `jemalloc` it times that allocator instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

mod support;

use criterion::Criterion;
use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::google::rpc::Status;
use scopegate::audit::{AuditLog, AuditRecord, LineSink, RotatingFile};
use scopegate::authz::Authorizer;
use scopegate::envoy::AuthzService;
use tokio::runtime::Runtime;

#[cfg(not(any(feature = "mimalloc", feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Allocations per call of `f`, averaged over `n` calls; `None` unless the counting (system)
/// allocator is in use.
#[cfg(not(any(feature = "mimalloc", feature = "jemalloc")))]
fn allocations_per_call(n: usize, mut f: impl FnMut()) -> Option<f64> {
    let region = stats_alloc::Region::new(GLOBAL);
    for _ in 0..n {
        f();
    }
    Some(region.change().allocations as f64 / n as f64)
}

#[cfg(any(feature = "mimalloc", feature = "jemalloc"))]
fn allocations_per_call(_n: usize, _f: impl FnMut()) -> Option<f64> {
    None
}

fn allocator_name() -> &'static str {
    if cfg!(feature = "mimalloc") {
        "mimalloc"
    } else if cfg!(feature = "jemalloc") {
        "jemalloc"
    } else {
        "system (counting)"
    }
}

const ALICE: &str = "pat.acme.alicetok01.AliceDemoSecret01";
const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";
const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";

fn request(headers: &[(&str, &str)]) -> CheckRequest {
    let headers: HashMap<String, String> = headers
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

/// The baseline: an ext_authz service that allows everything without looking.
#[derive(Debug, Clone, Copy)]
struct Noop;

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        _request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(CheckResponse {
            status: Some(Status::default()),
            ..Default::default()
        }))
    }
}

/// One Check through `service`, as tonic would dispatch it.
fn call<S: Authorization>(rt: &Runtime, service: &S, req: &CheckRequest) -> CheckResponse {
    rt.block_on(service.check(tonic::Request::new(req.clone())))
        .unwrap()
        .into_inner()
}

/// `(grpc code, http status)`; http 200 for an OK response.
fn codes(resp: &CheckResponse) -> (i32, i32) {
    let grpc = resp.status.as_ref().map_or(-1, |s| s.code);
    let http = match &resp.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(d)) => d.status.as_ref().map_or(-1, |s| s.code),
        Some(HttpResponse::ErrorResponse(_)) => -2,
        None => 0,
    };
    (grpc, http)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let service = AuthzService::new(Arc::new(Authorizer::demo().unwrap()));
    let cases = [
        (
            "allowed",
            request(&[("harness-account", "acme"), ("x-api-key", ALICE)]),
            (0, 200),
        ),
        (
            "denied_403",
            request(&[("harness-account", "acme"), ("x-api-key", CI_RO)]),
            (7, 403),
        ),
        (
            "missing_credential_401",
            request(&[("harness-account", "acme")]),
            (16, 401),
        ),
    ];
    // Assert each case once; this also warms the token cache.
    for (name, req, expected) in &cases {
        assert_eq!(codes(&call(&rt, &service, req)), *expected, "{name}");
    }
    assert_eq!(codes(&call(&rt, &Noop, &cases[0].1)), (0, 0));
    eprintln!("allocator: {}", allocator_name());
    let authorizer = Authorizer::demo().unwrap();
    for (name, req, _) in &cases {
        // warm this authorizer's token cache first
        drop(rt.block_on(scopegate::envoy::check(&authorizer, req)));
        let per_check = allocations_per_call(2_000, || {
            drop(black_box(
                rt.block_on(scopegate::envoy::check(&authorizer, black_box(req))),
            ));
        });
        if let Some(per_check) = per_check {
            eprintln!("allocations per Check, {name}: {per_check:.1}");
        }
    }

    let mut group = c.benchmark_group("check");
    for (name, req, _) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(call(&rt, &service, black_box(req))));
        });
    }
    group.bench_function("noop_baseline", |b| {
        b.iter(|| black_box(call(&rt, &Noop, black_box(&cases[0].1))));
    });
    // the same allowed Check with the audit log on, writing to a file (the writer thread drains
    // the queue beside the bench; drops, if the writer falls behind, are reported below)
    let dir = tempfile::tempdir().unwrap();
    let audit = scopegate::config::Audit {
        sink: format!("file:{}", dir.path().join("audit.jsonl").display()),
        ..scopegate::config::Audit::default()
    };
    let log = scopegate::audit::AuditLog::from_config(&audit).unwrap();
    let audited = Arc::new(Authorizer::demo().unwrap().with_audit(log));
    let audited_service = AuthzService::new(Arc::clone(&audited));
    assert_eq!(codes(&call(&rt, &audited_service, &cases[0].1)), (0, 200));
    let per_check = allocations_per_call(2_000, || {
        drop(black_box(rt.block_on(scopegate::envoy::check(
            &audited,
            black_box(&cases[0].1),
        ))));
    });
    if let Some(per_check) = per_check {
        eprintln!("allocations per Check, allowed with the audit log on: {per_check:.1}");
    }
    group.bench_function("allowed_audit_file", |b| {
        b.iter(|| black_box(call(&rt, &audited_service, black_box(&cases[0].1))));
    });
    group.finish();
    audited.audit().close();
    eprintln!(
        "audit during check/allowed_audit_file: {} records written, {} dropped",
        audited.audit().written(),
        audited.audit().dropped()
    );

    // one record handed to the log, as the request thread pays for it (the writer thread drains
    // the batch beside the bench; a batch big enough that nothing is dropped)
    let sink: Box<dyn LineSink> =
        Box::new(RotatingFile::open(&dir.path().join("record.jsonl"), 1 << 40, 1).unwrap());
    let log = AuditLog::with_sink(sink, 1 << 22).unwrap();
    let record = AuditRecord {
        time: std::time::SystemTime::now(),
        decision_id: "5f0c9a1e-2a",
        request_id: Some("0f4c3c1e-6a7b-4d2e-9a55-2c1f0e3b7d11"),
        frontend: "grpc",
        method: "POST",
        path: EXECUTE,
        account: Some("acme"),
        principal: Some("USER:alice"),
        permission: Some("core_pipeline_execute"),
        org: Some("eng"),
        project: Some("payments"),
        resource_type: Some("PIPELINE"),
        resource_id: Some("deploy_prod"),
        allowed: true,
        reason: "granted",
        latency_us: 3,
        token_id: Some("alicetok01"),
        issuer: None,
        checks: None,
        dry_run: false,
    };
    let mut group = c.benchmark_group("audit");
    group.bench_function("record", |b| b.iter(|| log.record(black_box(&record))));
    group.finish();
    if let Some(per_record) = allocations_per_call(10_000, || log.record(black_box(&record))) {
        eprintln!("allocations per audit record (request thread): {per_record:.3}");
    }
    log.close();
    eprintln!(
        "audit/record: {} records written, {} dropped",
        log.written(),
        log.dropped()
    );
}

/// Startup with the 100,000-assignment account from a file: `Authorizer::load` to ready, as
/// `scopegate serve --snapshots FILE` does before it reports SERVING.
fn startup_with_a_big_account() {
    let catalog = scopegate::rbac::Catalog::embedded().unwrap();
    let shape = support::Shape::default();
    let snapshot = support::generate(&shape, &catalog);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.json");
    std::fs::write(&file, serde_json::to_string(&snapshot).unwrap()).unwrap();
    let bytes = std::fs::metadata(&file).unwrap().len();
    for run in 0..3 {
        let started = std::time::Instant::now();
        let state = Authorizer::load(scopegate::accounts::SnapshotSource::Path(file.clone()), None).unwrap();
        assert!(state.is_ready());
        eprintln!(
            "startup to ready, {} role assignments from a {:.1} MB file, run {run}: {:.0} ms",
            shape.role_assignments,
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn main() {
    if std::env::var_os("SCOPEGATE_BENCH_STARTUP").is_some() {
        startup_with_a_big_account();
    }
    let mut criterion = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
