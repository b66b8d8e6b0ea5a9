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
