//! JWT bearer tokens from an identity provider: choose the issuer, verify the signature with a key
//! handed in, check `iss`, `aud`, `exp` and `nbf`, and map the claims to an identity (a principal
//! name and type, and the account when a claim names it).
//!
//! Pure: keys come from [`KeySet`]s the caller fetched (see `crate::jwks`), and the time is a
//! parameter. Safety rules applied here, not left to configuration:
//! - `alg: none` and HMAC are never accepted (the algorithm list only holds asymmetric algorithms);
//! - the key's type fixes the algorithm family, so an RSA public key can never act as an HMAC secret;
//! - the token's size is bounded before anything is decoded;
//! - a header with `crit` is refused (RFC 7515 §4.1.11: scopegate understands no extension);
//! - with audiences configured, `aud` is required and must be a string or a list of strings;
//! - an issuer is trusted only for the accounts on its allow-list, and when an account claim is
//!   configured every token must carry it.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use crate::authn::error::JwtError;
use crate::rbac::CompiledAccount;
use crate::rbac::compiled::PrincipalId;

/// The longest JWT accepted by default, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;

/// The principal type a JWT names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A user of the snapshot.
    User,
    /// A service account of the snapshot (`id`, or `org[/project]/id` when not unique).
    ServiceAccount,
}

/// How the tokens of one issuer are verified and mapped.
#[derive(Debug, Clone)]
pub struct IssuerPolicy {
    /// The exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values; empty accepts any audience.
    pub audiences: Vec<String>,
    /// Accepted algorithms (never `none`, never HMAC).
    pub algorithms: Vec<Algorithm>,
    /// The claim naming the principal.
    pub principal_claim: String,
    /// What the principal claim names.
    pub principal_kind: PrincipalKind,
    /// The claim naming the account, which every token must then carry; `None`: tokens name no
    /// account and the request's account is used.
    pub account_claim: Option<String>,
    /// The accounts this issuer is trusted for.
    pub accounts: AccountAllowList,
    /// Clock-skew allowance for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// The accounts an issuer's tokens may act in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAllowList {
    /// Every account (configured explicitly as `["*"]`).
    Any,
    /// Only these account identifiers.
    Only(Arc<[Box<str>]>),
}

impl AccountAllowList {
    /// The allow-list of configured entries: `["*"]` is every account, anything else exactly those.
    pub fn from_entries<S: AsRef<str>>(entries: &[S]) -> Self {
        if entries.iter().any(|e| e.as_ref() == "*") {
            Self::Any
        } else {
            Self::Only(entries.iter().map(|e| e.as_ref().into()).collect())
        }
    }

    /// Whether `account` is on the list.
    pub fn allows(&self, account: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(accounts) => accounts.iter().any(|a| &**a == account),
        }
    }
}

/// One verification key of an issuer.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key id (`kid`), when published with one.
    pub kid: Option<String>,
    /// The public key; its family (RSA, EC, Ed25519) fixes the algorithms it verifies.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.key.family())
            .finish()
    }
}

/// The keys of one issuer.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// The keys, in publication order.
    pub keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// The key for a token header: the key with the token's `kid`; else (no `kid`, or none matches)
    /// the only key of the algorithm's family that was published without a `kid` (a PEM file).
    /// `None` when no such key is known.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey> {
        if let Some(kid) = kid
            && let Some(key) = self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
        {
            return Some(key);
        }
        let mut anonymous = self
            .keys
            .iter()
            .filter(|k| k.kid.is_none() && k.key.family() == alg.family());
        let first = anonymous.next()?;
        anonymous.next().is_none().then_some(first)
    }

    /// Whether the set holds a key with this id.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Who a verified token (or trusted claims) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The index of the issuer policy that accepted it.
    pub issuer: usize,
    /// The principal's identifier from the principal claim.
    pub principal: Box<str>,
    /// What the principal is.
    pub kind: PrincipalKind,
    /// The account from the account claim (always present when the issuer has an account claim).
    pub account: Option<Box<str>>,
    /// The accounts the issuer is trusted for; checked against the request's account by
    /// [`principal_in`].
    pub allowed_accounts: AccountAllowList,
    /// `exp` (Unix seconds); `i64::MAX` for trusted claims without one.
    pub expires_at: i64,
}

