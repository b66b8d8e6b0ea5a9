//! The real ext_authz gRPC server on `127.0.0.1:0`, called with an envoy-types tonic client:
//! allow, identity headers, forged headers, every denial of docs/wire.md's table, health and reload.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HeaderAppendAction, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use scopegate::accounts::SnapshotSource;
use scopegate::authz::Authorizer;
use tonic::transport::Channel;

const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";
const CI_OLD: &str = "sat.acme.citokold01.OldTokenSecret01";

use crate::common;

use common::{ALICE, EXECUTE, Server, allowed, check, request};

/// `(grpc code, http status, body json, denied headers)` of a denial.
fn denial(resp: &CheckResponse) -> (i32, i32, serde_json::Value, HashMap<String, String>) {
    let code = resp.status.as_ref().unwrap().code;
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("not a denial: {resp:?}");
    };
    let headers = denied
        .headers
        .iter()
        .map(|h| {
            let h = h.header.as_ref().unwrap();
            (h.key.clone(), h.value.clone())
        })
        .collect();
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(headers_get(&headers, "content-type"), "application/json");
    assert!(body["decisionId"].as_str().is_some_and(|s| !s.is_empty()));
    (code, denied.status.as_ref().unwrap().code, body, headers)
}

fn headers_get<'a>(headers: &'a HashMap<String, String>, key: &str) -> &'a str {
    headers.get(key).map_or("", String::as_str)
}

async fn expect_denial(
    client: &mut AuthorizationClient<Channel>,
    req: CheckRequest,
    grpc: i32,
    http: i32,
    body_code: &str,
) -> serde_json::Value {
    let resp = check(client, req).await;
    let (code, status, body, headers) = denial(&resp);
    assert_eq!(
        (code, status, body["code"].as_str().unwrap()),
        (grpc, http, body_code),
        "{body}"
    );
    if http == 401 {
        assert_eq!(
            headers_get(&headers, "www-authenticate"),
            "ApiKey realm=\"scopegate\""
        );
    }
    let text = body.to_string();
    assert!(!text.contains("Secret0"), "body leaks a secret: {text}");
    body
}

