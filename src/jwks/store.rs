//! The key store: each issuer's current [`KeySet`], published lock-free for the hot path and kept
//! fresh in the background.
//!
//! - Static keys (PEM/JWK files) are read once at start.
//! - A JWKS URL (or one found through OIDC discovery, `<issuer>/.well-known/openid-configuration`) is
//!   fetched over HTTPS with rustls, refreshed before its `Cache-Control: max-age` runs out (or every
//!   `refresh_interval` without one), and retried with backoff when the fetch fails. Known keys keep
//!   working while the endpoint is down; a failed or empty fetch never replaces them.
//! - A token naming an unknown `kid` triggers a refetch: single-flight (concurrent requests wait on one
//!   fetch) and at most one per issuer per `min_refetch_interval`, so random `kid`s cannot hammer the
//!   identity provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::authn::jwk::{parse_jwks, parse_key_file};
use crate::authn::jwt::KeySet;
use crate::jwks::JwksError;

/// The largest JWKS or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// The shortest and longest background refresh periods, whatever the endpoint says.
const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Retry delays after a failed background fetch.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Key files read at start.
    Static(Vec<PathBuf>),
    /// A JWKS URL.
    Jwks(String),
    /// OIDC discovery from the issuer URL.
    Discovery(String),
}

/// Fetch settings shared by all issuers.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Refresh period when the JWKS response carries no `max-age`.
    pub refresh_interval: Duration,
    /// The least time between two unknown-`kid` refetches of one issuer.
    pub min_refetch_interval: Duration,
    /// Timeout of one HTTP fetch.
    pub timeout: Duration,
    /// Extra PEM root certificates trusted for fetching (private identity providers).
    pub extra_roots: Vec<PathBuf>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(600),
            min_refetch_interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            extra_roots: Vec::new(),
        }
    }
}

/// Counters of the key store, for metrics.
#[derive(Debug, Default)]
pub struct KeyStats {
    /// Fetches that published a key set.
    pub fetches: AtomicU64,
    /// Fetches that failed (the previous keys stay).
    pub fetch_failures: AtomicU64,
    /// Unknown-`kid` refetches performed.
    pub refetches: AtomicU64,
    /// Unknown-`kid` refetches skipped by the rate limit.
    pub refetches_limited: AtomicU64,
}

struct IssuerKeys {
    source: KeySource,
    keys: ArcSwapOption<KeySet>,
    /// The JWKS URL found by discovery.
    discovered: std::sync::Mutex<Option<String>>,
    /// Held while refetching; holds when the last unknown-`kid` refetch started.
    refetch: tokio::sync::Mutex<Option<Instant>>,
}

