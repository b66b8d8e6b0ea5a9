//! The server configuration file (docs/formats.md "Server configuration"): serde structs with a
//! documented default for every field, [`Config::load`] (YAML, or JSON by extension),
//! [`Config::validate`], which reports every error at once, and [`Config::merge_overrides`], which
//! applies `serve`'s command-line flags. Durations, `mode` and `tls.min_version` are typed when
//! the file is read ([`Parsed`]); consumers never parse text again.
//!
//! Some sections are parsed and validated but not yet implemented by the server (`cache_dir` and
//! the account cache without a control plane);
//! [`Config::unsupported`] names the ones a configuration sets so `serve` can warn about them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::tls::{MinVersion, TlsSettings};

mod control_plane;
mod error;
mod jwt;
mod listen;
mod overrides;
mod paths;
mod setting;
mod unknown;

pub use control_plane::{ControlPlane, DEFAULT_MAX_SNAPSHOT_BYTES};
pub use error::{ConfigError, ConfigErrors, LoadError};
pub use jwt::{Issuer, Jwt, PrincipalClaim};
pub use listen::{Connections, DEFAULT_ADMIN_PORT, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, HttpSource, Listen};
pub use overrides::Overrides;
pub use setting::{ALGORITHMS, FromSetting, Mode, Parsed, parse_duration};

/// The port `scopegate control-plane` listens on by default.
pub const DEFAULT_CONTROL_PLANE_PORT: u16 = 9300;

/// The top-level keys of a configuration file, used to tell one apart from other files.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "tls",
    "snapshot",
    "routes",
    "catalog",
    "jwt",
    "cache",
    "audit",
    "mode",
    "telemetry",
];

/// The server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The listeners; default: gRPC on `127.0.0.1:9191`, no HTTP listener.
    pub listen: Listen,
    /// TLS for the listeners; default: none (plaintext).
    pub tls: Option<Tls>,
    /// Where account snapshots come from; default: the embedded demo snapshot.
    pub snapshot: Snapshot,
    /// The route-table file; default: none (the embedded Harness route table).
    pub routes: Option<PathBuf>,
    /// A permission catalog file; default: none (`null`, the embedded catalog).
    pub catalog: Option<PathBuf>,
    /// JWT issuers; default: none (API keys only).
    pub jwt: Jwt,
    /// Cache sizes and lifetimes; default: `{tokens: 100000, token_ttl: 5m, accounts: 1000, account_idle: 1h}`.
    pub cache: Cache,
    /// The audit log; default: `{sink: stdout, max_bytes: 104857600, keep: 5, queue: 65536}`.
    pub audit: Audit,
    /// `enforce` or `dry_run` (decide, log, always allow); default: `enforce`.
    pub mode: Parsed<Mode>,
    /// Logging and tracing; default: `{log_format: json, otlp_endpoint: null}`.
    pub telemetry: Telemetry,
}

/// `tls`: certificates for the listeners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM); default: empty, which is invalid.
    pub cert: PathBuf,
    /// The private key (PEM); default: empty, which is invalid.
    pub key: PathBuf,
    /// A CA bundle to require and verify client certificates; default: none (no client auth).
    pub client_ca: Option<PathBuf>,
    /// The lowest TLS version accepted, `1.2` or `1.3`; default: `1.3`.
    pub min_version: Parsed<MinVersion>,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: None,
            min_version: Parsed::new(MinVersion::Tls13),
        }
    }
}

impl Tls {
    /// The listeners' TLS settings (files checked for changes every [`crate::tls::RELOAD_INTERVAL`]).
    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
            min_version: self.min_version.get(),
            reload_interval: crate::tls::RELOAD_INTERVAL,
        }
    }
}

