//! Read-your-writes at the proxy, end to end: a real `scopegate control-plane` process with its
//! management API, and in-process sidecars (HTTP mode, and Envoy's gRPC Check) streaming from it.
//! A write answers `x-scopegate-revision`; a Check demanding that revision (`x-scopegate-min-revision`,
//! or `context_extensions.min_revision`) is answered from it or newer, never from the stale
//! snapshot: a deleted assignment is denied at once, a re-created one allowed at once. A revision
//! the account never reaches is 503 `revision_not_reached` once the (small) bound passes; a
//! malformed demand is 400 `min_revision_invalid`. The batch access check takes the same demand.
//! Timing is never asserted.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HttpResponse};
use scopegate::accounts::SnapshotSource;
use scopegate::authn::api_key::{TokenKind, mint};
use scopegate::authz::{Authorizer, AuthorizerOptions};

use crate::common::control_plane::{Process, TempDir, demo, remote, write_atomic};
use crate::common::http::{self, HttpServer, expect_denial};
use crate::common::{ALICE, EXECUTE, Server, request};

const MIN_REVISION: &str = "x-scopegate-min-revision";
const ASSIGNMENT: &str = "/authz/api/roleassignments";
const SCOPE: &str = "accountIdentifier=acme&orgIdentifier=eng";

/// The demo account with an account-level admin service account whose token is `token`'s.
fn seed(secret_hash: &str) -> String {
    let yaml = demo("acme", 1, false)
        .replacen(
            "service_accounts:\n",
            "service_accounts:\n  - {identifier: admin}\n",
            1,
        )
        .replacen(
            "role_assignments:\n",
            "role_assignments:\n  - {identifier: ra_admin, scope: {}, principal: {type: SERVICE_ACCOUNT, identifier: admin}, role: _account_admin, resource_group: _all_resources_including_child_scopes}\n",
            1,
        )
        .replacen(
            "api_keys:\n",
            &format!(
                "api_keys:\n  - identifier: admin_key\n    parent: {{type: SERVICE_ACCOUNT, identifier: admin}}\n    tokens: [{{identifier: t, id: admintok, secret_hash: \"{secret_hash}\", valid_from: \"2020-01-01T00:00:00Z\", valid_to: \"2099-01-01T00:00:00Z\"}}]\n"
            ),
            1,
        );
    assert!(yaml.contains("admintok"));
    yaml
}

/// A control plane serving the seed, and the admin's token.
fn control_plane(tag: &str) -> (TempDir, Process, String) {
    let admin = mint("acme", TokenKind::Sat, Some("admintok")).unwrap();
    let dir = TempDir::new(tag);
    write_atomic(&dir.join("acme.yaml"), &seed(&admin.secret_hash));
    let cp = Process::control_plane(&dir.0, "127.0.0.1:0", &["--audit", "off"]);
    (dir, cp, admin.token)
}

/// A sidecar of `cp` that waits at most 200 ms for a demanded revision.
fn sidecar(cp: &Process) -> Arc<Authorizer> {
    let options = AuthorizerOptions {
        max_revision_wait: Duration::from_millis(200),
        ..AuthorizerOptions::default()
    };
    let source = SnapshotSource::ControlPlane(remote(&cp.url()));
    Arc::new(Authorizer::load_with(source, None, &options).unwrap())
}

/// A management write as the admin; the revision it produced.
async fn write(cp: &Process, admin: &str, method: &str, target: &str, body: Option<String>) -> u64 {
    let headers = [("x-api-key", admin), ("content-type", "application/json")];
    let reply = http::send(cp.management.unwrap(), method, target, &headers, body).await;
    assert_eq!(reply.status, 200, "{method} {target}: {}", reply.body);
    reply
        .header("x-scopegate-revision")
        .expect("a write answers its revision")
        .parse()
        .unwrap()
}

/// Deletes alice's grant (eng_leads → _organization_admin of eng); the revision it produced.
async fn revoke(cp: &Process, admin: &str) -> u64 {
    let target = format!("{ASSIGNMENT}/ra_eng_leads_admin?{SCOPE}");
    write(cp, admin, "DELETE", &target, None).await
}

