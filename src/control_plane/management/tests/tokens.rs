//! `PUT /ng/api/token/{identifier}` as `TokenApi.update_token` sends it: `validTo` changes, the
//! id and secret never do and are never answered, and bad input is refused with the document
//! unchanged.

use serde_json::{Value, json};

use super::{Harness, assert_failure};
use crate::rbac::model::{AccountSnapshot, ApiToken};

const A: &str = "accountIdentifier=acme";
/// The seed's viewer token: valid from 2020-01-01T00:00:00Z.
const VIEWER_FROM: i64 = 1_577_836_800_000;

fn viewer_token(document: &AccountSnapshot) -> ApiToken {
    let key = document
        .api_keys
        .iter()
        .find(|k| k.identifier == "viewer_key")
        .unwrap();
    key.tokens[0].clone()
}

/// The client's `Token` body for the viewer's token `t`, with `fields` over it.
fn token_body(fields: Value) -> Value {
    let mut body = json!({"identifier": "t", "name": "t", "apiKeyIdentifier": "viewer_key",
        "parentIdentifier": "viewer", "apiKeyType": "SERVICE_ACCOUNT", "accountIdentifier": "acme"});
    for (name, value) in fields.as_object().unwrap() {
        body[name] = value.clone();
    }
    body
}

#[tokio::test]
async fn an_update_changes_valid_to_and_echoes_the_name_never_the_secret() {
    let h = Harness::start().await;
    let before = viewer_token(&h.document());
    let path = format!("/ng/api/token/t?{A}");
    let later = 4_102_444_800_000_i64; // 2100-01-01
    let body = token_body(
        json!({"name": "Viewer CI", "description": "nightly", "tags": {"team": "ops"},
                                  "validFrom": 0, "validTo": later}),
    );
    let updated = h.admin("PUT", &path, Some(body)).await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.revision, Some(2));
    let data = &updated.body["data"];
    assert_eq!(
        (&data["identifier"], &data["name"], &data["description"]),
        (&json!("t"), &json!("Viewer CI"), &json!("nightly"))
    );
    assert_eq!(data["tags"], json!({"team": "ops"}));
    assert_eq!(data["validTo"], later);
    assert_eq!(data["validFrom"], VIEWER_FROM, "validFrom never changes");
    assert_eq!(data["valid"], true);
    let secret = h.viewer.rsplit('.').next().unwrap();
    assert!(!updated.body.to_string().contains(secret), "{updated:?}");
    assert!(!updated.body.to_string().contains("sha256"), "{updated:?}");
    let after = viewer_token(&h.document());
    assert_eq!((&after.id, &after.secret_hash), (&before.id, &before.secret_hash));
    assert_eq!(after.valid_from, before.valid_from);
    assert_eq!(after.valid_to, "2100-01-01T00:00:00Z");
    // the same token string still authenticates
    let as_viewer = h
        .raw("GET", &format!("/authz/api/roles?{A}"), Some(&h.viewer), None)
        .await;
    assert_eq!(as_viewer.status, 200, "{as_viewer:?}");
    let listed = h
        .admin(
            "GET",
            &format!("/ng/api/token/aggregate?{A}&apiKeyType=SERVICE_ACCOUNT&parentIdentifier=viewer"),
            None,
        )
        .await;
    let aggregate = &listed.body["data"]["content"][0];
    assert_eq!(aggregate["token"]["validTo"], later);
    // Harness's client requires the aggregates' times: a token's are its validFrom, others' 0
    assert_eq!(
        (
            &aggregate["createdAt"],
            &aggregate["lastModifiedAt"],
            &aggregate["expiryAt"]
        ),
        (&json!(VIEWER_FROM), &json!(VIEWER_FROM), &json!(later))
    );
    let keys = h
        .admin(
            "GET",
            &format!("/ng/api/apikey/aggregate?{A}&apiKeyType=SERVICE_ACCOUNT&parentIdentifier=viewer"),
            None,
        )
        .await;
    let sa = h
        .admin(
            "GET",
            &format!("/ng/api/serviceaccount/aggregate/viewer?{A}"),
            None,
        )
        .await;
    for aggregate in [&keys.body["data"]["content"][0], &sa.body["data"]] {
        assert_eq!(
            (&aggregate["createdAt"], &aggregate["lastModifiedAt"]),
            (&json!(0), &json!(0)),
            "{aggregate}"
        );
    }

    // a name alone: a revision, nothing stored changes
    let renamed = h
        .admin("PUT", &path, Some(token_body(json!({"name": "x"}))))
        .await;
    assert_eq!((renamed.status, renamed.revision), (200, Some(3)), "{renamed:?}");
    assert_eq!(viewer_token(&h.document()), after);

    // shortened to a second after validFrom: the token is expired at once
    let ended = h
        .admin(
            "PUT",
            &path,
            Some(token_body(json!({"validTo": VIEWER_FROM + 1000}))),
        )
        .await;
    assert_eq!(ended.body["data"]["valid"], false, "{ended:?}");
    let refused = h
        .raw("GET", &format!("/authz/api/roles?{A}"), Some(&h.viewer), None)
        .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let log = String::from_utf8(h.log.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains(
            "token updated: t of api key viewer_key (validTo 2100-01-01T00:00:00Z -> 2020-01-01T00:00:01Z)"
        ),
        "{log}"
    );
}

