//! The `jwt` section of the configuration: trusted issuers, where their keys come from, how their
//! claims name a principal, and the limits applied to every token.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::{ConfigError, FromSetting, Parsed, is_url};
use crate::authn::jwt::PrincipalKind;

/// `jwt`: accepted JWT issuers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Jwt {
    /// The issuers; default: empty (JWTs are not accepted).
    pub issuers: Vec<Issuer>,
    /// The longest token accepted, in bytes; default: `8192`.
    pub max_token_bytes: usize,
    /// How often fetched keys are refreshed when the endpoint sends no `Cache-Control: max-age`;
    /// default: `10m`.
    pub refresh_interval: Parsed<Duration>,
    /// The least time between two refetches of an issuer's keys for an unknown `kid`; default: `30s`.
    pub refetch_interval: Parsed<Duration>,
    /// Trust the claims Envoy's `jwt_authn` filter verified and wrote to this dynamic-metadata
    /// namespace (`payload_in_metadata`), without verifying the token again; default: none.
    pub trust_envoy_metadata: Option<String>,
}

impl Default for Jwt {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            max_token_bytes: crate::authn::jwt::DEFAULT_MAX_TOKEN_BYTES,
            refresh_interval: Parsed::new(Duration::from_secs(10 * 60)),
            refetch_interval: Parsed::new(Duration::from_secs(30)),
            trust_envoy_metadata: None,
        }
    }
}

/// One JWT issuer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Issuer {
    /// The `iss` claim; default: empty, which is invalid.
    pub issuer: String,
    /// Accepted `aud` values; default: empty (any audience).
    pub audiences: Vec<String>,
    /// Where the signing keys are published; default: none. Exactly one of `jwks_url`, `keys` and
    /// `discovery` is required.
    pub jwks_url: Option<String>,
    /// Signing keys as PEM or JWK/JWKS files, read at start; default: empty.
    pub keys: Vec<PathBuf>,
    /// Find the JWKS through OIDC discovery (`<issuer>/.well-known/openid-configuration`); default: `false`.
    pub discovery: bool,
    /// Extra root certificates (PEM) for fetching this issuer's keys; default: none (the Mozilla roots).
    pub ca: Option<PathBuf>,
    /// Clock-skew allowance for `exp` and `nbf`; default: `30s`.
    pub leeway: Parsed<Duration>,
    /// Accepted algorithms (asymmetric ones: see [`super::ALGORITHMS`]); default: `[RS256, ES256]`.
    pub algorithms: Vec<Parsed<Algorithm>>,
    /// Which claim names the principal and what it is; default: `{claim: sub, type: USER}`.
    pub principal: PrincipalClaim,
    /// The claim naming the account, which every token must then carry; `null`: tokens name no
    /// account and act in the request's account; default: `account`.
    pub account_claim: Option<String>,
    /// The accounts this issuer is trusted for; default: `["*"]` (every account, as before the list
    /// existed: list them to bind an issuer to its accounts); an empty list is an error. A token
    /// whose account (its claim, or the request's) is not listed is refused
    /// (`jwt_account_not_allowed`).
    pub accounts: Vec<String>,
}

impl Default for Issuer {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audiences: Vec::new(),
            jwks_url: None,
            keys: Vec::new(),
            discovery: false,
            ca: None,
            leeway: Parsed::new(Duration::from_secs(30)),
            algorithms: vec![Parsed::new(Algorithm::RS256), Parsed::new(Algorithm::ES256)],
            principal: PrincipalClaim::default(),
            account_claim: Some("account".to_owned()),
            accounts: vec!["*".to_owned()],
        }
    }
}

/// `jwt.issuers[].principal`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrincipalClaim {
    /// The claim holding the principal's identifier; default: `sub`.
    pub claim: String,
    /// `USER` or `SERVICE_ACCOUNT`; default: `USER`.
    #[serde(rename = "type")]
    pub kind: Parsed<PrincipalKind>,
}

impl Default for PrincipalClaim {
    fn default() -> Self {
        Self {
            claim: "sub".to_owned(),
            kind: Parsed::new(PrincipalKind::User),
        }
    }
}