/// Gives alice's grant back; the revision it produced.
async fn grant(cp: &Process, admin: &str) -> u64 {
    let body = serde_json::json!({
        "identifier": "ra_eng_leads_admin",
        "roleIdentifier": "_organization_admin",
        "resourceGroupIdentifier": "_all_resources_including_child_scopes",
        "principal": {"identifier": "eng_leads", "type": "USER_GROUP"},
    });
    write(
        cp,
        admin,
        "POST",
        &format!("{ASSIGNMENT}?{SCOPE}"),
        Some(body.to_string()),
    )
    .await
}

/// alice executing `deploy_prod` in HTTP mode, demanding `min_revision` (raw header values).
async fn alice_http(server: &HttpServer, min_revision: &[&str]) -> http::Reply {
    let mut headers = vec![("harness-account", "acme"), ("x-api-key", ALICE)];
    headers.extend(min_revision.iter().map(|value| (MIN_REVISION, *value)));
    http::send(server.addr, "POST", EXECUTE, &headers, None).await
}

/// alice's Check as Envoy sends it, demanding `extension` through `context_extensions`.
fn alice_grpc(header: Option<&str>, extension: Option<&str>) -> CheckRequest {
    let mut headers = vec![("harness-account", "acme"), ("x-api-key", ALICE)];
    headers.extend(header.map(|value| (MIN_REVISION, value)));
    let mut req = request("POST", EXECUTE, &headers, None);
    if let Some(value) = extension {
        let attributes = req.attributes.as_mut().unwrap();
        attributes
            .context_extensions
            .insert("min_revision".to_owned(), value.to_owned());
    }
    req
}

