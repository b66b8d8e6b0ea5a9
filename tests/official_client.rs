//! `POST /authz/api/acl` driven by Harness's official Python client (`harness-open-api`,
//! `AccessControlListApi.get_access_control_list`) against the admin listener on the embedded demo
//! account: the client's own models must read every answer (the `ResponseDTOAccessCheckResponse`
//! envelope, `AuthzPrincipal`, `AccessControl`, `ResourceScope`) and every refusal (its
//! `ApiException`, and the body as its `Failure` model). The script
//! (`tests/python/acl_client.py`) prints what the client saw; the assertions are here.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::http::HttpServer;
use crate::common::python;
use scopegate::authz::Authorizer;
use scopegate::http::HttpOptions;

const SCRIPT: &str = include_str!("python/acl_client.py");
const ALICE: &str = "pat.acme.alicetok01.AliceDemoSecret01";
const CI: &str = "sat.acme.citok01.CiBotDemoSecret01";

/// A check in the client's attribute names (`PermissionCheck(**check)`).
fn check(org: &str, project: &str, kind: &str, id: Option<&str>, permission: &str) -> Value {
    let mut check = json!({
        "resource_scope": {"account_identifier": "acme", "org_identifier": org, "project_identifier": project},
        "resource_type": kind,
        "permission": permission,
    });
    if let Some(id) = id {
        check["resource_identifier"] = id.into();
    }
    check
}

