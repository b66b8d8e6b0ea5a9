//! Unit tests of JWT verification against fixture keys (tests/fixtures/jwt).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::authn::error::KeyError;
use crate::authn::jwk::{parse_jwks, parse_key_file};

const RSA1_KEY: &str = include_str!("../../tests/fixtures/jwt/rsa1.key.pem");
const RSA1_PUB: &str = include_str!("../../tests/fixtures/jwt/rsa1.pub.pem");
const RSA2_KEY: &str = include_str!("../../tests/fixtures/jwt/rsa2.key.pem");
const EC1_KEY: &str = include_str!("../../tests/fixtures/jwt/ec1.key.pem");
const EC1_PUB: &str = include_str!("../../tests/fixtures/jwt/ec1.pub.pem");
const ED1_KEY: &str = include_str!("../../tests/fixtures/jwt/ed1.key.pem");
const ED1_PUB: &str = include_str!("../../tests/fixtures/jwt/ed1.pub.pem");

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://login.example.com/";

fn policy() -> IssuerPolicy {
    IssuerPolicy {
        issuer: ISS.to_owned(),
        audiences: vec!["scopegate".to_owned()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        principal_claim: "sub".to_owned(),
        principal_kind: PrincipalKind::User,
        account_claim: Some("account".to_owned()),
        accounts: AccountAllowList::from_entries(&["acme"]),
        leeway_secs: 30,
    }
}

/// The fixture public keys, published with kids (as a JWKS would).
fn keys() -> KeySet {
    let mut keys = KeySet::default();
    for (pem, kid) in [(RSA1_PUB, "rsa1"), (EC1_PUB, "ec1"), (ED1_PUB, "ed1")] {
        let mut key = parse_key_file(pem.as_bytes()).unwrap().keys.remove(0);
        key.kid = Some(kid.to_owned());
        keys.keys.push(key);
    }
    keys
}

fn claims() -> serde_json::Value {
    json!({"iss": ISS, "aud": "scopegate", "sub": "alice", "account": "acme", "exp": NOW + 600, "iat": NOW})
}

fn sign(alg: Algorithm, kid: &str, pem: &str, claims: &serde_json::Value) -> String {
    let key = match alg.family() {
        jsonwebtoken::AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem.as_bytes()),
        jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem.as_bytes()),
        jsonwebtoken::AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem.as_bytes()),
        jsonwebtoken::AlgorithmFamily::Hmac => Ok(EncodingKey::from_secret(pem.as_bytes())),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn check(token: &str) -> Result<JwtIdentity, JwtError> {
    verify(token, 0, &policy(), &keys(), NOW, DEFAULT_MAX_TOKEN_BYTES)
}

#[test]
fn rsa_ec_and_ed25519_tokens_verify_and_map_to_an_identity() {
    for (alg, kid, pem) in [
        (Algorithm::RS256, "rsa1", RSA1_KEY),
        (Algorithm::ES256, "ec1", EC1_KEY),
        (Algorithm::EdDSA, "ed1", ED1_KEY),
    ] {
        let identity = check(&sign(alg, kid, pem, &claims())).unwrap();
        assert_eq!(&*identity.principal, "alice", "{alg:?}");
        assert_eq!(identity.account.as_deref(), Some("acme"));
        assert_eq!(identity.kind, PrincipalKind::User);
        assert_eq!(identity.expires_at, NOW + 600);
    }
}

#[test]
fn time_claims_are_checked_with_leeway() {
    let mut c = claims();
    c["exp"] = json!(NOW - 20);
    assert!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)).is_ok(),
        "within leeway"
    );
    c["exp"] = json!(NOW - 31);
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::Expired)
    );
    let mut c = claims();
    c["nbf"] = json!(NOW + 31);
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::NotYetValid)
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::MissingClaim("exp"))
    );
    c["exp"] = json!("tomorrow");
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::InvalidClaim("exp"))
    );
}

#[test]
fn audience_and_issuer_must_match() {
    let mut c = claims();
    c["aud"] = json!(["other", "another"]);
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::WrongAudience)
    );
    c["aud"] = json!(["other", "scopegate"]);
    assert!(check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)).is_ok());
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com/");
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::WrongIssuer)
    );
}

