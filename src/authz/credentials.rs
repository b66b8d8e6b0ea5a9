//! Credentials on the request path, in one place: the credential header read once
//! ([`crate::authn::header`]), API keys checked against the account's snapshot through the
//! verified-token cache with bcrypt kept off the async workers, JWTs verified through the issuers'
//! key store ([`crate::jwks`]); every refusal is one [`CredentialError`]. `scopegate check --token`
//! verifies a credential with the same code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::authn::api_key::check_token;
use crate::authn::jwt::{JwtIdentity, PrincipalKind, looks_like_jwt, principal_in};
use crate::authn::{JwtError, ParsedToken, TokenError, header, parse_token, verify_secret};
use crate::authz::verdict::{Denial, Facts};
use crate::jwks::{JwtAuthenticator, JwtFailure};
use crate::rbac::CompiledAccount;
use crate::rbac::compiled::{PrincipalId, SecretHash};
use crate::rbac::ids::PermissionSet;

mod verified_tokens;

pub use verified_tokens::{
    Checked, SecretCheck, SlowCheckCounts, VerifiedToken, VerifiedTokens, default_slow_limit,
};

/// Why a credential does not name a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No credential was presented.
    #[error("no credential presented")]
    Missing,
    /// An API token that is malformed, unknown, expired, of another account or whose secret does
    /// not match.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A JWT (or proxy-verified claims) that is refused.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// A JWT, while no JWT issuer is configured.
    #[error("a jwt is presented but no jwt issuer is configured")]
    JwtNotConfigured,
    /// Too many slow (bcrypt) secret checks are running to verify this one now.
    #[error("too many credentials are being verified")]
    Busy,
    /// A JWT names a signing key its issuer has not published (yet).
    #[error("jwt signing key is unknown")]
    UnknownSigningKey {
        /// The issuer's index in the configuration.
        issuer: usize,
        /// The token's `kid`.
        kid: Option<Box<str>>,
    },
}

impl From<CredentialError> for Denial {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::Missing => Self::MissingCredentials,
            CredentialError::Token(error) => Self::InvalidCredentials { reason: error.code() },
            CredentialError::Jwt(error) => Self::InvalidCredentials { reason: error.code() },
            CredentialError::JwtNotConfigured => Self::InvalidCredentials {
                reason: "jwt_not_configured",
            },
            CredentialError::Busy => Self::VerificationBusy,
            CredentialError::UnknownSigningKey { issuer, kid } => Self::UnknownSigningKey { issuer, kid },
        }
    }
}

impl From<JwtFailure> for CredentialError {
    fn from(failure: JwtFailure) -> Self {
        match failure {
            JwtFailure::Invalid(error) => Self::Jwt(error),
            JwtFailure::NeedKeys { issuer, kid } => Self::UnknownSigningKey { issuer, kid },
        }
    }
}

/// A presented credential, parsed (API key) or verified (JWT) as far as possible before the
/// account is known.
#[derive(Debug, Clone)]
pub enum Credential<'a> {
    /// An API token, parsed.
    ApiKey(ParsedToken<'a>),
    /// A verified JWT's identity.
    Jwt(Arc<JwtIdentity>),
}

impl Credential<'_> {
    /// The account the credential names, which routes without an account in the URL use.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::ApiKey(token) => token.account,
            Self::Jwt(identity) => identity.account.as_deref(),
        }
    }

    /// The API token's `<token-id>` (`None` for a JWT).
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Self::ApiKey(token) => Some(token.id),
            Self::Jwt(_) => None,
        }
    }

    /// Refuses a credential that names another account than the request's, before anything is
    /// looked up or loaded for the request's account: a token of `acme` used for `other` is a 401,
    /// never a snapshot load.
    pub fn fits_account(&self, account: &str) -> Result<(), CredentialError> {
        match (self, self.account()) {
            (Self::ApiKey(_), Some(own)) if own != account => Err(TokenError::AccountMismatch.into()),
            (Self::Jwt(_), Some(own)) if own != account => Err(JwtError::AccountMismatch.into()),
            _ => Ok(()),
        }
    }
}

/// The principal a credential names in an account, and its API key's permission subset.
pub type Holder<'acc> = (PrincipalId, Option<&'acc PermissionSet>);

/// API-key and JWT verification with their caches.
#[derive(Debug)]
pub struct Credentials {
    /// Verified API tokens, bound to account, token id and stored hash (never the token).
    tokens: VerifiedTokens,
    jwt: Option<Arc<JwtAuthenticator>>,
    api_key_hits: AtomicU64,
    api_key_misses: AtomicU64,
}

impl Credentials {
    /// API keys cached up to `capacity` for `ttl`; JWTs through `jwt` when issuers are configured.
    pub fn new(capacity: u64, ttl: Duration, jwt: Option<Arc<JwtAuthenticator>>) -> Self {
        Self {
            tokens: VerifiedTokens::new(capacity, ttl, default_slow_limit()),
            jwt,
            api_key_hits: AtomicU64::new(0),
            api_key_misses: AtomicU64::new(0),
        }
    }

