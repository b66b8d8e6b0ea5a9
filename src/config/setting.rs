//! Settings written as text and parsed once, when the file is read: durations (`500ms`, `30s`,
//! `5m`, `1h`, `1d`), `mode`, `tls.min_version` and JWT algorithms. A [`Parsed`] holds the typed
//! value; text that does not parse is kept beside it, so [`Config::validate`](super::Config::validate)
//! reports it with the field's path among every other error instead of the parser stopping at the
//! first one.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::tls::MinVersion;

/// A type a setting's text parses into.
pub trait FromSetting: Sized {
    /// The value `text` stands for, if any.
    fn from_setting(text: &str) -> Option<Self>;
    /// What [`Parsed::get`] answers for text that did not parse. Only a configuration that skipped
    /// [`Config::validate`](super::Config::validate) ever uses it: every loader in the crate validates.
    fn fallback() -> Self;
}

/// A setting parsed when the file was read: its value, or the text that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    value: T,
    rejected: Option<Box<str>>,
}

impl<T: Copy> Parsed<T> {
    /// A valid setting of `value` (the defaults are built this way).
    pub const fn new(value: T) -> Self {
        Self {
            value,
            rejected: None,
        }
    }

    /// The value (for text [`Config::validate`](super::Config::validate) rejects, the type's
    /// [`FromSetting::fallback`]).
    pub fn get(&self) -> T {
        self.value
    }

    /// The text given, when it did not parse.
    pub fn rejected(&self) -> Option<&str> {
        self.rejected.as_deref()
    }
}

impl<T: FromSetting + Copy> Parsed<T> {
    /// Parses `text`, keeping it when it does not parse.
    pub fn parse(text: &str) -> Self {
        match T::from_setting(text) {
            Some(value) => Self::new(value),
            None => Self {
                value: T::fallback(),
                rejected: Some(text.into()),
            },
        }
    }
}

impl<'de, T: FromSetting + Copy> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self::parse(&text))
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

impl FromSetting for Duration {
    fn from_setting(text: &str) -> Option<Self> {
        parse_duration(text)
    }

    /// Zero, which every duration the validator accepts is checked against where it matters.
    fn fallback() -> Self {
        Duration::ZERO
    }
}

/// `mode`: whether decisions are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Deny what the policy denies (the default).
    #[default]
    Enforce,
    /// Decide, log and audit, but always allow.
    DryRun,
}

impl FromSetting for Mode {
    fn from_setting(text: &str) -> Option<Self> {
        match text {
            "enforce" => Some(Self::Enforce),
            "dry_run" => Some(Self::DryRun),
            _ => None,
        }
    }

    fn fallback() -> Self {
        Self::Enforce
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforce => "enforce",
            Self::DryRun => "dry_run",
        })
    }
}

impl FromSetting for MinVersion {
    fn from_setting(text: &str) -> Option<Self> {
        MinVersion::parse(text)
    }

    fn fallback() -> Self {
        Self::Tls13
    }
}

/// The JWT algorithms an issuer may be configured with: asymmetric ones only (a shared HMAC
/// secret would let anyone who verifies tokens mint them).
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl FromSetting for jsonwebtoken::Algorithm {
    fn from_setting(text: &str) -> Option<Self> {
        ALGORITHMS.contains(&text).then(|| text.parse().ok()).flatten()
    }

    /// RS256: asymmetric, so a fallback never admits a token signed with a shared secret.
    fn fallback() -> Self {
        Self::RS256
    }
}
