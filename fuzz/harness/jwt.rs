//! JWT harness: header and claims parsing and verification (`scopegate::authn::jwt`) with fixed
//! keys and a fixed time. The first byte picks the mode:
//! - even: the rest is a compact token as a client sends it (RS256 demo key, Ed25519 fuzz key);
//! - odd: the rest is `<header JSON>\n<claims JSON>` (or just claims, under an EdDSA header), which
//!   the harness signs with the fuzz key, so the fuzzer reaches claim validation and mapping.
//!
//! Never a panic; an accepted token's identity must be what its claims say, within its times.
//! Shared by `fuzz_targets/jwt.rs` and `tests/fuzz_replay.rs`.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use scopegate::accounts::DEMO_SNAPSHOT_YAML;
use scopegate::authn::jwt::{
    self, AccountAllowList, DEFAULT_MAX_TOKEN_BYTES, IssuerPolicy, KeySet, PrincipalKind, VerifyingKey,
};
use scopegate::rbac::{Catalog, CompiledAccount, compile, model::AccountSnapshot, model::FileFormat};
use serde_json::{Map, Value};

/// The demo issuer's public key (RS256, published without a `kid`).
const DEMO_PUBLIC_PEM: &[u8] = include_bytes!("../../deploy/examples/jwt/demo-issuer.pub.pem");
/// A key pair made for fuzzing only (kid `fuzz-ed`); never trust it anywhere.
const FUZZ_ED_PRIVATE_PEM: &[u8] = include_bytes!("keys/fuzz-ed25519.key.pem");
const FUZZ_ED_PUBLIC_PEM: &[u8] = include_bytes!("keys/fuzz-ed25519.pub.pem");
const FUZZ_ED_KID: &str = "fuzz-ed";
/// The verification time: 2030-03-17.
pub const NOW: i64 = 1_900_000_000;
const LEEWAY: u64 = 60;
const DEFAULT_HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT","kid":"fuzz-ed"}"#;

struct Fixture {
    policies: Vec<IssuerPolicy>,
    keys: KeySet,
    signer: EncodingKey,
    account: CompiledAccount,
}

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

fn fixture() -> Option<Fixture> {
    let rsa = DecodingKey::from_rsa_pem(DEMO_PUBLIC_PEM).ok()?;
    let ed = DecodingKey::from_ed_pem(FUZZ_ED_PUBLIC_PEM).ok()?;
    let signer = EncodingKey::from_ed_pem(FUZZ_ED_PRIVATE_PEM).ok()?;
    let policy = IssuerPolicy {
        issuer: "https://login.acme.example/".to_owned(),
        audiences: vec!["scopegate".to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        principal_claim: "sub".to_owned(),
        principal_kind: PrincipalKind::User,
        account_claim: Some("account".to_owned()),
        accounts: AccountAllowList::Any,
        leeway_secs: LEEWAY,
    };
    // a second issuer: service accounts, any audience
    let robots = IssuerPolicy {
        issuer: "https://ci.acme.example".to_owned(),
        audiences: Vec::new(),
        principal_kind: PrincipalKind::ServiceAccount,
        principal_claim: "client_id".to_owned(),
        ..policy.clone()
    };
    let keys = KeySet {
        keys: vec![
            VerifyingKey { kid: None, key: rsa },
            VerifyingKey {
                kid: Some(FUZZ_ED_KID.to_owned()),
                key: ed,
            },
        ],
    };
    let snapshot = AccountSnapshot::parse(DEMO_SNAPSHOT_YAML, FileFormat::Yaml).ok()?;
    let account = compile(&snapshot, std::sync::Arc::new(Catalog::embedded().ok()?), None).ok()?;
    Some(Fixture {
        policies: vec![policy, robots],
        keys,
        signer,
        account,
    })
}

/// One input (see the module documentation for its form).
pub fn run(data: &[u8]) {
    let Some(fixture) = FIXTURE.get_or_init(fixture) else {
        return;
    };
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        check_token(fixture, text, None);
    } else {
        let (header, claims) = text.split_once('\n').unwrap_or((DEFAULT_HEADER, text));
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let Ok(signature) =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &fixture.signer, Algorithm::EdDSA)
        else {
            return;
        };
        check_token(fixture, &format!("{signing_input}.{signature}"), Some(claims));
        // the same claims, trusted as Envoy's jwt_authn hands them over
        if let Ok(claims) = serde_json::from_str::<Map<String, Value>>(claims) {
            for (index, policy) in fixture.policies.iter().enumerate() {
                if let Ok(identity) = jwt::map_claims(index, policy, &claims) {
                    assert_identity_matches(policy, &identity, &claims);
                }
            }
        }
    }
}

fn check_token(fixture: &Fixture, token: &str, claims_text: Option<&str>) {
    let _ = jwt::looks_like_jwt(token);
    let _ = jwt::header(token, DEFAULT_MAX_TOKEN_BYTES);
    let issuer = jwt::peek_issuer(token)
        .ok()
        .and_then(|iss| jwt::issuer_index(&fixture.policies, &iss).ok())
        .unwrap_or(0);
    let Some(policy) = fixture.policies.get(issuer) else {
        return;
    };
    let Ok(identity) = jwt::verify(token, issuer, policy, &fixture.keys, NOW, DEFAULT_MAX_TOKEN_BYTES) else {
        return;
    };
    assert_eq!(identity.issuer, issuer);
    assert!(token.len() <= DEFAULT_MAX_TOKEN_BYTES);
    assert!(
        NOW <= identity.expires_at.saturating_add(LEEWAY as i64),
        "an expired token was accepted"
    );
    if let Some(claims) = claims_text.and_then(|c| serde_json::from_str::<Map<String, Value>>(c).ok()) {
        assert_eq!(
            claims.get("iss").and_then(Value::as_str),
            Some(policy.issuer.as_str())
        );
        assert!(claims.contains_key("exp"), "a token without exp was accepted");
        assert_identity_matches(policy, &identity, &claims);
    }
    let _ = jwt::principal_in(&fixture.account, &identity);
}

fn assert_identity_matches(policy: &IssuerPolicy, identity: &jwt::JwtIdentity, claims: &Map<String, Value>) {
    assert_eq!(
        claims.get(&policy.principal_claim).and_then(Value::as_str),
        Some(&*identity.principal),
        "the identity is not the principal claim"
    );
    assert!(!identity.principal.is_empty());
    assert_eq!(identity.kind, policy.principal_kind);
    match policy
        .account_claim
        .as_deref()
        .and_then(|claim| claims.get(claim))
    {
        None | Some(Value::Null) => assert!(identity.account.is_none()),
        Some(value) => assert_eq!(value.as_str(), identity.account.as_deref()),
    }
}