    /// JWT authentication, when issuers are configured.
    pub fn jwt(&self) -> Option<&JwtAuthenticator> {
        self.jwt.as_deref()
    }

    /// The verified-token cache of API keys.
    pub fn token_cache(&self) -> &VerifiedTokens {
        &self.tokens
    }

    /// API-key cache lookups: (hits, misses).
    pub fn api_key_cache_counts(&self) -> (u64, u64) {
        (
            self.api_key_hits.load(Ordering::Relaxed),
            self.api_key_misses.load(Ordering::Relaxed),
        )
    }

    /// The Envoy metadata namespace whose JWT claims are trusted, if one is configured.
    pub fn envoy_metadata(&self) -> Option<&str> {
        self.jwt()?.envoy_metadata()
    }

    /// Reads the credential: trusted proxy-verified claims first, else the request's header.
    pub fn read<'a>(
        &self,
        headers: &dyn Fn(&str) -> Option<&'a str>,
        verified_claims: Option<&Map<String, Value>>,
        now: i64,
    ) -> Result<Credential<'a>, CredentialError> {
        if let (Some(claims), Some(jwt)) = (verified_claims, self.jwt()) {
            return Ok(Credential::Jwt(Arc::new(jwt.identify_claims(claims)?)));
        }
        let raw = header::credential(headers).ok_or(CredentialError::Missing)??;
        self.parse(raw, now)
    }

    /// Parses (API key) or verifies (JWT) a raw credential string.
    pub fn parse<'a>(&self, raw: &'a str, now: i64) -> Result<Credential<'a>, CredentialError> {
        if looks_like_jwt(raw) {
            let jwt = self.jwt().ok_or(CredentialError::JwtNotConfigured)?;
            return Ok(Credential::Jwt(jwt.identify(raw, now)?));
        }
        Ok(Credential::ApiKey(parse_token(raw)?))
    }

    /// The principal `credential` names in `account` at `now`, with its API key's permission subset.
    pub fn holder<'acc>(
        &self,
        account: &'acc CompiledAccount,
        credential: &Credential<'_>,
        now: i64,
    ) -> Result<Holder<'acc>, CredentialError> {
        match credential {
            Credential::ApiKey(token) => self.api_key_holder(account, token, now),
            Credential::Jwt(identity) => Ok((principal_in(account, identity)?, None)),
        }
    }

    fn api_key_holder<'acc>(
        &self,
        account: &'acc CompiledAccount,
        token: &ParsedToken<'_>,
        now: i64,
    ) -> Result<Holder<'acc>, CredentialError> {
        let node = check_token(account, token, now)?;
        let checked = self.tokens.check(
            account.account(),
            token.id,
            token.secret,
            &node.secret_hash,
            verify_without_stalling_the_runtime,
        );
        let counter = if checked.cache_hit {
            &self.api_key_hits
        } else {
            &self.api_key_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match checked.result {
            SecretCheck::Valid => Ok((node.principal, node.permissions.as_ref())),
            SecretCheck::Invalid => Err(TokenError::SecretMismatch.into()),
            SecretCheck::Busy => Err(CredentialError::Busy),
        }
    }

    /// Names the credential in `facts`: an API key by its id, a verified JWT by issuer and principal.
    pub fn describe(&self, credential: &Credential<'_>, facts: &mut Facts) {
        match credential {
            Credential::ApiKey(token) => facts.token_id = Some(token.id.to_owned()),
            Credential::Jwt(identity) => {
                facts.issuer = self
                    .jwt()
                    .and_then(|jwt| jwt.policies().get(identity.issuer))
                    .map(|policy| policy.issuer.clone());
                let kind = match identity.kind {
                    PrincipalKind::User => "USER",
                    PrincipalKind::ServiceAccount => "SERVICE_ACCOUNT",
                };
                facts.principal = Some(format!("{kind}:{}", identity.principal));
            }
        }
    }

    /// Fetches what `denial` says is missing (an issuer's new signing keys); returns whether
    /// asking again may answer differently.
    pub async fn fetch_missing(&self, denial: &Denial) -> bool {
        match (denial, &self.jwt) {
            (Denial::UnknownSigningKey { issuer, kid }, Some(jwt)) => {
                jwt.refetch(*issuer, kid.as_deref()).await
            }
            _ => false,
        }
    }
}

/// Checks a secret against its hash. bcrypt takes tens of milliseconds, so on a multi-threaded tokio
/// runtime it runs under `block_in_place`: the worker hands its other tasks to its peers first and
/// in-flight checks of other requests keep flowing. SHA-256 runs inline.
fn verify_without_stalling_the_runtime(hash: &SecretHash, secret: &str) -> bool {
    let slow = matches!(hash, SecretHash::Bcrypt(_));
    let on_multi_thread = slow
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_multi_thread {
        tokio::task::block_in_place(|| verify_secret(hash, secret))
    } else {
        verify_secret(hash, secret)
    }
}
