//! "Why was I denied?": every denial body, over gRPC and HTTP mode alike, names its stable reason
//! code; a Bearer challenge names it in `error_description`; an account unknown to the sidecar is
//! told apart from one not loaded; a proxy permission the catalog lacks is the operator's 500.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{CheckResponse, HttpResponse};
use scopegate::accounts::SnapshotSource;
use scopegate::authz::Authorizer;
use scopegate::http::HttpOptions;

use crate::common::http::{HttpServer, expect_denial, send};
use crate::common::{self, ALICE, EXECUTE, Server, allowed, check};

const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";
/// A well-formed token of an account the demo does not have.
const OTHER_ACCOUNT_TOKEN: &str = "pat.other.othertok01.OtherAccountSecret01";

/// A request's headers.
type Headers = &'static [(&'static str, &'static str)];
/// `(grpc code, http status, body code, reason)`.
type Expected = (i32, i32, &'static str, &'static str);

/// `(grpc code, http status, body)` of a denial; panics on an allow.
fn denial(resp: &CheckResponse) -> (i32, i32, serde_json::Value) {
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("not a denial: {resp:?}");
    };
    assert!(!denied.body.contains("Secret0"), "{}", denied.body);
    (
        resp.status.as_ref().unwrap().code,
        denied.status.as_ref().unwrap().code,
        serde_json::from_str(&denied.body).unwrap(),
    )
}

fn header<'a>(resp: &'a CheckResponse, name: &str) -> Option<&'a str> {
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        return None;
    };
    denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_denials_name_their_reason_code() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let mut client = server.client().await;
    let cases: [(Headers, Expected); 4] = [
        (
            &[("harness-account", "acme")],
            (16, 401, "MISSING_CREDENTIALS", "missing_credentials"),
        ),
        (
            &[
                ("harness-account", "acme"),
                ("x-api-key", "pat.acme.alicetok01.Wrong"),
            ],
            (16, 401, "INVALID_CREDENTIALS", "token_secret_mismatch"),
        ),
        (
            &[("harness-account", "acme"), ("x-api-key", CI_RO)],
            (7, 403, "NG_ACCESS_DENIED", "token_permission_subset"),
        ),
        (
            &[("x-api-key", OTHER_ACCOUNT_TOKEN)],
            (14, 503, "SNAPSHOT_UNAVAILABLE", "account_unknown"),
        ),
    ];
    for (headers, (grpc, http, code, reason)) in cases {
        let resp = check(&mut client, common::request("POST", EXECUTE, headers, None)).await;
        let (got_grpc, got_http, body) = denial(&resp);
        assert_eq!((got_grpc, got_http), (grpc, http), "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["reason"], reason, "{body}");
    }
    // the unknown account says so, in words
    let resp = check(
        &mut client,
        common::request("POST", EXECUTE, &[("x-api-key", OTHER_ACCOUNT_TOKEN)], None),
    )
    .await;
    let message = denial(&resp).2["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("unknown to this authorization sidecar"),
        "{message}"
    );
    assert_eq!(header(&resp, "www-authenticate"), None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_without_the_account_yet_is_unavailable_not_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(Authorizer::load(SnapshotSource::Path(dir.path().to_owned()), None).unwrap());
    let server = Server::start(state).await;
    let mut client = server.client().await;
    let req = common::request(
        "POST",
        EXECUTE,
        &[("harness-account", "acme"), ("x-api-key", ALICE)],
        None,
    );
    let (grpc, http, body) = denial(&check(&mut client, req).await);
    assert_eq!((grpc, http), (14, 503));
    assert_eq!(body["code"], "SNAPSHOT_UNAVAILABLE");
    assert_eq!(body["reason"], "snapshot_unavailable", "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_permission_outside_the_catalog_is_an_operator_error() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let mut client = server.client().await;
    let headers = [("harness-account", "acme"), ("x-api-key", ALICE)];
    for bad in ["core_pipeline_nonexistent", "not a permission!"] {
        let req = common::request("POST", EXECUTE, &headers, Some(bad));
        let resp = check(&mut client, req).await;
        let (grpc, http, body) = denial(&resp);
        assert_eq!((grpc, http), (13, 500), "{bad}: {body}");
        assert_eq!(body["code"], "CONFIGURATION_ERROR");
        assert_eq!(body["reason"], "operator_permission_unknown");
        assert!(
            !body.to_string().contains(bad),
            "the body quotes the permission: {body}"
        );
    }
    // a known permission override still decides
    let req = common::request("POST", EXECUTE, &headers, Some("core_pipeline_execute"));
    assert!(allowed(&check(&mut client, req).await));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_denials_name_their_reason_code() {
    let server = HttpServer::start(Arc::new(Authorizer::demo().unwrap()), HttpOptions::default()).await;
    let reply = send(server.addr, "POST", EXECUTE, &[("harness-account", "acme")], None).await;
    assert_eq!(
        expect_denial(&reply, 401, "MISSING_CREDENTIALS")["reason"],
        "missing_credentials"
    );
    let ro = [("harness-account", "acme"), ("x-api-key", CI_RO)];
    let reply = send(server.addr, "POST", EXECUTE, &ro, None).await;
    assert_eq!(
        expect_denial(&reply, 403, "NG_ACCESS_DENIED")["reason"],
        "token_permission_subset"
    );
    let other = [("x-api-key", OTHER_ACCOUNT_TOKEN)];
    let reply = send(server.addr, "POST", EXECUTE, &other, None).await;
    assert_eq!(
        expect_denial(&reply, 503, "SNAPSHOT_UNAVAILABLE")["reason"],
        "account_unknown"
    );
    let reply = send(server.addr, "POST", "/v1/../x", &ro, None).await;
    assert_eq!(
        expect_denial(&reply, 400, "INVALID_REQUEST")["reason"],
        "dot_segment"
    );
    server.stop().await;
}
