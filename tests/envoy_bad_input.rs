//! Hostile and malformed input against the real ext_authz gRPC server on `127.0.0.1:0`: every
//! request gets docs/wire.md's documented answer (never a panic or a transport error), the server still
//! allows a normal request afterwards, and gRPC health follows the snapshot folder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::Request as AttrRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use scopegate::accounts::SnapshotSource;
use scopegate::authz::Authorizer;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::common;

use common::{ALICE, EXECUTE, Server, allowed, check};

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    common::request(method, path, headers, None)
}

fn with_key(method: &str, path: &str, token: &str) -> CheckRequest {
    request(method, path, &[("harness-account", "acme"), ("x-api-key", token)])
}

/// `(grpc code, http status, body code)` of a denial; panics on an allow.
fn denial(resp: &CheckResponse) -> (i32, i32, String) {
    let code = resp.status.as_ref().unwrap().code;
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("not a denial: {resp:?}");
    };
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert!(body["decisionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        body["reason"].as_str().is_some_and(|s| !s.is_empty()),
        "no reason code: {body}"
    );
    assert!(
        !denied.body.contains("Secret0"),
        "body leaks a secret: {}",
        denied.body
    );
    (
        code,
        denied.status.as_ref().unwrap().code,
        body["code"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn expect(
    client: &mut AuthorizationClient<Channel>,
    what: &str,
    req: CheckRequest,
    want: (i32, i32, &str),
) {
    let resp = check(client, req).await;
    let (grpc, http, code) = denial(&resp);
    assert_eq!((grpc, http, code.as_str()), want, "{what}");
}

const INVALID_REQUEST: (i32, i32, &str) = (3, 400, "INVALID_REQUEST");
const INVALID_CREDENTIALS: (i32, i32, &str) = (16, 401, "INVALID_CREDENTIALS");
const NO_ROUTE: (i32, i32, &str) = (7, 403, "NO_ROUTE");

async fn demo() -> (Server, AuthorizationClient<Channel>) {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let client = server.client().await;
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_request_attributes_are_malformed_requests() {
    let (server, mut client) = demo().await;
    expect(
        &mut client,
        "no attributes",
        CheckRequest { attributes: None },
        INVALID_REQUEST,
    )
    .await;
    let no_request = CheckRequest {
        attributes: Some(AttributeContext::default()),
    };
    expect(&mut client, "no request", no_request, INVALID_REQUEST).await;
    let no_http = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest::default()),
            ..Default::default()
        }),
    };
    expect(&mut client, "no http", no_http, INVALID_REQUEST).await;
    expect(
        &mut client,
        "empty method and path",
        request("", "", &[]),
        INVALID_REQUEST,
    )
    .await;
    expect(
        &mut client,
        "empty path",
        with_key("POST", "", ALICE),
        INVALID_REQUEST,
    )
    .await;
    assert!(allowed(
        &check(&mut client, with_key("POST", EXECUTE, ALICE)).await
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_credentials_are_401_invalid_credentials() {
    let (server, mut client) = demo().await;
    let twice = format!("{ALICE}, {ALICE}");
    let huge = format!("pat.acme.alicetok01.{}", "a".repeat(64 * 1024));
    let cases: Vec<(&str, String)> = vec![
        ("comma-joined repeated header", "a, b".to_owned()),
        ("the valid token twice, comma-joined", twice),
        ("64 KiB token", huge),
        ("64 KiB of junk", "x".repeat(64 * 1024)),
        ("3 segments", "pat.acme.alicetok01".to_owned()),
        ("5 segments", format!("{ALICE}.extra")),
        ("2 segments", "pat.acme".to_owned()),
        ("empty type", ".acme.alicetok01.AliceDemoSecret01".to_owned()),
        ("empty account", "pat..alicetok01.AliceDemoSecret01".to_owned()),
        ("empty id", "pat.acme..AliceDemoSecret01".to_owned()),
        ("empty secret", "pat.acme.alicetok01.".to_owned()),
        ("only dots", "...".to_owned()),
        (
            "non-ascii secret",
            "pat.acme.alicetok01.AliceDémoSecret01".to_owned(),
        ),
        ("non-ascii id", "pat.acme.alicetök01.AliceDemoSecret01".to_owned()),
        (
            "control character",
            "pat.acme.alicetok01.Alice\u{1}DemoSecret01".to_owned(),
        ),
        ("emoji", "\u{1f511}".to_owned()),
    ];
    for (what, token) in &cases {
        expect(
            &mut client,
            what,
            with_key("POST", EXECUTE, token),
            INVALID_CREDENTIALS,
        )
        .await;
    }
    let bearer = request(
        "POST",
        EXECUTE,
        &[
            ("harness-account", "acme"),
            ("authorization", "Bearer a, Bearer b"),
        ],
    );
    expect(
        &mut client,
        "comma-joined authorization",
        bearer,
        INVALID_CREDENTIALS,
    )
    .await;
    // An empty credential is missing or invalid; either way a 401.
    let (grpc, http, code) = denial(&check(&mut client, with_key("POST", EXECUTE, "")).await);
    assert_eq!((grpc, http), (16, 401), "empty x-api-key: {code}");
    assert!(
        code == "MISSING_CREDENTIALS" || code == "INVALID_CREDENTIALS",
        "{code}"
    );

    // A huge header that is not a credential is still answered normally.
    let big = "v".repeat(64 * 1024);
    let req = request(
        "POST",
        EXECUTE,
        &[("harness-account", "acme"), ("x-api-key", ALICE), ("x-big", &big)],
    );
    assert!(allowed(&check(&mut client, req).await), "64 KiB unrelated header");
    assert!(allowed(
        &check(&mut client, with_key("POST", EXECUTE, ALICE)).await
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_and_method_case() {
    let (server, mut client) = demo().await;
    let bad = [
        (
            "encoded dot-dot",
            "/v1/orgs/eng/projects/payments/pipelines/%2e%2e/execute",
        ),
        (
            "upper-case encoded dot-dot",
            "/v1/orgs/eng/projects/payments/pipelines/%2E%2E/execute",
        ),
        (
            "literal dot-dot",
            "/v1/orgs/eng/projects/payments/pipelines/../execute",
        ),
        (
            "encoded slash",
            "/v1/orgs/eng/projects/payments/pipelines/deploy%2Fprod/execute",
        ),
        (
            "lower-case encoded slash",
            "/v1/orgs/eng/projects/payments/pipelines/deploy%2fprod/execute",
        ),
    ];
    for (what, path) in bad {
        expect(&mut client, what, with_key("POST", path, ALICE), INVALID_REQUEST).await;
    }
    let routes = [
        (
            "doubled slash",
            "/v1/orgs/eng//projects/payments/pipelines/deploy_prod/execute".to_owned(),
        ),
        ("trailing slash", format!("{EXECUTE}/")),
    ];
    for (what, path) in &routes {
        let resp = check(&mut client, with_key("POST", path, ALICE)).await;
        assert!(allowed(&resp), "{what}: {resp:?}");
    }
    expect(
        &mut client,
        "lower-case method",
        with_key("post", EXECUTE, ALICE),
        NO_ROUTE,
    )
    .await;
    let get = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod";
    expect(
        &mut client,
        "lower-case get",
        with_key("get", get, ALICE),
        NO_ROUTE,
    )
    .await;
    assert!(allowed(&check(&mut client, with_key("GET", get, ALICE)).await));

    // NG route: the org named twice with different values is ambiguous.
    let ng = "/pipeline/api/pipelines/v2/deploy_prod?accountIdentifier=acme&projectIdentifier=payments";
    let conflicting = format!("{ng}&orgIdentifier=eng&orgIdentifier=ops");
    expect(
        &mut client,
        "repeated orgIdentifier",
        with_key("GET", &conflicting, ALICE),
        INVALID_REQUEST,
    )
    .await;
    let single = format!("{ng}&orgIdentifier=eng");
    assert!(
        allowed(&check(&mut client, with_key("GET", &single, ALICE)).await),
        "{single}"
    );

    // Still serving normally afterwards.
    assert!(allowed(
        &check(&mut client, with_key("POST", EXECUTE, ALICE)).await
    ));
    server.stop().await;
}

fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("scopegate-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_until_a_snapshot_appears() {
    let dir = temp_dir("health");
    let state = Arc::new(Authorizer::load(SnapshotSource::Path(dir.clone()), None).unwrap());
    assert!(!state.is_ready());
    let server = Server::start(state).await;
    assert_eq!(server.health().await, ServingStatus::NotServing as i32);
    let mut client = server.client().await;
    expect(
        &mut client,
        "no snapshot yet",
        with_key("POST", EXECUTE, ALICE),
        (14, 503, "SNAPSHOT_UNAVAILABLE"),
    )
    .await;

    std::fs::write(dir.join("acme.yaml"), scopegate::accounts::DEMO_SNAPSHOT_YAML).unwrap();
    let mut serving = false;
    for _ in 0..100 {
        if server.health().await == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(serving, "health did not turn SERVING within 10 s");
    assert!(allowed(
        &check(&mut client, with_key("POST", EXECUTE, ALICE)).await
    ));
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
