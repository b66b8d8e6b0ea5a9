//! The server configuration file (formats.md "Server configuration"): serde structs with a
//! documented default for every field, [`Config::load`] (YAML, or JSON by extension) and
//! [`Config::validate`], which reports every error at once.
//!
//! Some sections are parsed and validated but not yet implemented by the server (the
//! control plane, audit, telemetry, the HTTP listener, dry-run mode, the account cache);
//! [`Config::unsupported`] names the ones a configuration sets so `serve` can warn about them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod error;
mod jwt;

pub use error::{ConfigError, ConfigErrors, LoadError};
pub use jwt::{Issuer, Jwt, PrincipalClaim};

/// The default port of the ext_authz gRPC listener (`listen.grpc`, on `127.0.0.1`).
pub const DEFAULT_GRPC_PORT: u16 = 9191;

/// The port of the HTTP listener (`listen.http`, off unless configured), by convention `127.0.0.1:9192`.
pub const DEFAULT_HTTP_PORT: u16 = 9192;

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
    /// The audit log; default: `{sink: stdout}`. Not yet supported by the server.
    pub audit: Audit,
    /// `enforce` or `dry_run` (decide, log, always allow); default: `enforce`.
    pub mode: String,
    /// Logging and tracing; default: `{log_format: json, otlp_endpoint: null}`.
    pub telemetry: Telemetry,
}

/// `listen`: the listen addresses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// Envoy ext_authz gRPC (and gRPC health); default: `127.0.0.1:9191`.
    pub grpc: String,
    /// HTTP-mode authz, `/authz/api/acl`, `/healthz`, `/readyz`; default: none (no HTTP listener).
    pub http: Option<String>,
    /// A path prefix stripped from requests authorized by their own method and path (Envoy HTTP
    /// mode, e.g. `/authz` when Envoy's `path_prefix` is `/authz`); not applied to the
    /// `x-original-uri` / `x-forwarded-uri` of nginx and Traefik; default: none.
    pub http_path_prefix: Option<String>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            grpc: format!("127.0.0.1:{DEFAULT_GRPC_PORT}"),
            http: None,
            http_path_prefix: None,
        }
    }
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
    pub min_version: String,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: None,
            min_version: "1.3".to_owned(),
        }
    }
}

/// `snapshot`: the source of account snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Snapshot {
    /// A snapshot file or a folder of them, reloaded on change; default: none (the embedded demo).
    pub files: Option<PathBuf>,
    /// A control plane to fetch snapshots from; default: none. Not yet supported by the server.
    pub control_plane: Option<ControlPlane>,
    /// Where last-known-good copies are kept for a cold start; default: none. Not yet supported.
    pub cache_dir: Option<PathBuf>,
}

/// `snapshot.control_plane`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlane {
    /// The control plane's URL; default: empty, which is invalid.
    pub url: String,
    /// A CA bundle to verify it; default: none (the system roots).
    pub ca: Option<PathBuf>,
    /// The accounts to fetch; default: empty (every account the control plane serves).
    pub accounts: Vec<String>,
}

/// `cache`: sizes and lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cache {
    /// Verified tokens held at most; default: `100000`.
    pub tokens: u64,
    /// How long a verified token is trusted; default: `5m`.
    pub token_ttl: String,
    /// Compiled accounts held at most; default: `1000`. Not yet supported by the server.
    pub accounts: u64,
    /// How long an unused account stays compiled; default: `1h`. Not yet supported by the server.
    pub account_idle: String,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            tokens: 100_000,
            token_ttl: "5m".to_owned(),
            accounts: 1000,
            account_idle: "1h".to_owned(),
        }
    }
}

