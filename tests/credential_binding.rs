//! Security regressions of API-key authentication, through the real ext_authz server on
//! `127.0.0.1:0`: a verified token never authenticates in another account, for another token or
//! with another secret; a secret changed under the same snapshot version stops working at once; a
//! token's permission subset bounds it on authenticated-only routes too; a token of one account is
//! refused for another before anything is loaded; refused bcrypt secrets are not hashed again; and
//! service accounts of one identifier in different scopes get different identity headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{CheckResponse, HttpResponse};
use scopegate::accounts::SnapshotSource;
use scopegate::authz::Authorizer;
use sha2::{Digest, Sha256};

use crate::common;

use common::{Server, allowed, check, request};

fn sha(secret: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

/// An account whose user `owner` is account admin and holds one API token `token_id`.
fn account_yaml(account: &str, version: u64, token_id: &str, secret_hash: &str) -> String {
    format!(
        r#"account: {account}
version: {version}
users:
  - {{identifier: owner, email: owner@{account}.example}}
role_assignments:
  - identifier: ra_owner_admin
    scope: {{}}
    principal: {{type: USER, identifier: owner}}
    role: _account_admin
    resource_group: _all_resources_including_child_scopes
api_keys:
  - identifier: owner_key
    parent: {{type: USER, identifier: owner}}
    tokens:
      - identifier: owner_token
        id: {token_id}
        secret_hash: "{secret_hash}"
        valid_from: 2025-01-01T00:00:00Z
        valid_to: 2035-01-01T00:00:00Z
"#
    )
}

fn state_of(dir: &Path) -> Arc<Authorizer> {
    Arc::new(Authorizer::load(SnapshotSource::Path(dir.to_path_buf()), None).unwrap())
}

/// `GET /v1/me` (authenticated only) in `account` with `token`.
fn me(account: &str, token: &str) -> envoy_types::ext_authz::v3::pb::CheckRequest {
    request(
        "GET",
        "/v1/me",
        &[("harness-account", account), ("x-api-key", token)],
        None,
    )
}

fn status(resp: &CheckResponse) -> i32 {
    match &resp.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied.status.as_ref().map_or(0, |s| s.code),
        Some(HttpResponse::OkResponse(_)) => 200,
        other => panic!("no answer: {other:?}"),
    }
}

