//! JWT bearer tokens end to end: the real ext_authz server on 127.0.0.1:0, keys from a JWKS server
//! on 127.0.0.1:0 (found through OIDC discovery) and from a static key file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::jwt::{EC1, ED1, JwksServer, RSA1, RSA1_PUBLIC_PEM, RSA2, RSA2_PUBLIC_PATH, Signer, now};
use common::{EXECUTE, Server, allowed, check, request};
use envoy_types::ext_authz::v3::pb::{CheckResponse, HttpResponse};
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::google::protobuf::{Struct, Value as PbValue, value::Kind};
use jsonwebtoken::Algorithm;
use scopegate::accounts::SnapshotSource;
use scopegate::authn::jwt::{IssuerPolicy, PrincipalKind};
use scopegate::authz::{Authorizer, AuthorizerOptions};
use scopegate::jwks::{FetchSettings, JwtSettings, KeySource};
use serde_json::{Value, json};

const STATIC_ISSUER: &str = "https://ci.example.com/";
/// An issuer whose tokens name no account, trusted only for `globex`.
const UNCLAIMED_ISSUER: &str = "https://globex-idp.example.com/";

fn policy(issuer: &str) -> IssuerPolicy {
    IssuerPolicy {
        issuer: issuer.to_owned(),
        audiences: vec!["scopegate".to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        principal_claim: "sub".to_owned(),
        principal_kind: PrincipalKind::User,
        account_claim: Some("account".to_owned()),
        accounts: scopegate::authn::jwt::AccountAllowList::from_entries(&["acme", "globex"]),
        leeway_secs: 5,
    }
}

/// The demo snapshot with two issuers: the JWKS server (by discovery) and a static-key CI issuer
/// whose `client_id` names a service account.
fn state(jwks: &JwksServer, min_refetch: Duration, trust_metadata: bool) -> Arc<Authorizer> {
    let ci = IssuerPolicy {
        principal_claim: "client_id".to_owned(),
        principal_kind: PrincipalKind::ServiceAccount,
        accounts: scopegate::authn::jwt::AccountAllowList::from_entries(&["acme"]),
        ..policy(STATIC_ISSUER)
    };
    let unclaimed = IssuerPolicy {
        account_claim: None,
        accounts: scopegate::authn::jwt::AccountAllowList::from_entries(&["globex"]),
        ..policy(UNCLAIMED_ISSUER)
    };
    let settings = JwtSettings {
        issuers: vec![
            (policy(&jwks.base), KeySource::Discovery(jwks.base.clone())),
            (ci, KeySource::Static(vec![RSA2_PUBLIC_PATH.into()])),
            (unclaimed, KeySource::Static(vec![RSA2_PUBLIC_PATH.into()])),
        ],
        fetch: FetchSettings {
            min_refetch_interval: min_refetch,
            ..FetchSettings::default()
        },
        max_token_bytes: 8192,
        cache_capacity: 1000,
        cache_ttl: Duration::from_secs(300),
        envoy_metadata: trust_metadata.then(|| "envoy.filters.http.jwt_authn".to_owned()),
    };
    let options = AuthorizerOptions {
        jwt: Some(settings),
        ..AuthorizerOptions::default()
    };
    Arc::new(Authorizer::load_with(SnapshotSource::Embedded, None, &options).unwrap())
}

fn claims(jwks: &JwksServer, sub: &str) -> Value {
    json!({"iss": jwks.base, "aud": "scopegate", "sub": sub, "account": "acme", "exp": now() + 600,
           "jti": rand_jti()})
}

fn rand_jti() -> String {
    format!("{:x}", rand::random::<u64>())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn execute(server: &Server, token: &str) -> CheckResponse {
    let auth = bearer(token);
    check(
        &mut server.client().await,
        request("POST", EXECUTE, &[("authorization", &auth)], None),
    )
    .await
}

/// The HTTP status and the reason code Envoy gets in dynamic metadata.
fn denial(resp: &CheckResponse) -> (i32, String) {
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("expected a denial, got {resp:?}");
    };
    let reason = resp.dynamic_metadata.as_ref().unwrap().fields["reason"]
        .kind
        .clone();
    let Some(Kind::StringValue(reason)) = reason else {
        panic!("no reason")
    };
    let status = denied.status.unwrap().code;
    assert!(
        status != 401 || denied.body.contains("_CREDENTIALS"),
        "{}",
        denied.body
    );
    (denied.status.unwrap().code, reason)
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_ec_and_ed25519_tokens_from_discovered_jwks_are_accepted() {
    let jwks = JwksServer::start(&[RSA1, EC1, ED1]).await;
    let server = Server::start(state(&jwks, Duration::ZERO, false)).await;
    for signer in [RSA1, EC1, ED1] {
        let resp = execute(&server, &signer.sign(&claims(&jwks, "alice"))).await;
        assert!(allowed(&resp), "{}: {resp:?}", signer.kid);
    }
    // erin has no execute permission (her admin assignment is disabled): authenticated, then 403
    let resp = execute(&server, &RSA1.sign(&claims(&jwks, "erin"))).await;
    assert_eq!(denial(&resp).0, 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_is_picked_up_and_known_keys_survive_the_endpoint_going_down() {
    let jwks = JwksServer::start(&[RSA1]).await;
    let server = Server::start(state(&jwks, Duration::ZERO, false)).await;
    assert!(allowed(
        &execute(&server, &RSA1.sign(&claims(&jwks, "alice"))).await
    ));
    // the identity provider rotates to rsa2: a token with the new kid triggers one refetch
    jwks.publish(&[RSA1, RSA2]);
    let before = jwks.jwks_requests();
    assert!(allowed(
        &execute(&server, &RSA2.sign(&claims(&jwks, "alice"))).await
    ));
    assert_eq!(jwks.jwks_requests(), before + 1);
    // the endpoint goes down: new tokens signed with known keys still verify
    jwks.set_down(true);
    for signer in [RSA1, RSA2] {
        let resp = execute(&server, &signer.sign(&claims(&jwks, "alice"))).await;
        assert!(allowed(&resp), "{}", signer.kid);
    }
    // and an unknown kid is refused after the (failed) refetch
    let resp = execute(&server, &EC1.sign(&claims(&jwks, "alice"))).await;
    assert_eq!(denial(&resp), (401, "jwt_unknown_key".to_owned()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kid_refetches_are_rate_limited() {
    let jwks = JwksServer::start(&[RSA1]).await;
    let server = Server::start(state(&jwks, Duration::from_secs(3600), false)).await;
    assert!(allowed(
        &execute(&server, &RSA1.sign(&claims(&jwks, "alice"))).await
    ));
    let before = jwks.jwks_requests();
    for i in 0..5 {
        let resp = execute(
            &server,
            &RSA1.sign_as(&format!("random{i}"), &claims(&jwks, "alice")),
        )
        .await;
        assert_eq!(denial(&resp), (401, "jwt_unknown_key".to_owned()));
    }
    assert_eq!(jwks.jwks_requests(), before + 1, "one refetch per interval");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_token_is_a_401_with_its_code() {
    let jwks = JwksServer::start(&[RSA1, EC1]).await;
    let server = Server::start(state(&jwks, Duration::ZERO, false)).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&jwks, "alice");
        change(&mut c);
        c
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let tampered = {
        let token = RSA1.sign(&claims(&jwks, "bob"));
        let parts: Vec<&str> = token.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(&claims(&jwks, "alice")), parts[2])
    };
    let hs256 = {
        let key = jsonwebtoken::EncodingKey::from_secret(RSA1_PUBLIC_PEM.as_bytes());
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("rsa1".to_owned());
        jsonwebtoken::encode(&header, &claims(&jwks, "alice"), &key).unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("jwt_expired", RSA1.sign(&with(&|c| c["exp"] = json!(now() - 60)))),
        (
            "jwt_not_yet_valid",
            RSA1.sign(&with(&|c| c["nbf"] = json!(now() + 600))),
        ),
        (
            "jwt_wrong_audience",
            RSA1.sign(&with(&|c| c["aud"] = json!("billing"))),
        ),
        (
            "jwt_unknown_issuer",
            RSA1.sign(&with(&|c| c["iss"] = json!("https://evil.example.com/"))),
        ),
        (
            "jwt_algorithm_not_allowed",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "rsa1"})),
                b64(&claims(&jwks, "alice"))
            ),
        ),
        ("jwt_algorithm_not_allowed", hs256),
        ("jwt_bad_signature", tampered),
        ("jwt_unknown_key", ED1.sign(&claims(&jwks, "alice"))),
        (
            "jwt_too_large",
            RSA1.sign(&with(&|c| c["pad"] = json!("x".repeat(9000)))),
        ),
        ("jwt_unknown_principal", RSA1.sign(&claims(&jwks, "nobody"))),
        ("jwt_principal_disabled", RSA1.sign(&claims(&jwks, "dave"))),
        ("jwt_missing_claim", RSA1.sign(&with(&|c| c["sub"] = Value::Null))),
        ("jwt_malformed", "eyJhbGciOiJSUzI1NiJ9.!!!.???".to_owned()),
    ];
    // the URL names acme, the token another account
    let other = RSA1.sign(&with(&|c| c["account"] = json!("globex")));
    let auth = bearer(&other);
    let path = format!("{EXECUTE}?accountIdentifier=acme");
    let resp = check(
        &mut server.client().await,
        request("POST", &path, &[("authorization", &auth)], None),
    )
    .await;
    assert_eq!(denial(&resp), (401, "jwt_account_mismatch".to_owned()));
    for (code, token) in cases {
        let resp = execute(&server, &token).await;
        assert_eq!(denial(&resp), (401, code.to_owned()), "{code}");
        if let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response {
            assert!(
                !denied.body.contains(&token[..20.min(token.len())]),
                "token echoed"
            );
            // a refused bearer token is challenged the RFC 6750 way, never with the token in it
            let challenge = www_authenticate(denied);
            assert!(
                challenge.starts_with("Bearer realm=\"scopegate\", error=\"invalid_token\""),
                "{code}: {challenge}"
            );
            assert!(
                !challenge.contains(&token[..20.min(token.len())]),
                "{code}: token in the challenge"
            );
            // ... and names the reason code, in the body and in error_description
            assert!(
                challenge.ends_with(&format!(" ({code})\"")),
                "{code}: {challenge}"
            );
            let body: Value = serde_json::from_str(&denied.body).unwrap();
            assert_eq!(body["reason"], code);
        }
    }
    // an API key refused keeps the ApiKey challenge
    let resp = execute_with_key(&server, "pat.acme.alicetok01.WrongSecret").await;
    let Some(HttpResponse::DeniedResponse(denied)) = &resp.http_response else {
        panic!("not denied: {resp:?}");
    };
    assert_eq!(www_authenticate(denied), "ApiKey realm=\"scopegate\"");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_key_issuer_maps_a_claim_to_a_service_account() {
    let jwks = JwksServer::start(&[RSA1]).await;
    let server = Server::start(state(&jwks, Duration::ZERO, false)).await;
    let ci = |client_id: &str| {
        json!({"iss": STATIC_ISSUER, "aud": ["scopegate"], "client_id": client_id, "account": "acme",
               "exp": now() + 60})
    };
    let resp = execute(&server, &RSA2.sign(&ci("ci_bot"))).await;
    assert!(allowed(&resp), "{resp:?}");
    assert!(allowed(&execute(&server, &RSA2.sign(&ci("eng/ci_bot"))).await));
    let resp = execute(&server, &RSA2.sign(&ci("ops/ci_bot"))).await;
    assert_eq!(denial(&resp), (401, "jwt_unknown_principal".to_owned()));
    // the static issuer's key does not verify tokens claiming the other issuer
    let resp = execute(
        &server,
        &Signer { kid: "rsa1", ..RSA2 }.sign(&claims(&jwks, "alice")),
    )
    .await;
    assert_eq!(denial(&resp), (401, "jwt_bad_signature".to_owned()));
    server.stop().await;
}

fn metadata_with(claims: &Value) -> Metadata {
    fn pb(v: &Value) -> PbValue {
        let kind = match v {
            Value::String(s) => Kind::StringValue(s.clone()),
            Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
            Value::Bool(b) => Kind::BoolValue(*b),
            Value::Object(o) => Kind::StructValue(Struct {
                fields: o.iter().map(|(k, v)| (k.clone(), pb(v))).collect(),
            }),
            _ => Kind::NullValue(0),
        };
        PbValue { kind: Some(kind) }
    }
    let payload = pb(&json!({"jwt_payload": claims}));
    let Some(Kind::StructValue(payload)) = payload.kind else {
        unreachable!()
    };
    Metadata {
        filter_metadata: [("envoy.filters.http.jwt_authn".to_owned(), payload)].into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_verified_by_envoy_jwt_authn_are_trusted_only_when_configured() {
    let jwks = JwksServer::start(&[RSA1]).await;
    let mut req = request("POST", EXECUTE, &[], None);
    req.attributes.as_mut().unwrap().metadata_context = Some(metadata_with(&claims(&jwks, "alice")));
    let trusting = Server::start(state(&jwks, Duration::ZERO, true)).await;
    let resp = check(&mut trusting.client().await, req.clone()).await;
    assert!(allowed(&resp), "{resp:?}");
    trusting.stop().await;
    let untrusting = Server::start(state(&jwks, Duration::ZERO, false)).await;
    let resp = check(&mut untrusting.client().await, req).await;
    assert_eq!(denial(&resp).0, 401, "metadata is ignored unless configured");
    untrusting.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_keep_working_beside_jwts() {
    let jwks = JwksServer::start(&[RSA1]).await;
    let server = Server::start(state(&jwks, Duration::ZERO, false)).await;
    let resp = check(
        &mut server.client().await,
        request("POST", EXECUTE, &[("x-api-key", common::ALICE)], None),
    )
    .await;
    assert!(allowed(&resp));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audience_account_and_crit_rules_are_enforced_end_to_end() {
    let jwks = JwksServer::start(&[RSA1]).await;
    let server = Server::start(state(&jwks, Duration::ZERO, false)).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&jwks, "alice");
        change(&mut c);
        c
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let crit = {
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "kid": "rsa1", "crit": ["exp"]})),
            b64(&claims(&jwks, "alice"))
        );
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &RSA1.encoding_key(), Algorithm::RS256).unwrap();
        format!("{input}.{signature}")
    };
    let ci = |account: Option<&str>| {
        let mut c =
            json!({"iss": STATIC_ISSUER, "aud": "scopegate", "client_id": "ci_bot", "exp": now() + 60});
        if let Some(account) = account {
            c["account"] = json!(account);
        }
        RSA2.sign(&c)
    };
    let unclaimed = RSA2.sign(
        &json!({"iss": UNCLAIMED_ISSUER, "aud": "scopegate", "sub": "alice",
                                      "exp": now() + 60}),
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "jwt_missing_claim",
            RSA1.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            })),
        ),
        ("jwt_invalid_claim", RSA1.sign(&with(&|c| c["aud"] = json!(42)))),
        (
            "jwt_invalid_claim",
            RSA1.sign(&with(&|c| c["aud"] = json!(["scopegate", {"x": 1}]))),
        ),
        (
            "jwt_missing_claim",
            RSA1.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("account");
            })),
        ),
        ("jwt_critical_header", crit),
        // the CI issuer is trusted for acme only
        ("jwt_account_not_allowed", ci(Some("initech"))),
        ("jwt_missing_claim", ci(None)),
    ];
    for (code, token) in cases {
        let resp = execute(&server, &token).await;
        assert_eq!(denial(&resp), (401, code.to_owned()), "{code}");
    }
    // a token naming no account acts in the request's (acme): its issuer is trusted for globex only
    let auth = bearer(&unclaimed);
    let path = format!("{EXECUTE}?accountIdentifier=acme");
    let resp = check(
        &mut server.client().await,
        request("POST", &path, &[("authorization", &auth)], None),
    )
    .await;
    assert_eq!(denial(&resp), (401, "jwt_account_not_allowed".to_owned()));
    assert!(allowed(&execute(&server, &ci(Some("acme"))).await));
    server.stop().await;
}

/// The `www-authenticate` value of a denied response.
fn www_authenticate(denied: &envoy_types::ext_authz::v3::pb::DeniedHttpResponse) -> String {
    denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key.eq_ignore_ascii_case("www-authenticate"))
        .map(|h| h.value.clone())
        .unwrap_or_default()
}

/// Executes the demo pipeline with an API key.
async fn execute_with_key(server: &Server, key: &str) -> CheckResponse {
    let path = format!("{EXECUTE}?accountIdentifier=acme");
    check(
        &mut server.client().await,
        request("POST", &path, &[("x-api-key", key)], None),
    )
    .await
}