/// `audit`: where decision records go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// `stdout`, `off` or `file:PATH`; default: `stdout`.
    pub sink: String,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            sink: "stdout".to_owned(),
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
            mode: "enforce".to_owned(),
            telemetry: Telemetry::default(),
        }
    }
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h` or `1d` (a whole number and one unit).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let seconds_per = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds_per).map(Duration::from_secs)
}

pub(crate) fn is_url(text: &str) -> bool {
    ["http://", "https://"]
        .iter()
        .any(|scheme| text.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty()))
}

impl Config {
    /// Reads and parses `path`: JSON when it ends in `.json`, YAML otherwise. Does not validate.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Self::parse(&text, is_json).map_err(|message| LoadError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses a configuration from text (JSON when `json`, else YAML). An empty document is the
    /// default configuration.
    pub fn parse(text: &str, json: bool) -> Result<Self, String> {
        if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else if text.trim().is_empty() {
            Ok(Self::default())
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
        }
    }

    /// The verified-token lifetime, if `cache.token_ttl` parses.
    pub fn token_ttl(&self) -> Option<Duration> {
        parse_duration(&self.cache.token_ttl)
    }

    /// Checks every field; returns every error found, in field order.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let addr = |field: &str, value: &str, errors: &mut Vec<ConfigError>| {
            if value.parse::<SocketAddr>().is_err() {
                errors.push(ConfigError::SocketAddr {
                    field: field.to_owned(),
                    value: value.to_owned(),
                });
            }
        };
        addr("listen.grpc", &self.listen.grpc, &mut errors);
        if let Some(http) = &self.listen.http {
            addr("listen.http", http, &mut errors);
        }
        if let Some(prefix) = &self.listen.http_path_prefix
            && (!prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/'))
        {
            errors.push(ConfigError::PathPrefix(prefix.clone()));
        }
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
            if !matches!(tls.min_version.as_str(), "1.2" | "1.3") {
                errors.push(ConfigError::TlsVersion(tls.min_version.clone()));
            }
        }
        if let Some(files) = &self.snapshot.files {
            empty("snapshot.files", files, &mut errors);
        }
        if let Some(cp) = &self.snapshot.control_plane {
            if self.snapshot.files.is_some() {
                errors.push(ConfigError::SnapshotBoth);
            }
            if !is_url(&cp.url) {
                errors.push(ConfigError::Url {
                    field: "snapshot.control_plane.url".to_owned(),
                    value: cp.url.clone(),
                });
            }
            if let Some(ca) = &cp.ca {
                empty("snapshot.control_plane.ca", ca, &mut errors);
            }
            for (i, account) in cp.accounts.iter().enumerate() {
                if account.is_empty() {
                    errors.push(ConfigError::Empty {
                        field: format!("snapshot.control_plane.accounts[{i}]"),
                    });
                }
            }
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
        ] {
            if parse_duration(value).is_none() {
                errors.push(ConfigError::Duration {
                    field: field.to_owned(),
                    value: value.clone(),
                });
            }
        }
        match self.audit.sink.as_str() {
            "stdout" | "off" => {}
            sink if sink.strip_prefix("file:").is_some_and(|p| !p.is_empty()) => {}
            sink => errors.push(ConfigError::AuditSink(sink.to_owned())),
        }
        if !matches!(self.mode.as_str(), "enforce" | "dry_run") {
            errors.push(ConfigError::Mode(self.mode.clone()));
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
        flag(self.snapshot.control_plane.is_some(), "snapshot.control_plane");
        flag(self.snapshot.cache_dir.is_some(), "snapshot.cache_dir");
        flag(self.cache.accounts != defaults.cache.accounts, "cache.accounts");
        flag(
            self.cache.account_idle != defaults.cache.account_idle,
            "cache.account_idle",
        );
        flag(self.audit != defaults.audit, "audit");
        flag(self.mode == "dry_run", "mode: dry_run");
        flag(self.telemetry != defaults.telemetry, "telemetry");
        sections
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const FULL: &str = r#"
listen:
  grpc: 127.0.0.1:9191
  http: 127.0.0.1:9192
tls: {cert: /etc/tls/cert.pem, key: /etc/tls/key.pem, client_ca: /etc/tls/ca.pem, min_version: "1.3"}
snapshot:
  files: deploy/examples/snapshots/
  cache_dir: /var/lib/scopegate
routes: deploy/routes/harness-ng.yaml
catalog: null
jwt:
  issuers:
    - issuer: https://login.example.com/
      audiences: [scopegate]
      jwks_url: https://login.example.com/.well-known/jwks.json
      algorithms: [RS256, ES256]
      principal: {claim: sub, type: USER}
      account_claim: account
cache: {tokens: 100000, token_ttl: 5m, accounts: 1000, account_idle: 1h}
audit: {sink: stdout}
mode: enforce
telemetry: {log_format: json, otlp_endpoint: null}
"#;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let config = Config::default();
        assert_eq!(config.listen.grpc, "127.0.0.1:9191");
        assert_eq!(config.listen.http, None);
        assert_eq!(config.tls, None);
        assert_eq!(config.snapshot, Snapshot::default());
        assert_eq!(config.routes, None);
        assert_eq!(config.catalog, None);
        assert!(config.jwt.issuers.is_empty());
        assert_eq!(config.cache.tokens, 100_000);
        assert_eq!(config.token_ttl(), Some(Duration::from_secs(300)));
        assert_eq!(config.cache.accounts, 1000);
        assert_eq!(config.cache.account_idle, "1h");
        assert_eq!(config.audit.sink, "stdout");
        assert_eq!(config.mode, "enforce");
        assert_eq!(config.telemetry.log_format, "json");
        assert_eq!(Tls::default().min_version, "1.3");
        assert_eq!(Issuer::default().algorithms, ["RS256", "ES256"]);
        assert_eq!(Issuer::default().principal.kind, "USER");
        assert_eq!(config.validate(), Ok(()));
        assert!(config.unsupported().is_empty());
        assert_eq!(Config::parse("", false).unwrap(), config);
        assert_eq!(Config::parse("{}", true).unwrap(), config);
        assert_eq!(Config::parse("mode: enforce\n", false).unwrap(), config);
    }

    #[test]
    fn the_full_example_parses_and_validates() {
        let config = Config::parse(FULL, false).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen.http.as_deref(), Some("127.0.0.1:9192"));
        assert_eq!(config.tls.as_ref().unwrap().min_version, "1.3");
        assert_eq!(
            config.snapshot.files.as_deref(),
            Some(Path::new("deploy/examples/snapshots/"))
        );
        assert_eq!(config.jwt.issuers[0].audiences, ["scopegate"]);
        assert_eq!(config.unsupported(), ["snapshot.cache_dir"]);
        let json =
            serde_json::to_string(&serde_yaml_ng::from_str::<serde_json::Value>(FULL).unwrap()).unwrap();
        assert_eq!(Config::parse(&json, true).unwrap(), config);
    }

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/config.yaml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.snapshot.files.is_some() && config.routes.is_some());
    }

    #[test]
    fn unknown_fields_are_rejected_at_every_level() {
        for text in [
            "listn: {grpc: 127.0.0.1:1}",
            "listen: {grcp: 127.0.0.1:1}",
            "cache: {token: 5}",
            "snapshot: {file: x}",
            "jwt: {issuers: [{issuer: x, jwks: y}]}",
            "tls: {cert: a, key: b, min: '1.2'}",
        ] {
            let error = Config::parse(text, false).unwrap_err();
            assert!(error.contains("unknown field"), "{text}: {error}");
        }
        let error = Config::load(Path::new("/nonexistent/scopegate.yaml")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read configuration `/nonexistent")
        );
    }

    #[test]
    fn every_validation_error_is_reported_at_once() {
        let text = r#"
listen: {grpc: "localhost:nine", http: "9192", http_path_prefix: "authz/"}
tls: {cert: "", key: "", min_version: "1.1"}
snapshot: {files: "", control_plane: {url: "cp:9300"}}
routes: ""
jwt: {issuers: [{issuer: "", algorithms: [HS256], principal: {type: ROBOT}}]}
cache: {tokens: 0, token_ttl: 5 minutes, accounts: 0, account_idle: "1x"}
audit: {sink: "file:"}
mode: enforcing
telemetry: {log_format: xml, otlp_endpoint: collector}
"#;
        let errors = Config::parse(text, false).unwrap().validate().unwrap_err();
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        let expected = [
            "`listen.grpc`: `localhost:nine` is not a socket address (`ip:port`)",
            "`listen.http`: `9192` is not a socket address (`ip:port`)",
            "`listen.http_path_prefix`: `authz/` must start with `/` and not end with `/` (like `/authz`)",
            "`tls.cert` must not be empty",
            "`tls.key` must not be empty",
            "`tls.min_version`: `1.1` is not `1.2` or `1.3`",
            "`snapshot.files` must not be empty",
            "`snapshot`: set `files` or `control_plane`, not both",
            "`snapshot.control_plane.url`: `cp:9300` is not an http(s) url",
            "`routes` must not be empty",
            "`jwt.issuers[0].issuer` must not be empty",
            "`jwt.issuers[0]`: set exactly one of `jwks_url`, `keys` and `discovery: true`",
            "`jwt.issuers[0].algorithms`: `HS256` is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
            "`jwt.issuers[0].principal.type`: `ROBOT` is not `USER` or `SERVICE_ACCOUNT`",
            "`cache.tokens` must be at least 1",
            "`cache.accounts` must be at least 1",
            "`cache.token_ttl`: `5 minutes` is not a duration like `30s`, `5m` or `1h`",
            "`cache.account_idle`: `1x` is not a duration like `30s`, `5m` or `1h`",
            "`audit.sink`: `file:` is not `stdout`, `off` or `file:PATH`",
            "`mode`: `enforcing` is not `enforce` or `dry_run`",
            "`telemetry.log_format`: `xml` is not `json` or `text`",
            "`telemetry.otlp_endpoint`: `collector` is not an http(s) url",
        ];
        assert_eq!(lines, expected);
        assert_eq!(errors.to_string().lines().count(), expected.len());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in [
            "",
            "5",
            "m",
            "-5m",
            "5 m",
            "1.5h",
            "5M",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn unsupported_sections_are_named() {
        let text = "mode: dry_run\naudit: {sink: off}\ncatalog: cat.yaml\ncache: {tokens: 5}\nsnapshot: {control_plane: {url: https://cp:9300}}\n";
        let config = Config::parse(text, false).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            config.unsupported(),
            ["snapshot.control_plane", "audit", "mode: dry_run"]
        );
    }
}