/// The HTTP status, the gRPC status and the denial's reason code (allowed: none) of an answer.
fn answer(resp: &CheckResponse) -> (i32, i32, Option<String>) {
    let grpc = resp.status.as_ref().map_or(-1, |s| s.code);
    match &resp.http_response {
        Some(HttpResponse::OkResponse(_)) => (200, grpc, None),
        Some(HttpResponse::DeniedResponse(denied)) => {
            let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
            let status = denied.status.as_ref().map_or(0, |s| s.code);
            (status, grpc, body["reason"].as_str().map(str::to_owned))
        }
        other => panic!("no http response: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_demanding_a_writes_revision_is_answered_from_it_over_http() {
    let (_dir, cp, admin) = control_plane("ryw-http");
    let state = sidecar(&cp);
    let server = HttpServer::start(Arc::clone(&state), Default::default()).await;
    // the first Check loads the account (revision 1); demanding what it holds answers at once
    let reply = alice_http(&server, &["1"]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // the demand is scopegate's header: the upstream is told to drop it like any other
    let removed = reply.header("x-envoy-auth-headers-to-remove").unwrap_or_default();
    assert!(removed.contains(MIN_REVISION), "{removed}");

    // each write's own revision, demanded at once: the new decision, never the stale one
    for _ in 0..3 {
        let revoked = revoke(&cp, &admin).await;
        let reply = alice_http(&server, &[&revoked.to_string()]).await;
        let body = expect_denial(&reply, 403, "NG_ACCESS_DENIED");
        assert_eq!(body["reason"], "no_matching_grant", "{body}");
        let granted = grant(&cp, &admin).await;
        assert!(granted > revoked);
        let reply = alice_http(&server, &[&granted.to_string()]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    // a revision the account never reaches: 503 once the bound passes
    let reply = alice_http(&server, &["1000000"]).await;
    let body = expect_denial(&reply, 503, "SNAPSHOT_UNAVAILABLE");
    assert_eq!(body["reason"], "revision_not_reached", "{body}");

    // a demand that is not one decimal revision: 400, whatever else the request is
    for bad in [
        &["soon"][..],
        &["-1"],
        &["1", "2"],
        &["99999999999999999999999"],
        &[""],
    ] {
        let reply = alice_http(&server, bad).await;
        let body = expect_denial(&reply, 400, "INVALID_REQUEST");
        assert_eq!(body["reason"], "min_revision_invalid", "{bad:?}: {body}");
    }
    // the same revision repeated is that revision
    let reply = alice_http(&server, &["1", "1"]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.stop().await;

    // the batch access check takes the same demand
    let acl = HttpServer::start(state, scopegate::http::HttpOptions::admin()).await;
    let ask = async |min_revision: &str| {
        let body = serde_json::json!({"permissions": [{
            "resourceScope": {"accountIdentifier": "acme", "orgIdentifier": "eng", "projectIdentifier": "payments"},
            "resourceType": "PIPELINE", "resourceIdentifier": "deploy_prod", "permission": "core_pipeline_execute"}]});
        let headers = [
            ("x-api-key", ALICE),
            ("content-type", "application/json"),
            (MIN_REVISION, min_revision),
        ];
        http::send(
            acl.addr,
            "POST",
            "/authz/api/acl",
            &headers,
            Some(body.to_string()),
        )
        .await
    };
    let revoked = revoke(&cp, &admin).await.to_string();
    let reply = ask(&revoked).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["data"]["accessControlList"][0]["permitted"], false);
    let reply = ask("1000000").await;
    let body = expect_denial(&reply, 503, "SNAPSHOT_UNAVAILABLE");
    assert_eq!(body["reason"], "revision_not_reached", "{body}");
    let reply = ask("later").await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["errors"][0]["fieldId"], MIN_REVISION);
    acl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_demanding_a_writes_revision_is_answered_from_it_over_grpc() {
    let (_dir, cp, admin) = control_plane("ryw-grpc");
    let server = Server::start(sidecar(&cp)).await;
    let mut client = server.client().await;
    let mut check = async |req: CheckRequest| answer(&client.check(req).await.unwrap().into_inner());
    // the first Check demanding a write's revision: the account is loaded, then held to it
    let revoked = revoke(&cp, &admin).await.to_string();
    let (status, _, reason) = check(alice_grpc(None, Some(&revoked))).await;
    assert_eq!((status, reason.as_deref()), (403, Some("no_matching_grant")));
    let granted = grant(&cp, &admin).await.to_string();
    // unavailable = 14, invalid argument = 3, ok = 0
    assert_eq!(check(alice_grpc(None, Some(&granted))).await, (200, 0, None));

    for _ in 0..3 {
        let revoked = revoke(&cp, &admin).await.to_string();
        let (status, _, reason) = check(alice_grpc(None, Some(&revoked))).await;
        assert_eq!((status, reason.as_deref()), (403, Some("no_matching_grant")));
        let granted = grant(&cp, &admin).await.to_string();
        assert_eq!(check(alice_grpc(Some(&granted), None)).await, (200, 0, None));
    }

    let behind = Some("revision_not_reached".to_owned());
    assert_eq!(
        check(alice_grpc(None, Some("1000000"))).await,
        (503, 14, behind.clone())
    );
    // the header and the extension are each a lower bound: the larger is demanded
    assert_eq!(
        check(alice_grpc(Some("1"), Some("1000000"))).await,
        (503, 14, behind)
    );
    // an empty extension is no demand, like an empty `permission`
    assert_eq!(check(alice_grpc(None, Some(""))).await, (200, 0, None));

    let invalid = Some("min_revision_invalid".to_owned());
    for (header, extension) in [(None, Some("x1")), (Some("5, 6"), None), (Some("1"), Some("1.5"))] {
        assert_eq!(
            check(alice_grpc(header, extension)).await,
            (400, 3, invalid.clone()),
            "{header:?} {extension:?}"
        );
    }

    // an allow drops the demand from the upstream request, like every other scopegate header
    let resp = client
        .check(alice_grpc(Some("1"), None))
        .await
        .unwrap()
        .into_inner();
    let Some(HttpResponse::OkResponse(ok)) = &resp.http_response else {
        panic!("not allowed: {resp:?}");
    };
    assert!(ok.headers_to_remove.iter().any(|h| h == MIN_REVISION), "{ok:?}");
    server.stop().await;
}

#[test]
fn the_configured_default_wait_is_the_engine_default() {
    // config cannot name the engine's constant (it imports nothing of the request path), so the
    // two defaults are held together here
    assert_eq!(
        scopegate::config::Config::default()
            .snapshot
            .max_revision_wait
            .get(),
        scopegate::authz::MAX_REVISION_WAIT
    );
    assert_eq!(
        AuthorizerOptions::default().max_revision_wait,
        scopegate::authz::MAX_REVISION_WAIT
    );
}
