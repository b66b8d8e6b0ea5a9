//! Harness API tokens: `pat.<account>.<token-id>.<secret>` (a user's), `sat.<account>.<token-id>.<secret>`
//! (a service account's) and the legacy `pat.<token-id>.<secret>`. Parsing, minting, secret checks
//! against `sha256:` and bcrypt hashes, and the validity window.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::authn::error::TokenError;
use crate::rbac::compiled::{CompiledAccount, PrincipalId, SecretHash, TokenNode};

/// The longest token accepted; anything longer is malformed without further parsing.
pub const MAX_TOKEN_LEN: usize = 512;

/// Whose token it is, by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `pat.`: a user's personal access token.
    Pat,
    /// `sat.`: a service account's token.
    Sat,
}

impl TokenKind {
    /// The prefix without its dot.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Pat => "pat",
            TokenKind::Sat => "sat",
        }
    }
}

/// The parts of a token string, borrowed from it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    /// Its prefix.
    pub kind: TokenKind,
    /// The account segment (absent in the legacy 3-part form).
    pub account: Option<&'a str>,
    /// The `<token-id>` segment.
    pub id: &'a str,
    /// The secret. Never log or display it.
    pub secret: &'a str,
}

impl std::fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken")
            .field("kind", &self.kind)
            .field("account", &self.account)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Parses a token string. Errors say what is wrong, never what the token was.
pub fn parse_token(raw: &str) -> Result<ParsedToken<'_>, TokenError> {
    if raw.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("too long"));
    }
    let mut parts = [""; 4];
    let mut count = 0;
    for part in raw.split('.') {
        if count == parts.len() {
            return Err(TokenError::Malformed("too many segments"));
        }
        parts[count] = part;
        count += 1;
    }
    if count < 3 {
        return Err(TokenError::Malformed("too few segments"));
    }
    if parts[..count].iter().any(|p| p.is_empty()) {
        return Err(TokenError::Malformed("empty segment"));
    }
    if !parts[..count].iter().all(|p| p.bytes().all(is_token_char)) {
        return Err(TokenError::Malformed("unexpected character"));
    }
    let kind = match parts[0] {
        "pat" => TokenKind::Pat,
        "sat" => TokenKind::Sat,
        _ => return Err(TokenError::Malformed("unknown prefix")),
    };
    if count == 3 {
        return Ok(ParsedToken {
            kind,
            account: None,
            id: parts[1],
            secret: parts[2],
        });
    }
    Ok(ParsedToken {
        kind,
        account: Some(parts[1]),
        id: parts[2],
        secret: parts[3],
    })
}

/// Whether `secret` matches `hash`. SHA-256 is compared in constant time; bcrypt is slow (tens
/// of milliseconds), so callers cache a verified token instead of calling this per request.
pub fn verify_secret(hash: &SecretHash, secret: &str) -> bool {
    match hash {
        SecretHash::Sha256(expected) => {
            let digest = Sha256::digest(secret.as_bytes());
            bool::from(digest.as_slice().ct_eq(expected))
        }
        SecretHash::Bcrypt(stored) => bcrypt::verify(secret, stored).unwrap_or(false),
    }
}

/// Whether a token is valid at `now` (Unix seconds): `valid_from <= now < valid_to`, and before
/// `rotated_expire_at` when set.
pub fn is_valid_at(token: &TokenNode, now: i64) -> bool {
    token.valid_from <= now && now < token.valid_to && token.rotated_expire_at.is_none_or(|at| now < at)
}

/// Everything about a token that can be checked without its secret: the token exists, belongs to
/// this account, its prefix matches its owner's type, its owner is enabled and it is valid at `now`.
pub fn check_token<'a>(
    account: &'a CompiledAccount,
    token: &ParsedToken<'_>,
    now: i64,
) -> Result<&'a TokenNode, TokenError> {
    if token.account.is_some_and(|a| a != account.account()) {
        return Err(TokenError::AccountMismatch);
    }
    let node = account.token(token.id).ok_or(TokenError::Unknown)?;
    let prefix_matches = matches!(
        (token.kind, node.principal),
        (TokenKind::Pat, PrincipalId::User(_)) | (TokenKind::Sat, PrincipalId::ServiceAccount(_))
    );
    if !prefix_matches {
        return Err(TokenError::PrefixMismatch);
    }
    if account.is_disabled(node.principal) {
        return Err(TokenError::OwnerDisabled);
    }
    if !is_valid_at(node, now) {
        return Err(TokenError::Expired);
    }
    Ok(node)
}