/// `snapshot`: the source of account snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Snapshot {
    /// A snapshot file or a folder of them, reloaded on change; default: none (the embedded demo).
    pub files: Option<PathBuf>,
    /// A control plane to fetch snapshots from; default: none.
    pub control_plane: Option<ControlPlane>,
    /// Where last-known-good copies of control-plane snapshots are kept for a cold start; default:
    /// none.
    pub cache_dir: Option<PathBuf>,
    /// Start when `files` does not exist yet, not ready until it appears; default: `false` (a
    /// missing path refuses to start, so a typo is not a silent outage).
    pub wait_for_files: bool,
    /// How long a check demanding an account revision (`x-scopegate-min-revision`) waits for it
    /// before 503 `revision_not_reached`; `0s` answers at once; default: `150ms`, under Envoy's usual 200 ms ext_authz timeout.
    pub max_revision_wait: Parsed<Duration>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            files: None,
            control_plane: None,
            cache_dir: None,
            wait_for_files: false,
            max_revision_wait: Parsed::new(Duration::from_millis(150)),
        }
    }
}

/// `cache`: sizes and lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cache {
    /// Verified tokens held at most; default: `100000`.
    pub tokens: u64,
    /// How long a verified token is trusted; default: `5m`.
    pub token_ttl: Parsed<Duration>,
    /// Compiled accounts held at most (control plane only: files load every account); default:
    /// `1000`.
    pub accounts: u64,
    /// How long an unused account stays compiled (control plane only); default: `1h`.
    pub account_idle: Parsed<Duration>,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            tokens: 100_000,
            token_ttl: Parsed::new(Duration::from_secs(5 * 60)),
            accounts: 1000,
            account_idle: Parsed::new(Duration::from_secs(60 * 60)),
        }
    }
}

/// The default `audit.max_bytes`: a file sink is rotated past 100 MiB.
pub const DEFAULT_AUDIT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// The default `audit.keep`: rotated files kept (`FILE.1` … `FILE.5`).
pub const DEFAULT_AUDIT_KEEP: u32 = 5;
/// The default `audit.queue`: records waiting for the writer at most; more are dropped and counted.
pub const DEFAULT_AUDIT_QUEUE: usize = 65_536;

/// `audit`: where decision records go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// `stdout`, `off` or `file:PATH`; default: `stdout`.
    pub sink: String,
    /// A `file:` sink is rotated when writing a record would take it past this size (bytes); default:
    /// `104857600` (100 MiB); at least 1.
    pub max_bytes: u64,
    /// Rotated files kept beside a `file:` sink (`PATH.1` newest … `PATH.keep` oldest); default: `5`;
    /// at least 1.
    pub keep: u32,
    /// Records queued for the writer at most; a record that finds the queue full is dropped and
    /// counted (`scopegate_audit_dropped_total`), never waited for; default: `65536`; at least 1.
    pub queue: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            sink: "stdout".to_owned(),
            max_bytes: DEFAULT_AUDIT_MAX_BYTES,
            keep: DEFAULT_AUDIT_KEEP,
            queue: DEFAULT_AUDIT_QUEUE,
        }
    }
}

/// `telemetry`: logs and traces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Telemetry {
    /// `json` or `text`; default: `json`.
    pub log_format: String,
    /// An OTLP collector to export traces to; default: none (`null`).
    pub otlp_endpoint: Option<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            log_format: "json".to_owned(),
            otlp_endpoint: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: Listen::default(),
            tls: None,
            snapshot: Snapshot::default(),
            routes: None,
            catalog: None,
            jwt: Jwt::default(),
            cache: Cache::default(),
            audit: Audit::default(),
            mode: Parsed::new(Mode::Enforce),
            telemetry: Telemetry::default(),
        }
    }
}

pub(crate) fn is_url(text: &str) -> bool {
    ["http://", "https://"]
        .iter()
        .any(|scheme| text.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty()))
}

/// Whether `host` (a URL's or a listen address's host, IPv6 with or without brackets) is a loopback
/// address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` is plaintext (`http://`) to a host that is not loopback: such a control plane is
/// unauthenticated and its snapshots can be read and forged on the path.
pub fn is_plaintext_remote(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    !is_loopback_host(host)
}

impl Config {
    /// Reads and parses `path`: JSON when it ends in `.json`, YAML otherwise, with relative paths
    /// resolved against `path`'s folder. Does not validate.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut config = Self::parse(&text, is_json).map_err(|message| LoadError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Parses a configuration from text (JSON when `json`, else YAML). An empty document is the
    /// default configuration.
    pub fn parse(text: &str, json: bool) -> Result<Self, String> {
        let parsed = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else if text.trim().is_empty() {
            Ok(Self::default())
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|first| {
            // every unknown field at once, not one per run
            let unknown = unknown::unknown_fields::<Self>(text);
            if unknown.len() > 1 {
                unknown.join("\n")
            } else {
                first
            }
        })
    }

