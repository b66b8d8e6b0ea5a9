#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `POST /authz/api/acl` on the HTTP listener: a mixed batch answered in order, questions about
//! another principal, and bad requests refused with a precise error.

use crate::common::http;

use std::sync::Arc;

use http::{HttpServer, Reply, expect_denial, send};
use scopegate::authz::Authorizer;
use scopegate::http::{HttpOptions, HttpSource};
use serde_json::json;

const ALICE: &str = "pat.acme.alicetok01.AliceDemoSecret01";
const CI: &str = "sat.acme.citok01.CiBotDemoSecret01";
const CI_RO: &str = "sat.acme.citokro01.CiBotReadOnlySecret01";

async fn demo(options: HttpOptions) -> HttpServer {
    HttpServer::start(Arc::new(Authorizer::demo().unwrap()), options).await
}

pub(crate) fn entry(
    org: Option<&str>,
    project: Option<&str>,
    kind: &str,
    id: Option<&str>,
    perm: &str,
) -> serde_json::Value {
    let mut scope = json!({"accountIdentifier": "acme"});
    if let Some(org) = org {
        scope["orgIdentifier"] = org.into();
    }
    if let Some(project) = project {
        scope["projectIdentifier"] = project.into();
    }
    let mut entry = json!({"resourceScope": scope, "resourceType": kind, "permission": perm});
    if let Some(id) = id {
        entry["resourceIdentifier"] = id.into();
    }
    entry
}

pub(crate) async fn acl(server: &HttpServer, token: Option<&str>, body: String) -> Reply {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(token) = token {
        headers.push(("x-api-key", token));
    }
    send(server.addr, "POST", "/authz/api/acl", &headers, Some(body)).await
}

