//! JWT authentication as the server runs it: the configured issuer policies, their keys (the
//! [`KeyStore`], fetched and refreshed in the background) and a moka cache of verified tokens keyed
//! by the token's SHA-256 digest (never the token), each kept until the earlier of its `exp` and the
//! cache TTL.
//!
//! The request path stays synchronous: [`JwtAuthenticator::identify`] only reads published keys.
//! When a token names a key the issuer has not published (yet), it answers
//! [`JwtFailure::NeedKeys`]; the async front end awaits [`JwtAuthenticator::refetch`] and asks again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::authn::JwtError;
use crate::authn::jwt::{self, AccountAllowList, IssuerPolicy, JwtIdentity};
use crate::config::{Jwt, Parsed};

pub mod store;

pub use store::{FetchSettings, KeySource, KeyStats, KeyStore};

/// Why JWT support could not be set up, or why a key fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// A key or CA file could not be read or parsed.
    #[error("cannot read `{path}`: {reason}", path = .0.display(), reason = .1)]
    Read(PathBuf, String),
    /// The HTTP client could not be built.
    #[error("cannot build the jwks http client: {0}")]
    Client(String),
    /// A JWKS or issuer URL that is not `https://` (or `http://` to loopback).
    #[error("`{0}` is not an https url (plain http is allowed only to loopback)")]
    Url(String),
    /// The fetch failed.
    #[error("fetching `{0}` failed: {1}")]
    Fetch(String, String),
    /// The endpoint answered with an error status.
    #[error("fetching `{0}` answered http {1}")]
    Status(String, u16),
    /// The document is not a usable JWKS or discovery document.
    #[error("`{0}` is not usable: {1}")]
    Document(String, String),
    /// The document is larger than 1 MiB.
    #[error("`{0}` is larger than 1 MiB")]
    TooLarge(String),
}

/// Why a JWT was not turned into an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtFailure {
    /// Refused.
    Invalid(JwtError),
    /// The issuer has no key for this token yet: refetch its keys, then ask again.
    NeedKeys {
        /// The issuer's index.
        issuer: usize,
        /// The token's `kid`.
        kid: Option<Box<str>>,
    },
}

impl JwtFailure {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(error) => error.code(),
            Self::NeedKeys { .. } => JwtError::UnknownKey.code(),
        }
    }
}

/// Everything needed to build a [`JwtAuthenticator`].
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Issuer policies and where each one's keys come from, in configuration order.
    pub issuers: Vec<(IssuerPolicy, KeySource)>,
    /// How keys are fetched.
    pub fetch: FetchSettings,
    /// The longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// How many verified tokens are cached.
    pub cache_capacity: u64,
    /// The longest a verified token stays cached.
    pub cache_ttl: Duration,
    /// Trust claims that Envoy's `jwt_authn` filter verified and left in this metadata namespace.
    pub envoy_metadata: Option<String>,
}

impl JwtSettings {
    /// The settings of a validated configuration's `jwt` section (`None` when it has no issuers).
    pub fn from_config(config: &Jwt, cache_capacity: u64, cache_ttl: Duration) -> Option<Self> {
        if config.issuers.is_empty() {
            return None;
        }
        let mut issuers = Vec::with_capacity(config.issuers.len());
        let mut extra_roots = Vec::new();
        for issuer in &config.issuers {
            let algorithms = issuer.algorithms.iter().map(Parsed::get).collect();
            let source = if let Some(url) = &issuer.jwks_url {
                KeySource::Jwks(url.clone())
            } else if issuer.discovery {
                KeySource::Discovery(issuer.issuer.clone())
            } else {
                KeySource::Static(issuer.keys.clone())
            };
            extra_roots.extend(issuer.ca.iter().cloned());
            let policy = IssuerPolicy {
                issuer: issuer.issuer.clone(),
                audiences: issuer.audiences.clone(),
                algorithms,
                principal_claim: issuer.principal.claim.clone(),
                principal_kind: issuer.principal.kind.get(),
                account_claim: issuer.account_claim.clone(),
                accounts: AccountAllowList::from_entries(&issuer.accounts),
                leeway_secs: issuer.leeway.get().as_secs(),
            };
            issuers.push((policy, source));
        }
        Some(Self {
            issuers,
            fetch: FetchSettings {
                refresh_interval: config.refresh_interval.get(),
                min_refetch_interval: config.refetch_interval.get(),
                timeout: FetchSettings::default().timeout,
                extra_roots,
            },
            max_token_bytes: config.max_token_bytes,
            cache_capacity,
            cache_ttl,
            envoy_metadata: config.trust_envoy_metadata.clone(),
        })
    }
}