/// Found by the `jwt` fuzz target: jsonwebtoken checks `iss` and `aud` only when they are present
/// and readable, so a token without them (or with a number there) was accepted despite the policy.
#[test]
fn missing_or_unreadable_issuer_and_audience_are_refused() {
    let sign_rsa = |c: &serde_json::Value| sign(Algorithm::RS256, "rsa1", RSA1_KEY, c);
    for aud in [
        None,
        Some(json!(5)),
        Some(json!(null)),
        Some(json!({"a": "scopegate"})),
    ] {
        let mut c = claims();
        match aud {
            Some(aud) => c["aud"] = aud,
            None => drop(c.as_object_mut().unwrap().remove("aud")),
        }
        let refused = check(&sign_rsa(&c));
        assert!(
            matches!(
                refused,
                Err(JwtError::MissingClaim("aud") | JwtError::InvalidClaim("aud"))
            ),
            "{c}: {refused:?}"
        );
    }
    for iss in [None, Some(json!(5))] {
        let mut c = claims();
        match iss {
            Some(iss) => c["iss"] = iss,
            None => drop(c.as_object_mut().unwrap().remove("iss")),
        }
        assert_eq!(check(&sign_rsa(&c)), Err(JwtError::MissingClaim("iss")), "{c}");
    }
    // without configured audiences, no `aud` is needed
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    let any_audience = IssuerPolicy {
        audiences: Vec::new(),
        ..policy()
    };
    assert!(
        verify(
            &sign_rsa(&c),
            0,
            &any_audience,
            &keys(),
            NOW,
            DEFAULT_MAX_TOKEN_BYTES
        )
        .is_ok()
    );
}

#[test]
fn alg_none_and_hmac_with_the_rsa_public_key_are_refused() {
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    assert_eq!(check(&none), Err(JwtError::AlgorithmNotAllowed));
    let confused = sign(Algorithm::HS256, "rsa1", RSA1_PUB, &claims());
    assert_eq!(check(&confused), Err(JwtError::AlgorithmNotAllowed));
    // even if an operator allowed HS256, the RSA key's type refuses it
    let mut lax = policy();
    lax.algorithms.push(Algorithm::HS256);
    assert_eq!(
        verify(&confused, 0, &lax, &keys(), NOW, DEFAULT_MAX_TOKEN_BYTES),
        Err(JwtError::AlgorithmKeyMismatch)
    );
}

#[test]
fn tampered_payload_wrong_key_and_unknown_kid_are_refused() {
    let token = sign(Algorithm::RS256, "rsa1", RSA1_KEY, &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = {
        use base64::Engine;
        let mut c = claims();
        c["sub"] = json!("mallory");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
    };
    parts[1] = &forged;
    assert_eq!(check(&parts.join(".")), Err(JwtError::BadSignature));
    // signed by rsa2 but claiming rsa1's kid
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA2_KEY, &claims())),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa2", RSA2_KEY, &claims())),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn oversized_and_garbage_tokens_are_refused_without_panicking() {
    let big = format!("eyJ{}.x.y", "A".repeat(DEFAULT_MAX_TOKEN_BYTES));
    assert_eq!(check(&big), Err(JwtError::TooLarge));
    for garbage in [
        "",
        "eyJ",
        "eyJ..",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "a.b.c",
        "eyJ\u{0}.\u{fffd}.ü",
        "....",
    ] {
        assert!(check(garbage).is_err(), "{garbage:?}");
        let _ = peek_issuer(garbage);
    }
}

#[test]
fn claims_map_to_service_accounts_and_missing_principal_is_an_error() {
    let mut sa = policy();
    sa.principal_kind = PrincipalKind::ServiceAccount;
    sa.principal_claim = "client_id".to_owned();
    sa.account_claim = None;
    let claims = json!({"client_id": "eng/ci_bot", "exp": NOW});
    let identity = map_claims(3, &sa, claims.as_object().unwrap()).unwrap();
    assert_eq!((identity.issuer, &*identity.principal), (3, "eng/ci_bot"));
    assert_eq!(identity.kind, PrincipalKind::ServiceAccount);
    assert_eq!(identity.account, None);
    let none = json!({"sub": "alice"});
    assert_eq!(
        map_claims(0, &sa, none.as_object().unwrap()),
        Err(JwtError::MissingClaim("principal"))
    );
    let wrong_type = json!({"client_id": 7});
    assert_eq!(
        map_claims(0, &sa, wrong_type.as_object().unwrap()),
        Err(JwtError::InvalidClaim("principal"))
    );
}

#[test]
fn issuer_is_peeked_and_looked_up() {
    let token = sign(Algorithm::ES256, "ec1", EC1_KEY, &claims());
    assert!(looks_like_jwt(&token));
    assert!(!looks_like_jwt("pat.acme.alicetok01.AliceDemoSecret01"));
    assert_eq!(peek_issuer(&token).unwrap(), ISS);
    assert_eq!(issuer_index(&[policy()], ISS), Ok(0));
    assert_eq!(issuer_index(&[policy()], "x"), Err(JwtError::UnknownIssuer));
}

