//! `listen.connections`: how long a client may take to send a request's headers, how long an idle
//! connection stays open, and how many connections each listener holds at once. The same limits
//! apply to both listeners (gRPC and HTTP), plaintext or TLS.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, parse_duration};
use crate::tls::ConnectionLimits;

/// `listen.connections`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Connections {
    /// The time from accepting a connection (TLS handshake included) to its first bytes, and on
    /// the HTTP listener the time to receive each HTTP/1 request's full header block; default: `10s`.
    pub header_read_timeout: String,
    /// A connection the client sends nothing on for this long is closed; default: `120s`.
    pub idle_timeout: String,
    /// Connections each listener holds at once; more are closed as soon as they are accepted;
    /// default: `10000`.
    pub max: usize,
}

impl Default for Connections {
    fn default() -> Self {
        let limits = ConnectionLimits::default();
        Self {
            header_read_timeout: format!("{}s", limits.header_read_timeout.as_secs()),
            idle_timeout: format!("{}s", limits.idle_timeout.as_secs()),
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
            match parse_duration(value) {
                None => errors.push(ConfigError::Duration {
                    field: field.to_owned(),
                    value: value.clone(),
                }),
                Some(Duration::ZERO) => errors.push(ConfigError::Zero {
                    field: field.to_owned(),
                }),
                Some(_) => {}
            }
        }
        if self.max == 0 {
            errors.push(ConfigError::Zero {
                field: "listen.connections.max".to_owned(),
            });
        }
    }

    /// The limits, once [`Connections::validate`] passed (unparsable durations keep their default).
    pub fn limits(&self) -> ConnectionLimits {
        let defaults = ConnectionLimits::default();
        ConnectionLimits {
            header_read_timeout: parse_duration(&self.header_read_timeout)
                .unwrap_or(defaults.header_read_timeout),
            idle_timeout: parse_duration(&self.idle_timeout).unwrap_or(defaults.idle_timeout),
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
            header_read_timeout: "soon".to_owned(),
            idle_timeout: "0s".to_owned(),
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