fn permitted(reply: &Reply) -> Vec<bool> {
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["status"], "SUCCESS");
    body["data"]["accessControlList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["permitted"].as_bool().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_answers_a_mixed_batch_in_order() {
    let server = demo(HttpOptions::with_source(HttpSource::Nginx)).await;
    let eng_pay = (Some("eng"), Some("payments"));
    let mut other_account = entry(
        eng_pay.0,
        eng_pay.1,
        "PIPELINE",
        Some("deploy_prod"),
        "core_pipeline_view",
    );
    other_account["resourceScope"]["accountIdentifier"] = "globex".into();
    let permissions = json!([
        entry(
            eng_pay.0,
            eng_pay.1,
            "PIPELINE",
            Some("deploy_prod"),
            "core_pipeline_execute"
        ),
        entry(
            Some("ops"),
            Some("sre"),
            "PIPELINE",
            Some("p1"),
            "core_pipeline_execute"
        ),
        entry(eng_pay.0, eng_pay.1, "PIPELINE", None, "core_pipeline_view"),
        entry(
            eng_pay.0,
            eng_pay.1,
            "PIPELINE",
            Some("x"),
            "core_no_such_permission"
        ),
        entry(
            eng_pay.0,
            eng_pay.1,
            "NO_SUCH_TYPE",
            Some("x"),
            "core_pipeline_view"
        ),
        entry(
            Some("eng"),
            Some("no_such_project"),
            "PIPELINE",
            Some("x"),
            "core_pipeline_view"
        ),
        other_account,
    ]);
    let reply = acl(
        &server,
        Some(ALICE),
        json!({"permissions": permissions}).to_string(),
    )
    .await;
    assert_eq!(permitted(&reply), [true, false, true, false, false, false, false]);
    let body = reply.json();
    assert_eq!(
        body["data"]["principal"],
        json!({
            "identifier": "alice", "type": "USER", "scopeLevel": "account", "uniqueId": null,
            "principalIdentifier": "alice", "principalType": "USER",
        })
    );
    assert_eq!(body["metaData"], json!(null));
    assert!(!body["correlationId"].as_str().unwrap().is_empty(), "{body}");
    let first = &body["data"]["accessControlList"][0];
    assert_eq!(first["permission"], "core_pipeline_execute");
    assert_eq!(first["resourceType"], "PIPELINE");
    assert_eq!(first["resourceIdentifier"], "deploy_prod");
    assert_eq!(first["resourceScope"]["projectIdentifier"], "payments");
    assert_eq!(
        body["data"]["accessControlList"][2]["resourceIdentifier"],
        json!(null)
    );

    // The token's permission subset bounds what the caller is told about itself.
    let ro = json!({"permissions": [
        entry(eng_pay.0, eng_pay.1, "PIPELINE", Some("deploy_prod"), "core_pipeline_execute"),
        entry(eng_pay.0, eng_pay.1, "PIPELINE", Some("deploy_prod"), "core_pipeline_view"),
    ]});
    assert_eq!(
        permitted(&acl(&server, Some(CI_RO), ro.to_string()).await),
        [false, true]
    );
    assert_eq!(
        permitted(&acl(&server, Some(CI), ro.to_string()).await),
        [true, true]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_about_another_principal_needs_its_view_permission() {
    let server = demo(HttpOptions::admin()).await;
    let checks = json!([
        entry(
            Some("eng"),
            Some("payments"),
            "PIPELINE",
            Some("deploy_prod"),
            "core_pipeline_execute"
        ),
        entry(
            Some("eng"),
            Some("payments"),
            "PIPELINE",
            Some("other"),
            "core_pipeline_execute"
        ),
    ]);
    let about_bob = json!({
        "principal": {"principalIdentifier": "bob", "principalType": "USER"},
        "permissions": checks,
    });
    // alice administers eng, so she may view users there: bob may run deploy_prod only.
    let reply = acl(&server, Some(ALICE), about_bob.to_string()).await;
    assert_eq!(permitted(&reply), [true, false]);
    assert_eq!(reply.json()["data"]["principal"]["principalIdentifier"], "bob");

    // ci_bot has no core_user_view.
    let reply = acl(&server, Some(CI), about_bob.to_string()).await;
    let body = expect_denial(&reply, 403, "NG_ACCESS_DENIED");
    assert_eq!(body["failedPermissionChecks"][0]["permission"], "core_user_view");
    assert_eq!(body["failedPermissionChecks"][0]["resourceIdentifier"], "bob");

    // core_serviceaccount_view is account-level; alice administers only eng.
    let about_ci = json!({
        "principal": {"principalIdentifier": "ci_bot", "principalType": "SERVICE_ACCOUNT"},
        "permissions": checks,
    });
    let reply = acl(&server, Some(ALICE), about_ci.to_string()).await;
    let body = expect_denial(&reply, 403, "NG_ACCESS_DENIED");
    assert_eq!(
        body["failedPermissionChecks"][0]["permission"],
        "core_serviceaccount_view"
    );

    // Naming oneself needs nothing more.
    let about_self = json!({
        "principal": {"principalIdentifier": "ci_bot", "principalType": "SERVICE_ACCOUNT"},
        "permissions": checks,
    });
    assert_eq!(
        permitted(&acl(&server, Some(CI), about_self.to_string()).await),
        [true, true]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_refuses_bad_requests() {
    let server = demo(HttpOptions::with_source(HttpSource::Traefik)).await;
    let one = entry(Some("eng"), None, "PIPELINE", None, "core_pipeline_view");

    let many = json!({"permissions": vec![one.clone(); 10_001]});
    let reply = acl(&server, Some(ALICE), many.to_string()).await;
    let body = reply.json();
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(body["code"], "INVALID_REQUEST");
    assert!(body["message"].as_str().unwrap().contains("10001"), "{body}");
    let most = json!({"permissions": vec![one.clone(); 10_000]});
    assert_eq!(
        permitted(&acl(&server, Some(ALICE), most.to_string()).await).len(),
        10_000
    );

    for bad in ["{", "[]", r#"{"permissions": [{"permission": 3}]}"#, ""] {
        let reply = acl(&server, Some(ALICE), bad.to_owned()).await;
        assert_eq!(reply.status, 400, "{bad}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["code"], "INVALID_REQUEST");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("malformed access-check request"),
            "{body}"
        );
        assert_eq!(body["status"], "ERROR");
        assert_eq!(body["errors"][0]["fieldId"], "body");
        assert_eq!(body["correlationId"], body["decisionId"]);
    }
    // serde's message would quote the value; scopegate's does not.
    let quoted = r#"{"permissions": [{"permission": "pat.acme.alicetok01.AliceDemoSecret01"}]}"#;
    let reply = acl(&server, Some(ALICE), quoted.to_owned()).await;
    assert_eq!(reply.status, 400);
    assert!(!reply.body.contains("AliceDemoSecret01"), "{}", reply.body);
    let unknown_type = json!({
        "principal": {"principalIdentifier": "x", "principalType": "ROBOT"},
        "permissions": [one],
    });
    assert_eq!(
        acl(&server, Some(ALICE), unknown_type.to_string()).await.status,
        400
    );

    let ok = json!({"permissions": [one]}).to_string();
    expect_denial(&acl(&server, None, ok.clone()).await, 401, "MISSING_CREDENTIALS");
    let wrong = "pat.acme.alicetok01.WrongSecret99";
    expect_denial(&acl(&server, Some(wrong), ok).await, 401, "INVALID_CREDENTIALS");

    let huge = "x".repeat(scopegate::http::ACL_BODY_LIMIT + 1);
    assert_eq!(acl(&server, Some(ALICE), huge).await.status, 413);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_reads_both_principal_spellings() {
    let server = demo(HttpOptions::admin()).await;
    let checks = json!([entry(
        Some("eng"),
        Some("payments"),
        "PIPELINE",
        Some("deploy_prod"),
        "core_pipeline_execute"
    )]);
    // Harness's AuthzPrincipal, as its generated clients send it: echoed with both key sets.
    let official = json!({
        "principal": {"identifier": "bob", "type": "USER", "scopeLevel": "account", "uniqueId": "u-1"},
        "permissions": checks,
    });
    let reply = acl(&server, Some(ALICE), official.to_string()).await;
    assert_eq!(permitted(&reply), [true]);
    assert_eq!(
        reply.json()["data"]["principal"],
        json!({
            "identifier": "bob", "type": "USER", "scopeLevel": "account", "uniqueId": "u-1",
            "principalIdentifier": "bob", "principalType": "USER",
        })
    );
    // Both spellings agreeing is fine; disagreeing or missing is a 400 naming the field.
    let agree = json!({
        "principal": {"identifier": "bob", "type": "USER", "principalIdentifier": "bob"},
        "permissions": checks,
    });
    assert_eq!(
        permitted(&acl(&server, Some(ALICE), agree.to_string()).await),
        [true]
    );
    for (principal, message) in [
        (
            json!({"identifier": "bob", "type": "USER", "principalIdentifier": "carol"}),
            "principal: `identifier` and `principalIdentifier` disagree",
        ),
        (
            json!({"identifier": "bob", "type": "USER", "principalType": "SERVICE_ACCOUNT"}),
            "principal: `type` and `principalType` disagree",
        ),
        (json!({"identifier": "bob"}), "principal: `type` is missing"),
        (
            json!({"identifier": "bob", "type": "USER_GROUP"}),
            "principal: `type` must be USER or SERVICE_ACCOUNT",
        ),
    ] {
        let body = json!({"principal": principal, "permissions": checks});
        let reply = acl(&server, Some(ALICE), body.to_string()).await;
        assert_eq!(reply.status, 400, "{principal}: {reply:?}");
        let body = reply.json();
        assert_eq!(body["status"], "ERROR");
        assert_eq!(body["code"], "INVALID_REQUEST");
        assert_eq!(body["message"], message);
        assert_eq!(body["errors"][0]["fieldId"], "principal");
    }
    // A denial carries Harness's correlationId beside scopegate's decisionId.
    let reply = acl(&server, Some(CI), official.to_string()).await;
    let body = expect_denial(&reply, 403, "NG_ACCESS_DENIED");
    assert_eq!(body["correlationId"], body["decisionId"]);
    server.stop().await;
}
