//! Errors of credential handling. Messages never contain a token or a secret.

/// Why a credential was not accepted (or a token could not be minted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not `pat.<account>.<id>.<secret>`, `sat.<account>.<id>.<secret>` or `pat.<id>.<secret>`.
    #[error("malformed api token: {0}")]
    Malformed(&'static str),
    /// No token with this id exists in the account.
    #[error("unknown api token")]
    Unknown,
    /// The secret does not match the stored hash.
    #[error("api token secret does not match")]
    SecretMismatch,
    /// The token is outside its validity window.
    #[error("api token is not valid at this time")]
    Expired,
    /// The token's account segment names another account.
    #[error("api token belongs to another account")]
    AccountMismatch,
    /// `pat.` on a service account's key or `sat.` on a user's key.
    #[error("api token prefix does not match its owner")]
    PrefixMismatch,
    /// The owner is a disabled user.
    #[error("api token owner is disabled")]
    OwnerDisabled,
    /// An identifier for a new token is unusable.
    #[error("invalid {what} `{value}`: use ASCII letters, digits, `_` or `-`")]
    InvalidIdentifier {
        /// `account` or `id`.
        what: &'static str,
        /// The rejected value (never a secret).
        value: String,
    },
}

impl TokenError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "token_malformed",
            Self::Unknown => "token_unknown",
            Self::SecretMismatch => "token_secret_mismatch",
            Self::Expired => "token_expired",
            Self::AccountMismatch => "token_account_mismatch",
            Self::PrefixMismatch => "token_prefix_mismatch",
            Self::OwnerDisabled => "token_owner_disabled",
            Self::InvalidIdentifier { .. } => "token_invalid_identifier",
        }
    }
}

/// Why a JWT (or trusted JWT claims) was not accepted. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a readable JWS compact token.
    #[error("malformed jwt: {0}")]
    Malformed(&'static str),
    /// Longer than the configured maximum.
    #[error("jwt is too large")]
    TooLarge,
    /// `iss` names no configured issuer.
    #[error("jwt issuer is not trusted")]
    UnknownIssuer,
    /// The header's algorithm is not on the issuer's allow-list (or is `none`, or HMAC).
    #[error("jwt algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The algorithm does not belong to the key's type (e.g. HS256 against an RSA key).
    #[error("jwt algorithm does not match the key type")]
    AlgorithmKeyMismatch,
    /// No key of the issuer matches the header's `kid` (after a refetch).
    #[error("jwt signing key is unknown")]
    UnknownKey,
    /// The issuer's keys could not be fetched and none are known.
    #[error("jwt signing keys are unavailable")]
    KeysUnavailable,
    /// The signature does not verify.
    #[error("jwt signature does not verify")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("jwt has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("jwt is not valid yet")]
    NotYetValid,
    /// `aud` matches none of the configured audiences.
    #[error("jwt audience is not accepted")]
    WrongAudience,
    /// `iss` does not match the issuer.
    #[error("jwt issuer does not match")]
    WrongIssuer,
    /// A required claim is absent.
    #[error("jwt lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type.
    #[error("jwt claim `{0}` is invalid")]
    InvalidClaim(&'static str),
    /// The account claim names another account than the request.
    #[error("jwt belongs to another account")]
    AccountMismatch,
    /// The issuer is not trusted for the account (claimed, or the request's).
    #[error("jwt issuer is not trusted for this account")]
    AccountNotAllowed,
    /// The header carries `crit`, naming extensions scopegate does not understand.
    #[error("jwt header names critical extensions that are not understood")]
    CriticalHeader,
    /// The principal is not in the account's snapshot.
    #[error("jwt principal is unknown")]
    UnknownPrincipal,
    /// The principal is a disabled user.
    #[error("jwt principal is disabled")]
    PrincipalDisabled,
}

impl JwtError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "jwt_malformed",
            Self::TooLarge => "jwt_too_large",
            Self::UnknownIssuer => "jwt_unknown_issuer",
            Self::AlgorithmNotAllowed => "jwt_algorithm_not_allowed",
            Self::AlgorithmKeyMismatch => "jwt_algorithm_key_mismatch",
            Self::UnknownKey => "jwt_unknown_key",
            Self::KeysUnavailable => "jwt_keys_unavailable",
            Self::BadSignature => "jwt_bad_signature",
            Self::Expired => "jwt_expired",
            Self::NotYetValid => "jwt_not_yet_valid",
            Self::WrongAudience => "jwt_wrong_audience",
            Self::WrongIssuer => "jwt_wrong_issuer",
            Self::MissingClaim(_) => "jwt_missing_claim",
            Self::InvalidClaim(_) => "jwt_invalid_claim",
            Self::AccountMismatch => "jwt_account_mismatch",
            Self::AccountNotAllowed => "jwt_account_not_allowed",
            Self::CriticalHeader => "jwt_critical_header",
            Self::UnknownPrincipal => "jwt_unknown_principal",
            Self::PrincipalDisabled => "jwt_principal_disabled",
        }
    }
}

/// Why a key or key set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not JSON of a JWK or JWK set.
    #[error("not a json web key set: {0}")]
    Json(String),
    /// Not a PEM public key (RSA, EC or Ed25519).
    #[error("not a pem public key (rsa, ec p-256/p-384 or ed25519)")]
    Pem,
    /// A symmetric (HMAC) key, which is never accepted.
    #[error("key `{0}` is symmetric (oct): only rsa, ec and ed25519 public keys are accepted")]
    Symmetric(String),
    /// A key that cannot be used (unsupported type or bad parameters).
    #[error("key `{0}` is unusable: {1}")]
    Unusable(String, String),
    /// No usable key at all.
    #[error("no usable key")]
    Empty,
}