/// Runs every case through the client in one interpreter (the package takes seconds to import).
async fn through_the_client(server: &HttpServer, cases: Value) -> Value {
    let host = format!("http://{}", server.addr);
    let output = tokio::task::spawn_blocking(move || python::run(SCRIPT, &[&host, &cases.to_string()], &[]))
        .await
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the script printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn permitted(outcome: &Value) -> Vec<bool> {
    assert_eq!(outcome["ok"], true, "{outcome}");
    outcome["acl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["permitted"].as_bool().unwrap())
        .collect()
}

/// A refusal as the client reports it: `ApiException` with the status, a Harness `Failure` body
/// that the client's own `Failure` model reads, and Harness's `correlationId` = `decisionId`.
fn refusal<'a>(outcome: &'a Value, status: u16, code: &str) -> &'a Value {
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(outcome["exception"], "ApiException");
    assert_eq!(outcome["status"], status, "{outcome}");
    assert_eq!(outcome["content_type"], "application/json");
    let body = &outcome["body"];
    assert_eq!(body["status"], "ERROR");
    assert_eq!(body["code"], code, "{outcome}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(
        body["decisionId"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["correlationId"], body["decisionId"]);
    let failure = &outcome["failure"];
    assert_eq!(
        failure["status"], "ERROR",
        "the client's Failure model: {failure}"
    );
    assert_eq!(failure["code"], code, "the client's Failure model: {failure}");
    assert_eq!(failure["message"], body["message"]);
    assert_eq!(failure["correlation_id"], body["correlationId"]);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_official_client_reads_the_access_check() {
    let server = HttpServer::start(Arc::new(Authorizer::demo().unwrap()), HttpOptions::admin()).await;
    let checks = json!([
        check(
            "eng",
            "payments",
            "PIPELINE",
            Some("deploy_prod"),
            "core_pipeline_execute"
        ),
        check("ops", "sre", "PIPELINE", Some("p1"), "core_pipeline_execute"),
        check("eng", "payments", "PIPELINE", None, "core_pipeline_view"),
        check(
            "eng",
            "payments",
            "PIPELINE",
            Some("other"),
            "core_pipeline_execute"
        ),
    ]);
    // Asking about another user needs core_user_view in every scope asked: eng only, for alice.
    let in_eng = json!([
        check(
            "eng",
            "payments",
            "PIPELINE",
            Some("deploy_prod"),
            "core_pipeline_execute"
        ),
        check("eng", "payments", "PIPELINE", None, "core_pipeline_view"),
        check(
            "eng",
            "payments",
            "PIPELINE",
            Some("other"),
            "core_pipeline_execute"
        ),
    ]);
    let bob = json!({"identifier": "bob", "type": "USER", "scope_level": "account", "unique_id": "u-bob"});
    let cases = json!([
        {"name": "alice_self", "token": ALICE, "principal": null, "permissions": checks},
        {"name": "ci_self", "token": CI, "principal": null, "permissions": checks},
        {"name": "alice_about_bob", "token": ALICE, "principal": bob, "permissions": in_eng},
        {"name": "alice_about_bob_bare", "token": ALICE,
         "principal": {"identifier": "bob", "type": "USER"}, "permissions": in_eng},
        {"name": "ci_about_bob", "token": CI, "principal": bob, "permissions": in_eng},
        {"name": "group", "token": ALICE,
         "principal": {"identifier": "eng_leads", "type": "USER_GROUP"}, "permissions": checks},
        {"name": "wrong_secret", "token": "pat.acme.alicetok01.WrongSecret99", "principal": null,
         "permissions": checks},
        {"name": "no_token", "token": null, "principal": null, "permissions": checks},
    ]);
    let seen = through_the_client(&server, cases).await;

    // The caller's own permissions, parsed by the client's models.
    let alice = &seen["alice_self"];
    // alice administers eng, including child scopes: every pipeline of eng/payments, none of ops.
    assert_eq!(permitted(alice), [true, false, true, true]);
    assert_eq!(alice["type"], "ResponseDTOAccessCheckResponse");
    assert_eq!(alice["data_type"], "AccessCheckResponse");
    assert_eq!(alice["status"], "SUCCESS");
    assert!(
        alice["correlation_id"].as_str().is_some_and(|c| !c.is_empty()),
        "{alice}"
    );
    assert_eq!(alice["meta_data"], Value::Null);
    assert_eq!(
        alice["principal"],
        json!({"identifier": "alice", "type": "USER", "scope_level": "account", "unique_id": null,
               "class": "AuthzPrincipal"})
    );
    let first = &alice["acl"][0];
    assert_eq!(first["class"], "AccessControl");
    assert_eq!(first["permission"], "core_pipeline_execute");
    assert_eq!(first["resource_type"], "PIPELINE");
    assert_eq!(first["resource_identifier"], "deploy_prod");
    assert_eq!(
        first["resource_scope"],
        json!({"account_identifier": "acme", "org_identifier": "eng", "project_identifier": "payments",
               "class": "ResourceScope"})
    );
    assert_eq!(alice["acl"][2]["resource_identifier"], Value::Null);
    assert_eq!(alice["acl"][1]["resource_scope"]["org_identifier"], "ops");

    // A service account lives in its org: the client reads its scope level too.
    let ci = &seen["ci_self"];
    assert_eq!(permitted(ci), [true, false, true, true]);
    assert_eq!(
        ci["principal"],
        json!({"identifier": "ci_bot", "type": "SERVICE_ACCOUNT", "scope_level": "organization",
               "unique_id": null, "class": "AuthzPrincipal"})
    );

    // Another principal, with core_user_view (alice administers eng): bob may run deploy_prod, by
    // identifier, and nothing type-wide;
    // the principal asked is echoed in the client's AuthzPrincipal.
    let about_bob = &seen["alice_about_bob"];
    assert_eq!(permitted(about_bob), [true, false, false]);
    assert_eq!(
        about_bob["principal"],
        json!({"identifier": "bob", "type": "USER", "scope_level": "account", "unique_id": "u-bob",
               "class": "AuthzPrincipal"})
    );
    let bare = &seen["alice_about_bob_bare"];
    assert_eq!(permitted(bare), [true, false, false]);
    assert_eq!(bare["principal"]["identifier"], "bob");
    assert_eq!(bare["principal"]["scope_level"], Value::Null);

    // Without core_user_view: the client raises ApiException with Harness's 403 body.
    let body = refusal(&seen["ci_about_bob"], 403, "NG_ACCESS_DENIED");
    assert_eq!(body["failedPermissionChecks"][0]["permission"], "core_user_view");
    assert_eq!(body["failedPermissionChecks"][0]["resourceType"], "USER");
    assert_eq!(body["failedPermissionChecks"][0]["resourceIdentifier"], "bob");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Missing permission core_user_view"),
        "{body}"
    );

    // The client's AuthzPrincipal allows USER_GROUP; scopegate answers a 400 naming the field.
    let group = &seen["group"];
    let body = refusal(group, 400, "INVALID_REQUEST");
    assert_eq!(body["errors"][0]["fieldId"], "principal");
    assert_eq!(
        group["failure"]["errors"],
        json!([{"field_id": "principal", "error": "principal: `type` must be USER or SERVICE_ACCOUNT"}])
    );

    // A wrong secret: 401 with the ApiKey challenge, never the secret.
    let wrong = &seen["wrong_secret"];
    refusal(wrong, 401, "INVALID_CREDENTIALS");
    assert_eq!(wrong["www_authenticate"], "ApiKey realm=\"scopegate\"");
    assert!(!wrong.to_string().contains("WrongSecret99"), "{wrong}");

    // No credential: 401 in Harness's shape. (Harness's client's `Failure` enum has no
    // MISSING_CREDENTIALS, so its model refuses that code; the status and body are what a caller reads.)
    let none = &seen["no_token"];
    assert_eq!(
        (&none["exception"], &none["status"]),
        (&json!("ApiException"), &json!(401)),
        "{none}"
    );
    assert_eq!(none["body"]["code"], "MISSING_CREDENTIALS");
    assert_eq!(none["body"]["correlationId"], none["body"]["decisionId"]);
    assert_eq!(none["www_authenticate"], "ApiKey realm=\"scopegate\"");
    server.stop().await;
}