/// Whether a credential has the shape of a JWS compact token (`eyJ….….…`), as opposed to an API key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The unverified `iss` claim: used only to pick the issuer policy and its keys.
pub fn peek_issuer(token: &str) -> Result<String, JwtError> {
    #[derive(serde::Deserialize)]
    struct IssuerOnly {
        iss: Option<String>,
    }
    let claims: IssuerOnly = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| JwtError::Malformed("unreadable payload"))?;
    claims.iss.ok_or(JwtError::MissingClaim("iss"))
}

/// The index of the policy for this `iss`.
pub fn issuer_index(policies: &[IssuerPolicy], iss: &str) -> Result<usize, JwtError> {
    policies
        .iter()
        .position(|p| p.issuer == iss)
        .ok_or(JwtError::UnknownIssuer)
}

/// The header fields a caller needs before verifying: the algorithm and the key id.
pub fn header(token: &str, max_bytes: usize) -> Result<(Algorithm, Option<String>), JwtError> {
    if token.len() > max_bytes {
        return Err(JwtError::TooLarge);
    }
    // jsonwebtoken does not act on `crit`; RFC 7515 §4.1.11 requires refusing a JWS whose `crit`
    // names an extension the recipient does not understand, and scopegate understands none (an
    // empty or malformed `crit` is invalid too).
    if raw_header(token).is_some_and(|h| h.contains_key("crit")) {
        return Err(JwtError::CriticalHeader);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        if names_an_algorithm(token) {
            // `none`, or a name jsonwebtoken does not know: refused for its algorithm
            JwtError::AlgorithmNotAllowed
        } else {
            JwtError::Malformed("unreadable header")
        }
    })?;
    Ok((header.alg, header.kid))
}

/// The header as a JSON object, when it decodes to one.
fn raw_header(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine;
    let (header, _) = token.split_once('.')?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
}

/// Whether the header is JSON with a string `alg` (used only to name why it was refused).
fn names_an_algorithm(token: &str) -> bool {
    raw_header(token).is_some_and(|h| h.get("alg").is_some_and(Value::is_string))
}

/// Verifies `token` against `policy` (at index `issuer`) with `keys`, at `now` (Unix seconds).
pub fn verify(
    token: &str,
    issuer: usize,
    policy: &IssuerPolicy,
    keys: &KeySet,
    now: i64,
    max_bytes: usize,
) -> Result<JwtIdentity, JwtError> {
    let (alg, kid) = header(token, max_bytes)?;
    if !policy.algorithms.contains(&alg) {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    let key = keys.find(kid.as_deref(), alg).ok_or(JwtError::UnknownKey)?;
    if key.key.family() != alg.family() {
        return Err(JwtError::AlgorithmKeyMismatch);
    }
    let mut validation = Validation::new(alg);
    // exp and nbf are checked below against `now`, so results do not depend on the wall clock here.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    // jsonwebtoken checks `iss` and `aud` only when present (and readable): both are required here,
    // `aud` when audiences are configured, or a token without one (or with a non-string one) would pass.
    validation.required_spec_claims.clear();
    validation.required_spec_claims.insert("iss".to_owned());
    validation.set_issuer(&[policy.issuer.as_str()]);
    // `aud` is checked below: jsonwebtoken accepts a token without `aud`, or with one it cannot
    // parse, even when audiences are set.
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => JwtError::MissingClaim("iss"),
            ErrorKind::MissingRequiredClaim(_) => JwtError::MissingClaim("aud"),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtError::AlgorithmNotAllowed,
            _ => JwtError::Malformed("undecodable token"),
        })?
        .claims;
    check_audience(&claims, &policy.audiences)?;
    check_times(&claims, policy.leeway_secs, now)?;
    map_claims(issuer, policy, &claims)
}

