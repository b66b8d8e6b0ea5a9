//! Errors of the server configuration: reading/parsing a file, and every validation error at once.

use std::fmt;

/// The configuration file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read configuration `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML/JSON or does not match the configuration's shape.
    #[error("invalid configuration `{path}`: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// One validation error; `field` is the dotted path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A listen address is not `host:port` with an IP host.
    #[error("`{field}`: `{value}` is not a socket address (`ip:port`)")]
    SocketAddr {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
    /// A path or string that must not be empty is empty.
    #[error("`{field}` must not be empty")]
    Empty {
        /// The field.
        field: String,
    },
    /// `tls.min_version` is not `1.2` or `1.3`.
    #[error("`tls.min_version`: `{0}` is not `1.2` or `1.3`")]
    TlsVersion(String),
    /// `listen.http_path_prefix` is not `/` followed by at least one character, without a final `/`.
    #[error("`listen.http_path_prefix`: `{0}` must start with `/` and not end with `/` (like `/authz`)")]
    PathPrefix(String),
    /// `listen.http_source` is not `envoy`, `nginx` or `traefik`.
    #[error("`listen.http_source`: `{0}` is not `envoy`, `nginx` or `traefik`")]
    HttpSource(String),
    /// `listen.http_path_prefix` is set with an `http_source` other than `envoy` (nginx and Traefik
    /// send the original target in a header, which no prefix is stripped from).
    #[error("`listen.http_path_prefix` applies to `http_source: envoy` only")]
    PathPrefixSource,
    /// `--client-ca` without `--tls-cert`/`--tls-key` or a `tls` section: client certificates
    /// need a TLS listener.
    #[error("`--client-ca` needs `--tls-cert` and `--tls-key` (or a `tls` section)")]
    ClientCaWithoutTls,
    /// A file the configuration names does not exist.
    #[error("`{field}`: `{path}` does not exist")]
    MissingFile {
        /// The field.
        field: String,
        /// The path, as resolved.
        path: String,
    },
    /// A cache size of 0.
    #[error("`{field}` must be at least 1")]
    Zero {
        /// The field.
        field: String,
    },
    /// A duration that does not parse (`30s`, `5m`, `1h`, `1d`, `500ms`).
    #[error("`{field}`: `{value}` is not a duration like `30s`, `5m` or `1h`")]
    Duration {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
    /// `mode` is not `enforce` or `dry_run`.
    #[error("`mode`: `{0}` is not `enforce` or `dry_run`")]
    Mode(String),
    /// `audit.sink` is not `stdout`, `off` or `file:PATH`.
    #[error("`audit.sink`: `{0}` is not `stdout`, `off` or `file:PATH`")]
    AuditSink(String),
    /// `telemetry.log_format` is not `json` or `text`.
    #[error("`telemetry.log_format`: `{0}` is not `json` or `text`")]
    LogFormat(String),
    /// Only one of `snapshot.control_plane.cert` and `snapshot.control_plane.key` is set.
    #[error("`snapshot.control_plane`: set both `cert` and `key` (mutual tls), or neither")]
    ClientCertPair,
    /// Both `snapshot.files` and `snapshot.control_plane` are set.
    #[error("`snapshot`: set `files` or `control_plane`, not both")]
    SnapshotBoth,
    /// A field that must be a URL is not `http://` or `https://`.
    #[error("`{field}`: `{value}` is not an http(s) url")]
    Url {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
    /// A plaintext control-plane url to a host that is not loopback, without `insecure: true`.
    #[error(
        "`snapshot.control_plane.url`: `{0}` is plaintext to a host that is not loopback: use `https://` with a client certificate (`cert`, `key`), or set `insecure: true` to accept unauthenticated snapshots"
    )]
    PlaintextControlPlane(String),
    /// `snapshot.control_plane.max_snapshot_bytes` is zero or too large for this platform.
    #[error("`snapshot.control_plane.max_snapshot_bytes`: `{0}` is not a usable size in bytes")]
    MaxSnapshotBytes(u64),
    /// A JWT issuer needs exactly one key source.
    #[error("`{field}`: set exactly one of `jwks_url`, `keys` and `discovery: true`")]
    JwtKeys {
        /// The issuer's field path.
        field: String,
    },
    /// An unsupported JWT algorithm.
    #[error(
        "`{field}`: `{value}` is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
    )]
    Algorithm {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
    /// A principal type other than `USER` or `SERVICE_ACCOUNT`.
    #[error("`{field}`: `{value}` is not `USER` or `SERVICE_ACCOUNT`")]
    PrincipalType {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
    /// A `jwt.issuers[].accounts` entry that is neither `*` nor an account identifier.
    #[error("`{field}`: `{value}` is not `*` or an account identifier (ASCII letters, digits, `_`, `-`)")]
    JwtAccount {
        /// The field.
        field: String,
        /// The value given.
        value: String,
    },
}

/// Every validation error of a configuration, reported together (one per line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
