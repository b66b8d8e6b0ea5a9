//! Reading issuer keys: a JWK set (from a JWKS endpoint or a file), a single JWK, or a PEM public key.
//! Symmetric keys are refused, and keys meant for encryption (`use: enc`) are skipped.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};

use crate::authn::error::KeyError;
use crate::authn::jwt::{KeySet, VerifyingKey};

/// Parses a JWK set (`{"keys": [...]}`). Unusable keys are skipped (a JWKS may publish key types
/// this server does not verify with) as long as one key remains; a symmetric key fails the set.
pub fn parse_jwks(json: &[u8]) -> Result<KeySet, KeyError> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| KeyError::Json(e.to_string()))?;
    keys_of(set.keys)
}

fn keys_of(jwks: Vec<Jwk>) -> Result<KeySet, KeyError> {
    let mut keys = Vec::with_capacity(jwks.len());
    for jwk in &jwks {
        let name = jwk.common.key_id.clone().unwrap_or_else(|| "(no kid)".to_owned());
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(KeyError::Symmetric(name));
        }
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(VerifyingKey {
                kid: jwk.common.key_id.clone(),
                key,
            }),
            Err(error) => tracing::warn!(kid = %name, %error, "skipping an unusable jwk"),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(KeySet { keys })
}

/// Parses a key file: a JWK set, a single JWK, or a PEM public key. A PEM key has no `kid`: it
/// verifies tokens of its issuer whose `kid` names no other key.
pub fn parse_key_file(bytes: &[u8]) -> Result<KeySet, KeyError> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| KeyError::Json(e.to_string()))?;
        if value.get("keys").is_some() {
            return parse_jwks(trimmed.as_bytes());
        }
        let jwk: Jwk = serde_json::from_value(value).map_err(|e| KeyError::Json(e.to_string()))?;
        return keys_of(vec![jwk]);
    }
    let pem = trimmed.as_bytes();
    let key = DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .map_err(|_| KeyError::Pem)?;
    Ok(KeySet {
        keys: vec![VerifyingKey { kid: None, key }],
    })
}