#[test]
fn jwks_parsing_refuses_symmetric_keys_and_skips_encryption_keys() {
    let rsa = jsonwebtoken::jwk::Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(RSA1_KEY.as_bytes()).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    let mut rsa = serde_json::to_value(rsa).unwrap();
    rsa["kid"] = json!("rsa1");
    let mut enc = rsa.clone();
    enc["kid"] = json!("enc");
    enc["use"] = json!("enc");
    let set = parse_jwks(json!({"keys": [rsa, enc]}).to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert!(set.has_kid("rsa1"));
    let oct = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]});
    assert!(matches!(
        parse_jwks(oct.to_string().as_bytes()),
        Err(KeyError::Symmetric(_))
    ));
    assert!(parse_jwks(b"{\"keys\": []}").is_err());
    assert!(parse_jwks(b"not json").is_err());
    assert!(matches!(
        parse_key_file(b"-----BEGIN NONSENSE-----"),
        Err(KeyError::Pem)
    ));
}

#[test]
fn a_pem_key_without_kid_verifies_tokens_whose_kid_names_no_other_key() {
    let anonymous = parse_key_file(RSA1_PUB.as_bytes()).unwrap();
    assert_eq!(anonymous.keys[0].kid, None);
    let verify_with = |token: &str| verify(token, 0, &policy(), &anonymous, NOW, DEFAULT_MAX_TOKEN_BYTES);
    assert!(verify_with(&sign(Algorithm::RS256, "whatever", RSA1_KEY, &claims())).is_ok());
    assert_eq!(
        verify_with(&sign(Algorithm::RS256, "rsa2", RSA2_KEY, &claims())),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        verify_with(&sign(Algorithm::ES256, "ec1", EC1_KEY, &claims())),
        Err(JwtError::UnknownKey),
        "no EC key"
    );
}

fn sign_with_header(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", b64(header), b64(claims));
    let key = EncodingKey::from_rsa_pem(RSA1_KEY.as_bytes()).unwrap();
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS256).unwrap();
    format!("{input}.{signature}")
}

#[test]
fn audience_is_required_and_must_be_strings_when_audiences_are_configured() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    let no_aud = sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c);
    assert_eq!(check(&no_aud), Err(JwtError::MissingClaim("aud")));
    for bad in [json!(7), json!({"aud": "scopegate"}), json!(true)] {
        c["aud"] = bad.clone();
        assert_eq!(
            check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
            Err(JwtError::InvalidClaim("aud")),
            "{bad}"
        );
    }
    c["aud"] = json!(["scopegate", 7]);
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::InvalidClaim("aud"))
    );
    c["aud"] = json!([]);
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::WrongAudience)
    );
    // without configured audiences `aud` is not looked at
    let mut any = policy();
    any.audiences.clear();
    assert!(verify(&no_aud, 0, &any, &keys(), NOW, DEFAULT_MAX_TOKEN_BYTES).is_ok());
}

#[test]
fn a_header_with_crit_is_refused() {
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
        let token = sign_with_header(&json!({"alg": "RS256", "kid": "rsa1", "crit": crit}), &claims());
        assert_eq!(check(&token), Err(JwtError::CriticalHeader), "{crit}");
    }
    let plain = sign_with_header(&json!({"alg": "RS256", "kid": "rsa1"}), &claims());
    assert!(check(&plain).is_ok());
}

#[test]
fn the_account_claim_is_required_when_configured() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("account");
    let token = sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c);
    assert_eq!(check(&token), Err(JwtError::MissingClaim("account")));
    c["account"] = json!(null);
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::MissingClaim("account"))
    );
    let mut unclaimed = policy();
    unclaimed.account_claim = None;
    let identity = verify(&token, 0, &unclaimed, &keys(), NOW, DEFAULT_MAX_TOKEN_BYTES).unwrap();
    assert_eq!(identity.account, None);
}

#[test]
fn a_claimed_account_off_the_issuers_list_is_refused() {
    let mut c = claims();
    c["account"] = json!("globex");
    assert_eq!(
        check(&sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c)),
        Err(JwtError::AccountNotAllowed)
    );
    let mut any = policy();
    any.accounts = AccountAllowList::from_entries(&["*"]);
    let identity = verify(
        &sign(Algorithm::RS256, "rsa1", RSA1_KEY, &c),
        0,
        &any,
        &keys(),
        NOW,
        DEFAULT_MAX_TOKEN_BYTES,
    )
    .unwrap();
    assert_eq!(identity.account.as_deref(), Some("globex"));
    assert!(identity.allowed_accounts.allows("anything"));
    let only = AccountAllowList::from_entries(&["acme", "globex"]);
    assert!(only.allows("acme") && only.allows("globex") && !only.allows("initech"));
    assert!(!AccountAllowList::from_entries::<&str>(&[]).allows("acme"));
}