/// A freshly minted token: shown once, stored only as `secret_hash`.
#[derive(Clone)]
pub struct MintedToken {
    /// The full token string to hand to the user.
    pub token: String,
    /// The `<token-id>` segment.
    pub id: String,
    /// `sha256:<hex>` of the secret, for the snapshot.
    pub secret_hash: String,
}

fn check_identifier(what: &'static str, value: &str) -> Result<(), TokenError> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(is_token_char) {
        return Err(TokenError::InvalidIdentifier {
            what,
            value: value.chars().take(128).collect(),
        });
    }
    Ok(())
}

fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Mints a token for `account` with a random 32-character secret (about 190 bits) and, unless
/// given, a random 16-character id.
pub fn mint(account: &str, kind: TokenKind, id: Option<&str>) -> Result<MintedToken, TokenError> {
    check_identifier("account", account)?;
    let id = match id {
        Some(id) => {
            check_identifier("id", id)?;
            id.to_owned()
        }
        None => random_alphanumeric(16),
    };
    let secret = random_alphanumeric(32);
    let secret_hash = format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())));
    let token = format!("{}.{account}.{id}.{secret}", kind.prefix());
    Ok(MintedToken {
        token,
        id,
        secret_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let t = parse_token("pat.acme.tok1.s3cret").unwrap();
        assert_eq!(
            (t.kind, t.account, t.id, t.secret),
            (TokenKind::Pat, Some("acme"), "tok1", "s3cret")
        );
        let t = parse_token("sat.acme.tok2.x").unwrap();
        assert_eq!(t.kind, TokenKind::Sat);
        let t = parse_token("pat.tok3.secret").unwrap();
        assert_eq!((t.account, t.id), (None, "tok3"));
    }

    #[test]
    fn rejects_malformed_tokens_without_echoing_them() {
        for (raw, why) in [
            ("pat.only", "too few segments"),
            ("pat.a.b.c.d", "too many segments"),
            ("pat..b.c", "empty segment"),
            ("pat.a.b.", "empty segment"),
            ("xyz.a.b.c", "unknown prefix"),
            ("pat.a.b.sécret", "unexpected character"),
            ("pat.a b.c.d", "unexpected character"),
        ] {
            let err = parse_token(raw).unwrap_err();
            assert_eq!(err, TokenError::Malformed(why), "{raw}");
            assert!(!err.to_string().contains(raw));
        }
        assert_eq!(
            parse_token(&"a".repeat(600)).unwrap_err(),
            TokenError::Malformed("too long")
        );
    }

    #[test]
    fn minted_tokens_verify_against_their_hash_only() {
        let minted = mint("acme", TokenKind::Sat, Some("ci_token")).unwrap();
        assert!(minted.token.starts_with("sat.acme.ci_token."));
        let parsed = parse_token(&minted.token).unwrap();
        let hash = SecretHash::parse(&minted.secret_hash).unwrap();
        assert!(verify_secret(&hash, parsed.secret));
        assert!(!verify_secret(&hash, "wrong"));
        let other = mint("acme", TokenKind::Sat, None).unwrap();
        assert_ne!(other.id, minted.id);
        assert_eq!(other.id.len(), 16);
    }

    #[test]
    fn bcrypt_hashes_verify() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let parsed = SecretHash::parse(&hash).unwrap();
        assert!(verify_secret(&parsed, "s3cret"));
        assert!(!verify_secret(&parsed, "s3cret!"));
    }

    #[test]
    fn mint_refuses_bad_identifiers() {
        assert!(matches!(
            mint("ac.me", TokenKind::Pat, None),
            Err(TokenError::InvalidIdentifier { what: "account", .. })
        ));
        assert!(matches!(
            mint("acme", TokenKind::Pat, Some("a/b")),
            Err(TokenError::InvalidIdentifier { what: "id", .. })
        ));
    }
}
