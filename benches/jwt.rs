//! Criterion benchmark of JWT authentication:
//! - `jwt/check_cached`: the whole ext_authz Check in process with a JWT that was verified before
//!   (digest lookup in the verified-token cache, principal lookup, decision), against
//!   `jwt/check_api_key_baseline`, the same Check with alice's cached API key, in the same run;
//! - `jwt/identify_cached`: only the cache lookup of a verified token;
//! - `jwt/verify_{rs256,es256,eddsa}`: an uncached signature + claims verification.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use scopegate::accounts::SnapshotSource;
use scopegate::authn::jwk::parse_key_file;
use scopegate::authn::jwt::{self, IssuerPolicy, KeySet, PrincipalKind};
use scopegate::authz::{Authorizer, AuthorizerOptions};
use scopegate::envoy::AuthzService;
use scopegate::jwks::{FetchSettings, JwtSettings, KeySource};
use serde_json::json;
use tokio::runtime::Runtime;

const ISSUER: &str = "https://login.example.com/";
const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";
const ALICE_API_KEY: &str = "pat.acme.alicetok01.AliceDemoSecret01";

const KEYS: [(Algorithm, &str, &str); 3] = [
    (
        Algorithm::RS256,
        include_str!("../tests/fixtures/jwt/rsa1.key.pem"),
        include_str!("../tests/fixtures/jwt/rsa1.pub.pem"),
    ),
    (
        Algorithm::ES256,
        include_str!("../tests/fixtures/jwt/ec1.key.pem"),
        include_str!("../tests/fixtures/jwt/ec1.pub.pem"),
    ),
    (
        Algorithm::EdDSA,
        include_str!("../tests/fixtures/jwt/ed1.key.pem"),
        include_str!("../tests/fixtures/jwt/ed1.pub.pem"),
    ),
];

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn policy() -> IssuerPolicy {
    IssuerPolicy {
        issuer: ISSUER.to_owned(),
        audiences: vec!["scopegate".to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        principal_claim: "sub".to_owned(),
        principal_kind: PrincipalKind::User,
        account_claim: Some("account".to_owned()),
        accounts: scopegate::authn::jwt::AccountAllowList::from_entries(&["acme"]),
        leeway_secs: 30,
    }
}

/// A realistic IdP token (about 700 bytes for RS256).
fn sign(alg: Algorithm, private_pem: &str) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
    }
    .unwrap();
    let claims = json!({
        "iss": ISSUER, "aud": ["scopegate"], "sub": "alice", "account": "acme",
        "exp": now() + 3600, "iat": now(), "email": "alice@acme.example",
        "name": "Alice Example", "groups": ["eng", "payments"], "jti": "0f9c3a2e5b7d4c1a"
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
}

fn request(header: (&str, &str)) -> CheckRequest {
    let headers: HashMap<String, String> = [(header.0.to_owned(), header.1.to_owned())].into();
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

fn call(rt: &Runtime, service: &AuthzService, req: &CheckRequest) -> CheckResponse {
    rt.block_on(service.check(tonic::Request::new(req.clone())))
        .unwrap()
        .into_inner()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = JwtSettings {
        issuers: vec![(
            policy(),
            KeySource::Static(vec!["tests/fixtures/jwt/rsa1.pub.pem".into()]),
        )],
        fetch: FetchSettings::default(),
        max_token_bytes: 8192,
        cache_capacity: 100_000,
        cache_ttl: Duration::from_secs(300),
        envoy_metadata: None,
    };
    let options = AuthorizerOptions {
        jwt: Some(settings),
        ..AuthorizerOptions::default()
    };
    let state = Arc::new(Authorizer::load_with(SnapshotSource::Embedded, None, &options).unwrap());
    let service = AuthzService::new(Arc::clone(&state));
    let token = sign(KEYS[0].0, KEYS[0].1);
    let bearer = format!("Bearer {token}");
    let jwt_req = request(("authorization", &bearer));
    let api_key_req = request(("x-api-key", ALICE_API_KEY));
    for req in [&jwt_req, &api_key_req] {
        let resp = call(&rt, &service, req);
        assert!(
            matches!(resp.http_response, Some(HttpResponse::OkResponse(_))),
            "{resp:?}"
        );
    }
    let jwt_auth = state.credentials().jwt().unwrap();

    let mut group = c.benchmark_group("jwt");
    group.bench_function("check_cached", |b| {
        b.iter(|| black_box(call(&rt, &service, black_box(&jwt_req))));
    });
    group.bench_function("check_api_key_baseline", |b| {
        b.iter(|| black_box(call(&rt, &service, black_box(&api_key_req))));
    });
    group.bench_function("identify_cached", |b| {
        b.iter(|| black_box(jwt_auth.identify(black_box(&token), now()).unwrap()));
    });
    let policy = policy();
    for (alg, private, public) in KEYS {
        let token = sign(alg, private);
        let keys: KeySet = parse_key_file(public.as_bytes()).unwrap();
        let at = now();
        jwt::verify(&token, 0, &policy, &keys, at, 8192).unwrap();
        let name = format!("verify_{}", format!("{alg:?}").to_lowercase());
        group.bench_function(name, |b| {
            b.iter(|| black_box(jwt::verify(black_box(&token), 0, &policy, &keys, at, 8192).unwrap()));
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