impl FromSetting for PrincipalKind {
    fn from_setting(text: &str) -> Option<Self> {
        match text {
            "USER" => Some(Self::User),
            "SERVICE_ACCOUNT" => Some(Self::ServiceAccount),
            _ => None,
        }
    }

    fn fallback() -> Self {
        Self::User
    }
}

impl Jwt {
    /// Adds every error of the `jwt` section to `errors`.
    pub(crate) fn validate(&self, errors: &mut Vec<ConfigError>) {
        for (i, issuer) in self.issuers.iter().enumerate() {
            validate_issuer(i, issuer, errors);
        }
        if self.max_token_bytes == 0 {
            errors.push(ConfigError::Zero {
                field: "jwt.max_token_bytes".to_owned(),
            });
        }
        for (field, value) in [
            ("jwt.refresh_interval", &self.refresh_interval),
            ("jwt.refetch_interval", &self.refetch_interval),
        ] {
            duration(field, value, errors);
        }
        if self.trust_envoy_metadata.as_deref() == Some("") {
            errors.push(ConfigError::Empty {
                field: "jwt.trust_envoy_metadata".to_owned(),
            });
        }
    }
}

fn duration(field: &str, value: &Parsed<Duration>, errors: &mut Vec<ConfigError>) {
    if let Some(text) = value.rejected() {
        errors.push(ConfigError::Duration {
            field: field.to_owned(),
            value: text.to_owned(),
        });
    }
}

fn validate_issuer(i: usize, issuer: &Issuer, errors: &mut Vec<ConfigError>) {
    let at = format!("jwt.issuers[{i}]");
    if issuer.issuer.is_empty() {
        errors.push(ConfigError::Empty {
            field: format!("{at}.issuer"),
        });
    }
    let sources = usize::from(issuer.jwks_url.is_some())
        + usize::from(!issuer.keys.is_empty())
        + usize::from(issuer.discovery);
    if sources != 1 {
        errors.push(ConfigError::JwtKeys { field: at.clone() });
    }
    if issuer.discovery && !is_url(&issuer.issuer) {
        errors.push(ConfigError::Url {
            field: format!("{at}.issuer"),
            value: issuer.issuer.clone(),
        });
    }
    duration(&format!("{at}.leeway"), &issuer.leeway, errors);
    if let Some(url) = &issuer.jwks_url
        && !is_url(url)
    {
        errors.push(ConfigError::Url {
            field: format!("{at}.jwks_url"),
            value: url.clone(),
        });
    }
    for (k, key) in issuer.keys.iter().enumerate() {
        if key.as_os_str().is_empty() {
            errors.push(ConfigError::Empty {
                field: format!("{at}.keys[{k}]"),
            });
        }
    }
    if issuer.algorithms.is_empty() {
        errors.push(ConfigError::Empty {
            field: format!("{at}.algorithms"),
        });
    }
    for alg in issuer.algorithms.iter().filter_map(Parsed::rejected) {
        errors.push(ConfigError::Algorithm {
            field: format!("{at}.algorithms"),
            value: alg.to_owned(),
        });
    }
    if issuer.principal.claim.is_empty() {
        errors.push(ConfigError::Empty {
            field: format!("{at}.principal.claim"),
        });
    }
    if let Some(kind) = issuer.principal.kind.rejected() {
        errors.push(ConfigError::PrincipalType {
            field: format!("{at}.principal.type"),
            value: kind.to_owned(),
        });
    }
    if issuer.account_claim.as_deref() == Some("") {
        errors.push(ConfigError::Empty {
            field: format!("{at}.account_claim"),
        });
    }
    if issuer.accounts.is_empty() {
        errors.push(ConfigError::Empty {
            field: format!("{at}.accounts"),
        });
    }
    for account in &issuer.accounts {
        let identifier = !account.is_empty()
            && account
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if account != "*" && !identifier {
            errors.push(ConfigError::JwtAccount {
                field: format!("{at}.accounts"),
                value: account.clone(),
            });
        }
    }
}