fn header<'a>(resp: &'a CheckResponse, name: &str) -> Option<&'a str> {
    let Some(HttpResponse::OkResponse(ok)) = &resp.http_response else {
        return None;
    };
    ok.headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_token_verified_in_one_account_is_not_accepted_in_another() {
    let dir = tempfile::tempdir().unwrap();
    // the same token id in two accounts at the same version, with different secrets
    std::fs::write(
        dir.path().join("acme.yaml"),
        account_yaml("acme", 1, "sharedtok01", &sha("AcmeSecret01")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other.yaml"),
        account_yaml("other", 1, "sharedtok01", &sha("OtherSecret01")),
    )
    .unwrap();
    let server = Server::start(state_of(dir.path())).await;
    let mut client = server.client().await;
    let legacy = "pat.sharedtok01.AcmeSecret01";
    let first = check(&mut client, me("acme", legacy)).await;
    assert!(allowed(&first), "{first:?}");
    let across = check(&mut client, me("other", legacy)).await;
    assert_eq!(
        status(&across),
        401,
        "acme's secret must not open other: {across:?}"
    );
    // and the rightful owner of other's token still gets in, cache or not
    let owner = check(&mut client, me("other", "pat.sharedtok01.OtherSecret01")).await;
    assert!(allowed(&owner), "{owner:?}");
    assert_eq!(
        status(&check(&mut client, me("acme", "pat.sharedtok01.OtherSecret01")).await),
        401
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_changed_without_a_new_version_stops_working_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, account_yaml("acme", 7, "rottok01", &sha("OldSecret01"))).unwrap();
    let state = state_of(dir.path());
    let server = Server::start(Arc::clone(&state)).await;
    let mut client = server.client().await;
    let old = "pat.acme.rottok01.OldSecret01";
    assert!(allowed(&check(&mut client, me("acme", old)).await));
    assert!(
        allowed(&check(&mut client, me("acme", old)).await),
        "served from the cache"
    );
    // the operator rotates the secret and republishes version 7 (a longer secret changes the
    // file's length, so the reload sees it whatever the clock's resolution)
    std::fs::write(
        &file,
        account_yaml("acme", 7, "rottok01", &sha("NewLongerSecret01")),
    )
    .unwrap();
    // reload now; the server's own poll may have got there first (then this finds nothing new):
    // either way the new file is published when the call returns, under the loader's lock
    let reloaded = Arc::clone(&state);
    tokio::task::spawn_blocking(move || reloaded.accounts().reload())
        .await
        .unwrap();
    assert_eq!(status(&check(&mut client, me("acme", old)).await), 401);
    let new = "pat.acme.rottok01.NewLongerSecret01";
    assert!(allowed(&check(&mut client, me("acme", new)).await));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_token_gets_nothing_its_subset_does_not_name_on_authenticated_routes() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let mut client = server.client().await;
    // the demo's read-only CI token (permissions: [core_pipeline_view])
    let view_only = "sat.acme.citokro01.CiBotReadOnlySecret01";
    let req = request(
        "POST",
        "/authz/api/roleassignments?accountIdentifier=acme",
        &[("x-api-key", view_only)],
        None,
    );
    let resp = check(&mut client, req).await;
    assert_eq!(status(&resp), 403, "{resp:?}");
    // the same token still does what its subset names
    let view = request(
        "GET",
        "/v1/orgs/eng/projects/payments/pipelines/deploy_prod",
        &[("harness-account", "acme"), ("x-api-key", view_only)],
        None,
    );
    let resp = check(&mut client, view).await;
    assert!(allowed(&resp), "{resp:?}");
    // and the unrestricted token of the same service account passes the authenticated route
    let full = request(
        "POST",
        "/authz/api/roleassignments?accountIdentifier=acme",
        &[("x-api-key", "sat.acme.citok01.CiBotDemoSecret01")],
        None,
    );
    assert!(allowed(&check(&mut client, full).await));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_one_account_used_for_another_is_refused_before_any_load() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let mut client = server.client().await;
    // `other` is loaded nowhere: a 401 for the token, not a 503 for the account
    let resp = check(&mut client, me("other", common::ALICE)).await;
    assert_eq!(status(&resp), 401, "{resp:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bcrypt_secret_is_hashed_once_not_per_request() {
    let state = Arc::new(Authorizer::demo().unwrap());
    let server = Server::start(Arc::clone(&state)).await;
    let mut client = server.client().await;
    // carol's demo token is bcrypt; a wrong secret for its public id, five times
    for _ in 0..5 {
        let resp = check(&mut client, me("acme", "pat.acme.caroltok01.NotCarolsSecret")).await;
        assert_eq!(status(&resp), 401);
    }
    let metrics = state.metrics_text();
    let bcrypt_checks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("scopegate_bcrypt_checks_total "))
        .unwrap_or_else(|| panic!("no bcrypt counter in\n{metrics}"));
    assert_eq!(bcrypt_checks.trim(), "1");
    // the right secret still works
    let resp = check(&mut client, me("acme", "pat.acme.caroltok01.CarolDemoSecret01")).await;
    assert!(allowed(&resp), "{resp:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_of_one_identifier_in_two_scopes_are_named_apart() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"account: acme
version: 1
organizations:
  - identifier: eng
    projects: [payments]
service_accounts:
  - {{identifier: bot, scope: {{org: eng}}}}
  - {{identifier: bot, scope: {{org: eng, project: payments}}}}
api_keys:
  - identifier: org_key
    parent: {{type: SERVICE_ACCOUNT, identifier: bot, scope: {{org: eng}}}}
    tokens:
      - {{identifier: t1, id: orgbot01, secret_hash: "{}", valid_from: 2025-01-01T00:00:00Z, valid_to: 2035-01-01T00:00:00Z}}
  - identifier: project_key
    parent: {{type: SERVICE_ACCOUNT, identifier: bot, scope: {{org: eng, project: payments}}}}
    tokens:
      - {{identifier: t2, id: projbot01, secret_hash: "{}", valid_from: 2025-01-01T00:00:00Z, valid_to: 2035-01-01T00:00:00Z}}
"#,
        sha("OrgBotSecret01"),
        sha("ProjBotSecret01")
    );
    std::fs::write(dir.path().join("acme.yaml"), yaml).unwrap();
    let server = Server::start(state_of(dir.path())).await;
    let mut client = server.client().await;
    let org = check(&mut client, me("acme", "sat.acme.orgbot01.OrgBotSecret01")).await;
    let project = check(&mut client, me("acme", "sat.acme.projbot01.ProjBotSecret01")).await;
    assert_eq!(
        header(&org, "x-scopegate-principal"),
        Some("SERVICE_ACCOUNT:eng/bot"),
        "{org:?}"
    );
    assert_eq!(
        header(&project, "x-scopegate-principal"),
        Some("SERVICE_ACCOUNT:eng/payments/bot"),
        "{project:?}"
    );
    server.stop().await;
}