    /// Checks every field; returns every error found, in field order.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        self.listen.validate(&mut errors);
        let empty = |field: &str, path: &Path, errors: &mut Vec<ConfigError>| {
            if path.as_os_str().is_empty() {
                errors.push(ConfigError::Empty {
                    field: field.to_owned(),
                });
            }
        };
        if let Some(tls) = &self.tls {
            empty("tls.cert", &tls.cert, &mut errors);
            empty("tls.key", &tls.key, &mut errors);
            if let Some(ca) = &tls.client_ca {
                empty("tls.client_ca", ca, &mut errors);
            }
            if let Some(text) = tls.min_version.rejected() {
                errors.push(ConfigError::TlsVersion(text.to_owned()));
            }
        }
        if let Some(files) = &self.snapshot.files {
            empty("snapshot.files", files, &mut errors);
        }
        if let Some(cp) = &self.snapshot.control_plane {
            if self.snapshot.files.is_some() {
                errors.push(ConfigError::SnapshotBoth);
            }
            cp.validate(&mut errors);
        }
        if let Some(dir) = &self.snapshot.cache_dir {
            empty("snapshot.cache_dir", dir, &mut errors);
        }
        if let Some(routes) = &self.routes {
            empty("routes", routes, &mut errors);
        }
        if let Some(catalog) = &self.catalog {
            empty("catalog", catalog, &mut errors);
        }
        self.jwt.validate(&mut errors);
        for (field, size) in [
            ("cache.tokens", self.cache.tokens),
            ("cache.accounts", self.cache.accounts),
        ] {
            if size == 0 {
                errors.push(ConfigError::Zero {
                    field: field.to_owned(),
                });
            }
        }
        for (field, value) in [
            ("cache.token_ttl", &self.cache.token_ttl),
            ("cache.account_idle", &self.cache.account_idle),
            ("snapshot.max_revision_wait", &self.snapshot.max_revision_wait),
        ] {
            if let Some(text) = value.rejected() {
                errors.push(ConfigError::Duration {
                    field: field.to_owned(),
                    value: text.to_owned(),
                });
            }
        }
        match self.audit.sink.as_str() {
            "stdout" | "off" => {}
            sink if sink.strip_prefix("file:").is_some_and(|p| !p.is_empty()) => {}
            sink => errors.push(ConfigError::AuditSink(sink.to_owned())),
        }
        for (field, zero) in [
            ("audit.max_bytes", self.audit.max_bytes == 0),
            ("audit.keep", self.audit.keep == 0),
            ("audit.queue", self.audit.queue == 0),
        ] {
            if zero {
                errors.push(ConfigError::Zero {
                    field: field.to_owned(),
                });
            }
        }
        if let Some(text) = self.mode.rejected() {
            errors.push(ConfigError::Mode(text.to_owned()));
        }
        if !matches!(self.telemetry.log_format.as_str(), "json" | "text") {
            errors.push(ConfigError::LogFormat(self.telemetry.log_format.clone()));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !is_url(endpoint)
        {
            errors.push(ConfigError::Url {
                field: "telemetry.otlp_endpoint".to_owned(),
                value: endpoint.clone(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The sections this configuration sets that the server does not implement yet, by name
    /// (`serve` warns about each; none of them takes effect).
    pub fn unsupported(&self) -> Vec<&'static str> {
        let defaults = Self::default();
        let mut sections = Vec::new();
        let mut flag = |set: bool, name: &'static str| {
            if set {
                sections.push(name);
            }
        };
        // Last-known-good copies and the account cache belong to the control-plane source.
        let files = self.snapshot.control_plane.is_none();
        flag(files && self.snapshot.cache_dir.is_some(), "snapshot.cache_dir");
        flag(
            files && self.cache.accounts != defaults.cache.accounts,
            "cache.accounts",
        );
        flag(
            files && self.cache.account_idle != defaults.cache.account_idle,
            "cache.account_idle",
        );
        sections
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