fn execute(token: &str) -> CheckRequest {
    request(
        "POST",
        EXECUTE,
        &[("harness-account", "acme"), ("x-api-key", token)],
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_allows_and_denies_per_wire_table() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let mut client = server.client().await;

    // Allow, with identity headers overwriting a forged one, and the forged extras removed.
    let resp = check(
        &mut client,
        request(
            "POST",
            EXECUTE,
            &[
                ("harness-account", "acme"),
                ("x-api-key", ALICE),
                ("x-scopegate-principal", "USER:mallory"),
                ("x-scopegate-role", "admin"),
            ],
            None,
        ),
    )
    .await;
    assert!(allowed(&resp), "{resp:?}");
    let Some(HttpResponse::OkResponse(ok)) = &resp.http_response else {
        unreachable!()
    };
    let set: HashMap<&str, (&str, i32)> = ok
        .headers
        .iter()
        .map(|h| {
            let v = h.header.as_ref().unwrap();
            (v.key.as_str(), (v.value.as_str(), h.append_action))
        })
        .collect();
    let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
    assert_eq!(set["x-scopegate-principal"], ("USER:alice", overwrite));
    assert_eq!(set["x-scopegate-account"], ("acme", overwrite));
    assert_eq!(set["x-scopegate-decision-id"].1, overwrite);
    assert!(ok.headers_to_remove.contains(&"x-scopegate-role".to_owned()));
    let meta = &resp.dynamic_metadata.as_ref().unwrap().fields;
    assert!(
        meta.contains_key("principal") && meta.contains_key("permission") && meta.contains_key("decision_id")
    );

    // Authorization: Bearer works too; the second call hits the token cache.
    for _ in 0..2 {
        let resp = check(
            &mut client,
            request(
                "POST",
                EXECUTE,
                &[
                    ("harness-account", "acme"),
                    ("authorization", &format!("Bearer {ALICE}")),
                ],
                None,
            ),
        )
        .await;
        assert!(allowed(&resp));
    }

    // Public route: no credential needed; forged identity still removed.
    let resp = check(
        &mut client,
        request("GET", "/health", &[("x-scopegate-principal", "USER:x")], None),
    )
    .await;
    let Some(HttpResponse::OkResponse(ok)) = &resp.http_response else {
        panic!("{resp:?}")
    };
    assert!(ok.headers_to_remove.contains(&"x-scopegate-principal".to_owned()));

    // 403 NG_ACCESS_DENIED: the read-only CI token executing.
    let body = expect_denial(&mut client, execute(CI_RO), 7, 403, "NG_ACCESS_DENIED").await;
    let failed = &body["failedPermissionChecks"][0];
    assert_eq!(failed["permission"], "core_pipeline_execute");
    assert_eq!(failed["resourceType"], "PIPELINE");
    assert_eq!(failed["resourceIdentifier"], "deploy_prod");
    assert_eq!(failed["resourceScope"]["accountIdentifier"], "acme");
    assert_eq!(failed["resourceScope"]["orgIdentifier"], "eng");
    assert_eq!(failed["resourceScope"]["projectIdentifier"], "payments");

    // 401s.
    let missing = request("POST", EXECUTE, &[("harness-account", "acme")], None);
    expect_denial(&mut client, missing, 16, 401, "MISSING_CREDENTIALS").await;
    for garbage in [
        "pat.acme.only3",
        "pat.acme.al\u{e9}ce.x.y",
        "pat.acme.alicetok01.Al\u{ee}ceSecret",
        "not-a-token",
    ] {
        expect_denial(&mut client, execute(garbage), 16, 401, "INVALID_CREDENTIALS").await;
    }
    expect_denial(
        &mut client,
        execute("pat.acme.alicetok01.WrongSecret99"),
        16,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    expect_denial(&mut client, execute(CI_OLD), 16, 401, "INVALID_CREDENTIALS").await;
    let huge = format!("pat.acme.alicetok01.{}", "a".repeat(5000));
    expect_denial(&mut client, execute(&huge), 16, 401, "INVALID_CREDENTIALS").await;

    // 400, 403 NO_ROUTE, 503.
    let dots = "/v1/orgs/eng/projects/payments/pipelines/%2e%2e/execute";
    let req = request(
        "POST",
        dots,
        &[("harness-account", "acme"), ("x-api-key", ALICE)],
        None,
    );
    expect_denial(&mut client, req, 3, 400, "INVALID_REQUEST").await;
    let req = request(
        "GET",
        "/no/such/route",
        &[("harness-account", "acme"), ("x-api-key", ALICE)],
        None,
    );
    expect_denial(&mut client, req, 7, 403, "NO_ROUTE").await;
    let req = request(
        "POST",
        EXECUTE,
        &[
            ("harness-account", "globex"),
            ("x-api-key", "pat.globex.tok01.Secret01"),
        ],
        None,
    );
    expect_denial(&mut client, req, 14, 503, "SNAPSHOT_UNAVAILABLE").await;

    // Health.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    server.stop().await;
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "scopegate-{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let dir = PathBuf::from(dir.to_string_lossy().replace([' ', ':', '{', '}', ','], "_"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_flips_the_decision_and_rejects_an_invalid_file() {
    let dir = temp_dir("reload");
    let file = dir.join("acme.yaml");
    let demo = scopegate::accounts::DEMO_SNAPSHOT_YAML;
    std::fs::write(&file, demo).unwrap();
    let state = Arc::new(Authorizer::load(SnapshotSource::Path(dir.clone()), None).unwrap());
    let server = Server::start(Arc::clone(&state)).await;
    let mut client = server.client().await;
    assert!(allowed(&check(&mut client, execute(ALICE)).await));

    // Revoke alice's admin assignment (disable it) and bump the version.
    let anchor = "    resource_group: _all_resources_including_child_scopes\n  - identifier: ra_bob_runner";
    assert!(demo.contains(anchor));
    let revoked = demo.replace("version: 1\n", "version: 2\n").replace(
        anchor,
        &anchor.replace("\n  - identifier", "\n    disabled: true\n  - identifier"),
    );
    std::fs::write(&file, &revoked).unwrap();
    let mut flipped = false;
    for _ in 0..100 {
        if !allowed(&check(&mut client, execute(ALICE)).await) {
            flipped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flipped, "the decision did not flip within 10 s");
    expect_denial(&mut client, execute(ALICE), 7, 403, "NG_ACCESS_DENIED").await;

    // An invalid file keeps version 2.
    std::fs::write(&file, "account: acme\nversion: [not, a, number\n").unwrap();
    let polled = Arc::clone(&state);
    tokio::task::spawn_blocking(move || polled.accounts().reload())
        .await
        .unwrap();
    assert_eq!(state.accounts().account("acme").unwrap().version(), 2);
    expect_denial(&mut client, execute(ALICE), 7, 403, "NG_ACCESS_DENIED").await;
    assert!(allowed(
        &check(&mut client, execute("sat.acme.citok01.CiBotDemoSecret01")).await
    ));

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// carol's token is stored as a bcrypt hash (as imported from Harness): the first check verifies it
/// (off the async workers' hot loop), the next ones hit the token cache; a wrong secret stays a 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcrypt_tokens_verify_once_and_then_come_from_the_cache() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let mut client = server.client().await;
    let trigger = |token: &str| {
        request(
            "POST",
            "/v1/orgs/ops/projects/sre/ai-sre/runbooks/restart_api/trigger",
            &[("harness-account", "acme"), ("x-api-key", token)],
            None,
        )
    };
    for _ in 0..3 {
        let resp = check(&mut client, trigger("pat.acme.caroltok01.CarolDemoSecret01")).await;
        assert!(allowed(&resp), "{resp:?}");
    }
    let resp = check(&mut client, trigger("pat.acme.caroltok01.CarolDemoSecret02")).await;
    let (grpc, http, body, _) = denial(&resp);
    assert_eq!((grpc, http), (16, 401));
    assert_eq!(body["code"], "INVALID_CREDENTIALS");
    server.stop().await;
}