#[tokio::test]
async fn bad_token_updates_are_400s_or_404s_naming_the_problem_and_change_nothing() {
    let h = Harness::start().await;
    let before = h.document();
    let path = format!("/ng/api/token/t?{A}");
    let cases = [
        (
            path.clone(),
            token_body(json!({"identifier": "other"})),
            400,
            "INVALID_REQUEST",
            "differs from the path's",
        ),
        (
            path.clone(),
            json!({"identifier": "t", "apiKeyIdentifier": "viewer_key", "parentIdentifier": "viewer"}),
            400,
            "INVALID_REQUEST",
            "`apiKeyType` is required",
        ),
        (
            path.clone(),
            token_body(json!({"apiKeyType": "ROBOT"})),
            400,
            "INVALID_REQUEST",
            "`apiKeyType` must be",
        ),
        (
            path.clone(),
            token_body(json!({"apiKeyIdentifier": "nokey"})),
            404,
            "RESOURCE_NOT_FOUND",
            "api key `nokey`",
        ),
        (
            format!("/ng/api/token/nope?{A}"),
            token_body(json!({"identifier": "nope"})),
            404,
            "RESOURCE_NOT_FOUND",
            "token `nope` of api key `viewer_key` not found",
        ),
        (
            path.clone(),
            token_body(json!({"validTo": VIEWER_FROM})),
            400,
            "INVALID_REQUEST",
            "`validTo` must be after the token's `validFrom` (2020-01-01T00:00:00Z)",
        ),
        (
            path.clone(),
            token_body(json!({"validTo": VIEWER_FROM + 999})),
            400,
            "INVALID_REQUEST",
            "by a second at least",
        ),
        (
            path.clone(),
            token_body(json!({"validTo": i64::MAX})),
            400,
            "INVALID_REQUEST",
            "`validTo` is not a valid time",
        ),
        (
            path.clone(),
            token_body(json!({"validTo": "tomorrow"})),
            400,
            "INVALID_REQUEST",
            "malformed request body",
        ),
        (
            "/ng/api/token/t".to_owned(),
            token_body(json!({})),
            400,
            "INVALID_REQUEST",
            "accountIdentifier",
        ),
    ];
    for (path, body, status, code, needle) in cases {
        let answer = h.admin("PUT", &path, Some(body)).await;
        assert_failure(&answer, status, code, needle);
    }
    let empty = h.raw("PUT", &path, Some(&h.admin), Some("")).await;
    assert_failure(&empty, 400, "INVALID_REQUEST", "body is required");
    // the viewer may not manage its own service account's tokens
    let body = token_body(json!({"validTo": 4_102_444_800_000_i64})).to_string();
    let denied = h.raw("PUT", &path, Some(&h.viewer), Some(&body)).await;
    assert_failure(
        &denied,
        403,
        "NG_ACCESS_DENIED",
        "core_serviceaccount_manageapikey",
    );
    assert_eq!(h.document(), before);

    // an expired token is not revived
    let expire = token_body(json!({"validTo": VIEWER_FROM + 1000}));
    assert_eq!(h.admin("PUT", &path, Some(expire)).await.status, 200);
    let expired = h.document();
    let revive = token_body(json!({"validTo": 4_102_444_800_000_i64}));
    let answer = h.admin("PUT", &path, Some(revive)).await;
    assert_failure(
        &answer,
        400,
        "INVALID_REQUEST",
        "token `t` expired at 2020-01-01T00:00:01Z: an expired token is not changed",
    );
    assert_eq!(h.document(), expired);
}