/// With `audiences` configured, `aud` is required: a string, or a list of strings, one of which is
/// accepted. Without, `aud` is not looked at.
fn check_audience(claims: &Map<String, Value>, audiences: &[String]) -> Result<(), JwtError> {
    if audiences.is_empty() {
        return Ok(());
    }
    let accepted = |aud: &str| audiences.iter().any(|a| a == aud);
    let matches = match claims.get("aud") {
        None | Some(Value::Null) => return Err(JwtError::MissingClaim("aud")),
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(list)) => {
            let mut any = false;
            for member in list {
                let Value::String(aud) = member else {
                    return Err(JwtError::InvalidClaim("aud"));
                };
                any |= accepted(aud);
            }
            any
        }
        Some(_) => return Err(JwtError::InvalidClaim("aud")),
    };
    if matches {
        Ok(())
    } else {
        Err(JwtError::WrongAudience)
    }
}

fn check_times(claims: &Map<String, Value>, leeway: u64, now: i64) -> Result<(), JwtError> {
    let leeway = i64::try_from(leeway).unwrap_or(i64::MAX);
    let exp = numeric_date(claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(JwtError::NotYetValid);
    }
    Ok(())
}

fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            // NumericDate may carry a fraction; whole seconds are what matter here
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(JwtError::InvalidClaim(name)),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

/// Maps claims (verified here, or by Envoy's `jwt_authn`) to an identity under `policy`.
pub fn map_claims(
    issuer: usize,
    policy: &IssuerPolicy,
    claims: &Map<String, Value>,
) -> Result<JwtIdentity, JwtError> {
    let principal = match claims.get(&policy.principal_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        None | Some(Value::Null) => return Err(JwtError::MissingClaim("principal")),
        Some(_) => return Err(JwtError::InvalidClaim("principal")),
    };
    let account = match policy.account_claim.as_deref().map(|claim| claims.get(claim)) {
        None => None,
        Some(None | Some(Value::Null)) => return Err(JwtError::MissingClaim("account")),
        Some(Some(Value::String(s))) if !s.is_empty() => Some(Box::<str>::from(s.as_str())),
        Some(Some(_)) => return Err(JwtError::InvalidClaim("account")),
    };
    if let Some(account) = &account
        && !policy.accounts.allows(account)
    {
        return Err(JwtError::AccountNotAllowed);
    }
    let expires_at = numeric_date(claims, "exp")?.unwrap_or(i64::MAX);
    Ok(JwtIdentity {
        issuer,
        principal: principal.into(),
        kind: policy.principal_kind,
        account,
        allowed_accounts: policy.accounts.clone(),
        expires_at,
    })
}

/// The snapshot principal a verified identity names in the request's `account`: the token must
/// belong to this account (when it names one), its issuer must be trusted for the account, and the
/// principal must exist and be enabled.
pub fn principal_in(account: &CompiledAccount, identity: &JwtIdentity) -> Result<PrincipalId, JwtError> {
    if identity
        .account
        .as_deref()
        .is_some_and(|a| a != account.account())
    {
        return Err(JwtError::AccountMismatch);
    }
    if !identity.allowed_accounts.allows(account.account()) {
        return Err(JwtError::AccountNotAllowed);
    }
    let principal = match identity.kind {
        PrincipalKind::User => account.user(&identity.principal),
        PrincipalKind::ServiceAccount => account.service_account_by_name(&identity.principal),
    }
    .ok_or(JwtError::UnknownPrincipal)?;
    if account.is_disabled(principal) {
        return Err(JwtError::PrincipalDisabled);
    }
    Ok(principal)
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
