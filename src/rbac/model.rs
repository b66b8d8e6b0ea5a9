//! The account snapshot's types, generated from `proto/scopegate/v1/snapshot.proto`, and their
//! YAML/JSON file form (same field names, unknown fields rejected). Data only: no behaviour.

#![allow(missing_docs)]

use std::path::Path;

use crate::rbac::error::SnapshotError;

include!(concat!(env!("OUT_DIR"), "/scopegate.v1.rs"));

/// The two file forms of a snapshot (also used for the route table and the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Yaml,
    Json,
}

impl FileFormat {
    /// The format a path's extension names: `.json` is JSON, anything else YAML.
    pub fn of_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Yaml,
        }
    }
}

impl AccountSnapshot {
    /// Parses a snapshot from text in the given format (structure only; see `rbac::compile`).
    pub fn parse(text: &str, format: FileFormat) -> Result<Self, SnapshotError> {
        let parsed = match format {
            FileFormat::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
            FileFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| SnapshotError::Parse { message })
    }

    /// Reads and parses a snapshot file; the extension picks the format.
    pub fn read(path: &Path) -> Result<Self, SnapshotError> {
        let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, FileFormat::of_path(path)).map_err(|e| e.in_file(path))
    }
}

impl Scope {
    /// The account-level scope (both fields empty).
    pub fn account() -> Self {
        Self::default()
    }

    /// Builds a scope from optional org and project identifiers.
    pub fn new(org: Option<&str>, project: Option<&str>) -> Self {
        Self {
            org: org.unwrap_or_default().to_owned(),
            project: project.unwrap_or_default().to_owned(),
        }
    }
}

/// serde adapters that read and write the snapshot's enums by their proto names
/// (`USER_GROUP`, `INCLUDING_CHILD_SCOPES`, ...) instead of their numbers.
pub mod enum_names {
    /// Whether an enum field is unset (0, `*_UNSPECIFIED`): it is left out when writing, since
    /// reading refuses the unspecified name and an absent field reads as 0.
    pub fn is_unspecified(value: &i32) -> bool {
        *value == 0
    }

    macro_rules! adapter {
        ($module:ident, $enum:ident) => {
            /// Reads and writes the enum by its proto name.
            pub mod $module {
                use serde::{Deserialize, Deserializer, Serializer, de::Error};

                use crate::rbac::model::$enum;

                /// Writes the proto name of the value.
                pub fn serialize<S: Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
                    let name = $enum::try_from(*value)
                        .map(|v| v.as_str_name())
                        .unwrap_or("UNKNOWN");
                    serializer.serialize_str(name)
                }

                /// Reads a proto name; any other string is an error naming the accepted values.
                pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
                    let name = String::deserialize(deserializer)?;
                    $enum::from_str_name(&name)
                        .filter(|v| *v as i32 != 0)
                        .map(|v| v as i32)
                        .ok_or_else(|| D::Error::custom(format!("unknown {} `{name}`", stringify!($module))))
                }
            }
        };
    }
    adapter!(scope_filter, ScopeFilter);
    adapter!(principal_type, PrincipalType);
    adapter!(scope_level, ScopeLevel);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_file_form_round_trips_with_unset_enums() {
        let yaml = include_str!("../../deploy/examples/snapshots/demo.yaml");
        let snapshot = AccountSnapshot::parse(yaml, FileFormat::Yaml).unwrap();
        let json = serde_json::to_string(&snapshot).unwrap();
        assert!(!json.contains("UNSPECIFIED"));
        assert_eq!(AccountSnapshot::parse(&json, FileFormat::Json).unwrap(), snapshot);
    }
}
