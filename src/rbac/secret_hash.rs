//! How an API token's secret is stored in a compiled account, and how its snapshot text is read.

/// How an API token's secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretHash {
    /// `sha256:<hex>`: the SHA-256 digest of the secret.
    Sha256([u8; 32]),
    /// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt(Box<str>),
}

/// Why a `secret_hash` text is not a [`SecretHash`]. The message never echoes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretHashError {
    /// `sha256:` is not followed by exactly 64 hex digits.
    #[error("`secret_hash` must be `sha256:` followed by 64 hex digits")]
    Sha256Digest,
    /// Neither `sha256:` nor a 60-character bcrypt hash.
    #[error("`secret_hash` must be `sha256:<hex>` or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`)")]
    UnknownScheme,
}

impl SecretHash {
    /// Parses `sha256:<64 hex>` or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`, 60 characters).
    pub fn parse(text: &str) -> Result<SecretHash, SecretHashError> {
        if let Some(hex_digest) = text.strip_prefix("sha256:") {
            let mut digest = [0u8; 32];
            return hex::decode_to_slice(hex_digest, &mut digest)
                .map(|()| SecretHash::Sha256(digest))
                .map_err(|_| SecretHashError::Sha256Digest);
        }
        let is_bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) && text.len() == 60;
        if is_bcrypt {
            return Ok(SecretHash::Bcrypt(text.into()));
        }
        Err(SecretHashError::UnknownScheme)
    }
}
