//! `snapshot.control_plane`: where the sidecar fetches snapshots from, and its checks. `url` names
//! one control plane; `urls` names replicas (with or without `url`), tried in turn when a stream
//! breaks or cannot be opened.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{ConfigError, Parsed, is_plaintext_remote, is_url};

/// `snapshot.control_plane`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlane {
    /// The control plane's URL (`https://` for TLS); default: empty (then `urls` must name one).
    pub url: String,
    /// Control-plane replicas, tried in turn after `url` (when set) whenever a stream breaks or
    /// cannot be opened; default: none.
    pub urls: Vec<String>,
    /// A CA bundle to verify it; default: none (the system roots).
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with `key`; default: none.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); default: none.
    pub key: Option<PathBuf>,
    /// Accounts loaded at start and kept (readiness waits for them); default: empty (every account
    /// is loaded on its first request).
    pub accounts: Vec<String>,
    /// How long a request waits for its account's first load before 503; default: `150ms`.
    pub load_timeout: Parsed<Duration>,
    /// Allow a plaintext (`http://`) `url` whose host is not loopback: snapshots (the policy, token
    /// hashes included) then cross the network unauthenticated and can be forged on the path;
    /// default: `false` (such a url is refused at start).
    pub insecure: bool,
    /// The largest snapshot message accepted, in bytes; a bigger one is refused (logged) and the
    /// version in force is kept; default: 64 MiB (a 100,000-assignment account is ~11 MB).
    pub max_snapshot_bytes: u64,
}

/// The default of `snapshot.control_plane.max_snapshot_bytes`: 64 MiB, six times the largest
/// account measured (100,000 assignments, ~11 MB).
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 64 * 1024 * 1024;

impl Default for ControlPlane {
    fn default() -> Self {
        Self {
            url: String::new(),
            urls: Vec::new(),
            ca: None,
            cert: None,
            key: None,
            accounts: Vec::new(),
            load_timeout: Parsed::new(Duration::from_millis(150)),
            insecure: false,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
        }
    }
}

impl ControlPlane {
    /// Every URL in the order they are tried: `url` (when set), then `urls`.
    pub fn all_urls(&self) -> Vec<String> {
        let first = (!self.url.is_empty()).then(|| self.url.clone());
        first.into_iter().chain(self.urls.iter().cloned()).collect()
    }

    /// Pushes every error of the section to `errors`.
    pub(super) fn validate(&self, errors: &mut Vec<ConfigError>) {
        let mut named: Vec<(String, &String)> = Vec::new();
        if !self.url.is_empty() || self.urls.is_empty() {
            named.push(("snapshot.control_plane.url".to_owned(), &self.url));
        }
        for (i, url) in self.urls.iter().enumerate() {
            named.push((format!("snapshot.control_plane.urls[{i}]"), url));
        }
        for (field, url) in named {
            if !is_url(url) {
                errors.push(ConfigError::Url {
                    field,
                    value: url.clone(),
                });
            } else if !self.insecure && is_plaintext_remote(url) {
                errors.push(ConfigError::PlaintextControlPlane(url.clone()));
            }
        }
        for (field, path) in [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                errors.push(ConfigError::Empty {
                    field: format!("snapshot.control_plane.{field}"),
                });
            }
        }
        if self.max_snapshot_bytes == 0 || usize::try_from(self.max_snapshot_bytes).is_err() {
            errors.push(ConfigError::MaxSnapshotBytes(self.max_snapshot_bytes));
        }
        if self.cert.is_some() != self.key.is_some() {
            errors.push(ConfigError::ClientCertPair);
        }
        if let Some(text) = self.load_timeout.rejected() {
            errors.push(ConfigError::Duration {
                field: "snapshot.control_plane.load_timeout".to_owned(),
                value: text.to_owned(),
            });
        }
        for (i, account) in self.accounts.iter().enumerate() {
            if account.is_empty() {
                errors.push(ConfigError::Empty {
                    field: format!("snapshot.control_plane.accounts[{i}]"),
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn urls_alone_or_after_url_and_each_one_checked() {
        let both: ControlPlane =
            serde_yaml_ng::from_str("{url: 'http://127.0.0.1:1', urls: ['http://127.0.0.1:2']}").unwrap();
        assert_eq!(both.all_urls(), ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let mut errors = Vec::new();
        both.validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");

        let list: ControlPlane =
            serde_yaml_ng::from_str("{urls: ['http://127.0.0.1:2', 'cp:9300']}").unwrap();
        list.validate(&mut errors);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].contains("snapshot.control_plane.urls[1]"), "{shown:?}");

        let mut errors = Vec::new();
        ControlPlane::default().validate(&mut errors);
        assert!(errors[0].to_string().contains("snapshot.control_plane.url"));
    }
}
