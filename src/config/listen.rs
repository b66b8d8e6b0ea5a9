//! The `listen` section of the configuration: the gRPC, HTTP and admin listen addresses, gRPC
//! server reflection on or off, which
//! proxy's report of the original request the HTTP listener trusts, and `listen.connections`: how
//! long a client may take to send its first bytes and headers, how long an idle connection stays
//! open, and how many connections each listener holds at once (the same limits on every listener,
//! plaintext or TLS).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Parsed};
use crate::tls::ConnectionLimits;

/// The default port of the ext_authz gRPC listener (`listen.grpc`, on `127.0.0.1`).
pub const DEFAULT_GRPC_PORT: u16 = 9191;

/// The port of the HTTP listener (`listen.http`, off unless configured), by convention `127.0.0.1:9192`.
pub const DEFAULT_HTTP_PORT: u16 = 9192;

/// The port of the admin listener (`listen.admin`, off unless configured), by convention
/// `127.0.0.1:9193`.
pub const DEFAULT_ADMIN_PORT: u16 = 9193;

/// `listen`: the listen addresses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// Envoy ext_authz gRPC (and gRPC health); default: `127.0.0.1:9191`.
    pub grpc: String,
    /// gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) on the gRPC listener, so
    /// `grpcurl` and `ghz` need no `.proto` files; default: `true`.
    pub grpc_reflection: bool,
    /// HTTP-mode authz (every path is a request to authorize; plus `/authz/api/acl` when
    /// `http_source` is `nginx` or `traefik`); default: none (no HTTP listener).
    pub http: Option<String>,
    /// Which proxy's report of the original request the HTTP listener trusts: `envoy` (Envoy HTTP
    /// ext_authz: the request's own method and target), `nginx` (`x-original-method` /
    /// `x-original-uri`) or `traefik` (`x-forwarded-method` / `x-forwarded-uri`); the other
    /// families' headers are ignored; default: `envoy`.
    pub http_source: String,
    /// A path prefix stripped from requests authorized by their own method and path (Envoy HTTP
    /// mode, e.g. `/authz` when Envoy's `path_prefix` is `/authz`); `http_source: envoy` only;
    /// default: none.
    pub http_path_prefix: Option<String>,
    /// The admin listener: `/healthz`, `/readyz`, `/metrics`, `/authz/api/acl`, never a request to
    /// authorize; default: none (off; by convention `127.0.0.1:9193`).
    pub admin: Option<String>,
    /// Header-read and idle timeouts and the connection cap of both listeners.
    pub connections: Connections,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            grpc: format!("127.0.0.1:{DEFAULT_GRPC_PORT}"),
            grpc_reflection: true,
            http: None,
            http_source: "envoy".to_owned(),
            http_path_prefix: None,
            admin: None,
            connections: Connections::default(),
        }
    }
}

/// The trusted source of the original request (`listen.http_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpSource {
    /// Envoy HTTP ext_authz: the request itself (the default).
    #[default]
    Envoy,
    /// nginx `auth_request`: `x-original-method` / `x-original-uri`.
    Nginx,
    /// Traefik `ForwardAuth`: `x-forwarded-method` / `x-forwarded-uri`.
    Traefik,
}

impl HttpSource {
    /// The source named `envoy`, `nginx` or `traefik`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "envoy" => Some(Self::Envoy),
            "nginx" => Some(Self::Nginx),
            "traefik" => Some(Self::Traefik),
            _ => None,
        }
    }
}

impl Listen {
    /// Adds every error of the `listen` section to `errors`.
    pub(crate) fn validate(&self, errors: &mut Vec<ConfigError>) {
        let addr = |field: &str, value: &str, errors: &mut Vec<ConfigError>| {
            if value.parse::<SocketAddr>().is_err() {
                errors.push(ConfigError::SocketAddr {
                    field: field.to_owned(),
                    value: value.to_owned(),
                });
            }
        };
        addr("listen.grpc", &self.grpc, errors);
        if let Some(http) = &self.http {
            addr("listen.http", http, errors);
        }
        if let Some(admin) = &self.admin {
            addr("listen.admin", admin, errors);
        }
        let source = HttpSource::parse(&self.http_source);
        if source.is_none() {
            errors.push(ConfigError::HttpSource(self.http_source.clone()));
        }
        if let Some(prefix) = &self.http_path_prefix {
            if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
                errors.push(ConfigError::PathPrefix(prefix.clone()));
            }
            if source.is_some_and(|s| s != HttpSource::Envoy) {
                errors.push(ConfigError::PathPrefixSource);
            }
        }
        self.connections.validate(errors);
    }
}

/// `listen.connections`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Connections {
    /// The time from accepting a connection (TLS handshake included) to its first bytes, and on
    /// the HTTP listener the time to receive each HTTP/1 request's full header block; default: `10s`.
    pub header_read_timeout: Parsed<Duration>,
    /// A connection the client sends nothing on for this long is closed; default: `120s`.
    pub idle_timeout: Parsed<Duration>,
    /// Connections each listener holds at once; more are closed as soon as they are accepted;
    /// default: `10000`.
    pub max: usize,
}

impl Default for Connections {
    fn default() -> Self {
        let limits = ConnectionLimits::default();
        Self {
            header_read_timeout: Parsed::new(limits.header_read_timeout),
            idle_timeout: Parsed::new(limits.idle_timeout),
            max: limits.max_connections,
        }
    }
}

impl Connections {
    /// Adds every error of `listen.connections` to `errors`.
    pub(crate) fn validate(&self, errors: &mut Vec<ConfigError>) {
        for (field, value) in [
            (
                "listen.connections.header_read_timeout",
                &self.header_read_timeout,
            ),
            ("listen.connections.idle_timeout", &self.idle_timeout),
        ] {
            if let Some(text) = value.rejected() {
                errors.push(ConfigError::Duration {
                    field: field.to_owned(),
                    value: text.to_owned(),
                });
            } else if value.get().is_zero() {
                errors.push(ConfigError::Zero {
                    field: field.to_owned(),
                });
            }
        }
        if self.max == 0 {
            errors.push(ConfigError::Zero {
                field: "listen.connections.max".to_owned(),
            });
        }
    }

    /// The limits.
    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout.get(),
            idle_timeout: self.idle_timeout.get(),
            max_connections: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_reported() {
        let mut errors = Vec::new();
        Connections::default().validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(Connections::default().limits(), ConnectionLimits::default());
        let bad = Connections {
            header_read_timeout: Parsed::parse("soon"),
            idle_timeout: Parsed::parse("0s"),
            max: 0,
        };
        bad.validate(&mut errors);
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "`listen.connections.header_read_timeout`: `soon` is not a duration like `30s`, `5m` or `1h`",
                "`listen.connections.idle_timeout` must be at least 1",
                "`listen.connections.max` must be at least 1",
            ]
        );
    }
}