/// Every issuer's keys.
pub struct KeyStore {
    issuers: Vec<IssuerKeys>,
    client: reqwest::Client,
    settings: FetchSettings,
    stats: KeyStats,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.source).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// A store for these sources (in issuer order). Static key files are read now; fetched keys are
    /// loaded by [`KeyStore::fetch_all`] and kept fresh by [`KeyStore::refresh_forever`].
    pub fn new(sources: Vec<KeySource>, settings: FetchSettings) -> Result<Self, JwksError> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .https_only(false);
        for path in &settings.extra_roots {
            let pem = std::fs::read(path).map_err(|e| JwksError::Read(path.clone(), e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| JwksError::Read(path.clone(), e.to_string()))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| JwksError::Client(e.to_string()))?;
        let mut issuers = Vec::with_capacity(sources.len());
        for source in sources {
            let keys = match &source {
                KeySource::Static(paths) => Some(Arc::new(read_key_files(paths)?)),
                KeySource::Jwks(url) | KeySource::Discovery(url) => {
                    check_url(url)?;
                    None
                }
            };
            issuers.push(IssuerKeys {
                source,
                keys: ArcSwapOption::new(keys),
                discovered: std::sync::Mutex::new(None),
                refetch: tokio::sync::Mutex::new(None),
            });
        }
        Ok(Self {
            issuers,
            client,
            settings,
            stats: KeyStats::default(),
        })
    }

    /// The issuer's current keys (`None` before the first successful fetch).
    #[inline]
    pub fn keys(&self, issuer: usize) -> Option<Arc<KeySet>> {
        self.issuers.get(issuer)?.keys.load_full()
    }

    /// The store's counters.
    pub fn stats(&self) -> &KeyStats {
        &self.stats
    }

    /// Fetches every fetched issuer's keys once; failures are logged and counted.
    pub async fn fetch_all(&self) {
        for issuer in 0..self.issuers.len() {
            let _ = self.fetch(issuer).await;
        }
    }

    /// Refetches after a token named `kid` (or no kid) that the issuer's keys lack. Returns whether
    /// the keys changed. Single-flight and rate-limited per issuer.
    pub async fn refetch_for_unknown_kid(&self, issuer: usize, kid: Option<&str>) -> bool {
        let Some(entry) = self.issuers.get(issuer) else {
            return false;
        };
        if matches!(entry.source, KeySource::Static(_)) {
            return false;
        }
        let before = entry.keys.load_full();
        let has = |keys: &Option<Arc<KeySet>>| match (keys, kid) {
            (Some(keys), Some(kid)) => keys.has_kid(kid),
            (Some(_), None) => false,
            (None, _) => false,
        };
        if has(&before) {
            return false;
        }
        let mut last = entry.refetch.lock().await;
        let now = entry.keys.load_full();
        if !same(&before, &now) {
            // another request refetched while this one waited
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < self.settings.min_refetch_interval) {
            self.stats.refetches_limited.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        *last = Some(Instant::now());
        self.stats.refetches.fetch_add(1, Ordering::Relaxed);
        self.fetch(issuer).await.is_ok()
    }

    /// Keeps one issuer's fetched keys fresh until the task is dropped.
    pub async fn refresh_forever(self: Arc<Self>, issuer: usize) {
        if self
            .issuers
            .get(issuer)
            .is_none_or(|e| matches!(e.source, KeySource::Static(_)))
        {
            return;
        }
        let mut retry = RETRY_FIRST;
        let mut wait = if self.keys(issuer).is_some() {
            self.settings.refresh_interval
        } else {
            Duration::ZERO
        };
        loop {
            tokio::time::sleep(wait).await;
            wait = match self.fetch(issuer).await {
                Ok(max_age) => {
                    retry = RETRY_FIRST;
                    // refresh at three quarters of the advertised lifetime
                    max_age
                        .map_or(self.settings.refresh_interval, |age| age * 3 / 4)
                        .clamp(MIN_REFRESH, MAX_REFRESH)
                }
                Err(()) => {
                    let delay = jitter(retry);
                    retry = (retry * 2).min(RETRY_MAX);
                    delay
                }
            };
        }
    }

    /// The number of issuers.
    pub fn len(&self) -> usize {
        self.issuers.len()
    }

    /// Whether there are no issuers.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Fetches and publishes one issuer's keys; returns the response's `max-age`.
    async fn fetch(&self, issuer: usize) -> Result<Option<Duration>, ()> {
        let Some(entry) = self.issuers.get(issuer) else {
            return Err(());
        };
        let result = match &entry.source {
            KeySource::Static(_) => return Ok(None),
            KeySource::Jwks(url) => self.fetch_jwks(url).await,
            KeySource::Discovery(issuer_url) => match self.jwks_uri(entry, issuer_url).await {
                Ok(url) => self.fetch_jwks(&url).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok((keys, max_age)) => {
                tracing::debug!(issuer, keys = keys.keys.len(), "jwks fetched");
                entry.keys.store(Some(Arc::new(keys)));
                self.stats.fetches.fetch_add(1, Ordering::Relaxed);
                Ok(max_age)
            }
            Err(error) => {
                tracing::warn!(issuer, %error, "jwks fetch failed: keeping the known keys");
                self.stats.fetch_failures.fetch_add(1, Ordering::Relaxed);
                Err(())
            }
        }
    }

    async fn jwks_uri(&self, entry: &IssuerKeys, issuer_url: &str) -> Result<String, JwksError> {
        if let Ok(found) = entry.discovered.lock()
            && let Some(url) = found.as_ref()
        {
            return Ok(url.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer_url.trim_end_matches('/')
        );
        let (body, _) = self.get(&url).await?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|e| JwksError::Document(url.clone(), e.to_string()))?;
        check_url(&doc.jwks_uri)?;
        if let Ok(mut found) = entry.discovered.lock() {
            *found = Some(doc.jwks_uri.clone());
        }
        Ok(doc.jwks_uri)
    }

    async fn fetch_jwks(&self, url: &str) -> Result<(KeySet, Option<Duration>), JwksError> {
        let (body, max_age) = self.get(url).await?;
        let keys = parse_jwks(&body).map_err(|e| JwksError::Document(url.to_owned(), e.to_string()))?;
        Ok((keys, max_age))
    }

    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), JwksError> {
        let fail = |e: reqwest::Error| JwksError::Fetch(url.to_owned(), e.without_url().to_string());
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(fail)?;
        if !response.status().is_success() {
            return Err(JwksError::Status(url.to_owned(), response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(JwksError::TooLarge(url.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

fn same(a: &Option<Arc<KeySet>>, b: &Option<Arc<KeySet>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn read_key_files(paths: &[PathBuf]) -> Result<KeySet, JwksError> {
    let mut all = KeySet::default();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| JwksError::Read(path.clone(), e.to_string()))?;
        let keys = parse_key_file(&bytes).map_err(|e| JwksError::Read(path.clone(), e.to_string()))?;
        all.keys.extend(keys.keys);
    }
    Ok(all)
}

/// HTTPS everywhere; plain HTTP only to a loopback host (a local test or an in-pod proxy).
fn check_url(url: &str) -> Result<(), JwksError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| JwksError::Url(url.to_owned()))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(JwksError::Url(url.to_owned())),
    }
}

/// `max-age=N` of a `Cache-Control` header.
fn max_age(header: &str) -> Option<Duration> {
    header.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// A delay between `base / 2` and `base`.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        assert!(check_url("https://login.example.com/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://login.example.com/jwks").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("not a url").is_err());
    }
}