/// Verified-token cache entries expire at the token's `exp`, or after the TTL if sooner.
struct UntilExp {
    ttl: Duration,
}

impl moka::Expiry<[u8; 32], Arc<JwtIdentity>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        identity: &Arc<JwtIdentity>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = identity.expires_at.saturating_sub(crate::clock::now_unix());
        let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
        Some(left.min(self.ttl))
    }
}

/// JWT authentication: policies, keys and the verified-token cache.
pub struct JwtAuthenticator {
    policies: Vec<IssuerPolicy>,
    store: Arc<KeyStore>,
    cache: moka::sync::Cache<[u8; 32], Arc<JwtIdentity>>,
    max_token_bytes: usize,
    envoy_metadata: Option<String>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field(
                "issuers",
                &self.policies.iter().map(|p| &p.issuer).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticator {
    /// Reads static keys and builds the store; fetched keys arrive with [`Self::start`].
    pub fn new(settings: JwtSettings) -> Result<Self, JwksError> {
        let (policies, sources): (Vec<_>, Vec<_>) = settings.issuers.into_iter().unzip();
        let store = KeyStore::new(sources, settings.fetch)?;
        Ok(Self {
            policies,
            store: Arc::new(store),
            cache: moka::sync::Cache::builder()
                .max_capacity(settings.cache_capacity)
                .expire_after(UntilExp {
                    ttl: settings.cache_ttl,
                })
                .build(),
            max_token_bytes: settings.max_token_bytes,
            envoy_metadata: settings.envoy_metadata,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Fetches every issuer's keys once (bounded by the fetch timeout), then keeps them fresh in
    /// background tasks, which stop when the returned handles are aborted.
    pub async fn start(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.store.fetch_all().await;
        (0..self.store.len())
            .map(|issuer| tokio::spawn(Arc::clone(&self.store).refresh_forever(issuer)))
            .collect()
    }

    /// The issuer policies.
    pub fn policies(&self) -> &[IssuerPolicy] {
        &self.policies
    }

    /// The key store.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// Cache hits and misses so far.
    pub fn cache_counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The metadata namespace whose `jwt_authn` claims are trusted, if configured.
    pub fn envoy_metadata(&self) -> Option<&str> {
        self.envoy_metadata.as_deref()
    }

    /// Verifies a token (or finds it verified in the cache) at `now` (Unix seconds).
    pub fn identify(&self, token: &str, now: i64) -> Result<Arc<JwtIdentity>, JwtFailure> {
        if token.len() > self.max_token_bytes {
            return Err(JwtFailure::Invalid(JwtError::TooLarge));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cache.get(&digest) {
            let leeway = self.policies.get(identity.issuer).map_or(0, |p| p.leeway_secs);
            if now
                <= identity
                    .expires_at
                    .saturating_add(i64::try_from(leeway).unwrap_or(0))
            {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(identity);
            }
            return Err(JwtFailure::Invalid(JwtError::Expired));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let issuer = jwt::peek_issuer(token)
            .and_then(|iss| jwt::issuer_index(&self.policies, &iss))
            .map_err(JwtFailure::Invalid)?;
        let policy = &self.policies[issuer];
        let need_keys = || {
            let kid = jwt::header(token, self.max_token_bytes)
                .ok()
                .and_then(|(_, kid)| kid);
            JwtFailure::NeedKeys {
                issuer,
                kid: kid.map(Into::into),
            }
        };
        let Some(keys) = self.store.keys(issuer) else {
            return Err(need_keys());
        };
        match jwt::verify(token, issuer, policy, &keys, now, self.max_token_bytes) {
            Ok(identity) => {
                let identity = Arc::new(identity);
                self.cache.insert(digest, Arc::clone(&identity));
                Ok(identity)
            }
            Err(JwtError::UnknownKey) => Err(need_keys()),
            Err(error) => Err(JwtFailure::Invalid(error)),
        }
    }

    /// Maps claims Envoy's `jwt_authn` already verified (no signature check here).
    pub fn identify_claims(&self, claims: &Map<String, Value>) -> Result<JwtIdentity, JwtError> {
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(JwtError::MissingClaim("iss"))?;
        let issuer = jwt::issuer_index(&self.policies, iss)?;
        jwt::map_claims(issuer, &self.policies[issuer], claims)
    }

    /// Refetches an issuer's keys after [`JwtFailure::NeedKeys`]; whether asking again can help.
    pub async fn refetch(&self, issuer: usize, kid: Option<&str>) -> bool {
        self.store.refetch_for_unknown_kid(issuer, kid).await
    }
}
