//! Errors of the RBAC engine: reading a snapshot or catalog, and every way a snapshot can be invalid.

use std::fmt;
use std::path::Path;

/// A snapshot that could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a snapshot (syntax, types or unknown fields).
    #[error("not a valid snapshot: {message}")]
    Parse {
        /// What the parser said.
        message: String,
    },
    /// The same, for a named file.
    #[error("`{path}` is not a valid snapshot: {message}")]
    ParseFile {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// The snapshot parsed but breaks the model's rules; every error is listed.
    #[error("snapshot of account `{account}` is invalid ({} errors):\n{}", errors.len(), ErrorList(errors))]
    Invalid {
        /// The snapshot's account.
        account: String,
        /// Every error found.
        errors: Vec<ValidationError>,
    },
}

impl SnapshotError {
    /// Names the file a parse error came from.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            Self::Parse { message } => Self::ParseFile {
                path: path.display().to_string(),
                message,
            },
            other => other,
        }
    }

    /// A stable code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read_failed",
            Self::Parse { .. } | Self::ParseFile { .. } => "parse_failed",
            Self::Invalid { .. } => "invalid",
        }
    }
}

struct ErrorList<'a>(&'a [ValidationError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {error}")?;
        }
        Ok(())
    }
}

/// One broken rule of a snapshot. `entry` names the offending entry, e.g.
/// ``role `pipeline_runner` in `acme/eng` ``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A permission ID the catalog does not know.
    #[error("{entry}: unknown permission `{permission}`")]
    UnknownPermission {
        /// The entry.
        entry: String,
        /// The unknown ID.
        permission: String,
    },
    /// A permission granted at a level the catalog does not allow it at.
    #[error("{entry}: permission `{permission}` is not allowed at {level} level")]
    PermissionNotAllowedAtLevel {
        /// The entry.
        entry: String,
        /// The permission.
        permission: String,
        /// The level.
        level: &'static str,
    },
    /// A role that is neither a custom role of the assignment's scope nor a managed role.
    #[error("{entry}: unknown role `{role}`")]
    UnknownRole {
        /// The entry.
        entry: String,
        /// The role.
        role: String,
    },
    /// A resource group that is neither a custom group of the assignment's scope nor a managed one.
    #[error("{entry}: unknown resource group `{group}`")]
    UnknownResourceGroup {
        /// The entry.
        entry: String,
        /// The group.
        group: String,
    },
    /// A managed role or resource group assigned at a level it does not allow.
    #[error("{entry}: managed {kind} `{name}` cannot be assigned at {level} level")]
    ManagedLevel {
        /// The entry.
        entry: String,
        /// `role` or `resource group`.
        kind: &'static str,
        /// The managed role or group.
        name: String,
        /// The level.
        level: &'static str,
    },
    /// A scope that is not in the snapshot's organizations and projects.
    #[error("{entry}: unknown scope `{scope}`")]
    UnknownScope {
        /// The entry.
        entry: String,
        /// The scope path.
        scope: String,
    },
    /// A user, user group or service account that does not exist where it is looked up.
    #[error("{entry}: unknown {kind} `{name}`")]
    UnknownPrincipal {
        /// The entry.
        entry: String,
        /// `user`, `user group` or `service account`.
        kind: &'static str,
        /// What was looked up, with its scope where it has one.
        name: String,
    },
    /// A resource type the catalog does not know.
    #[error("{entry}: unknown resource type `{resource_type}`")]
    UnknownResourceType {
        /// The entry.
        entry: String,
        /// The type.
        resource_type: String,
    },
    /// Two entries of one kind share an identifier in one scope.
    #[error("{entry}: identifier is used more than once")]
    DuplicateIdentifier {
        /// The entry.
        entry: String,
    },
    /// The snapshot is older than the one in force.
    #[error("account `{account}`: version {version} is older than version {current} in force")]
    VersionBackwards {
        /// The account.
        account: String,
        /// The rejected version.
        version: u64,
        /// The version in force.
        current: u64,
    },
    /// Any other malformed field (empty identifier, bad hash or timestamp, ...).
    #[error("{entry}: {message}")]
    Malformed {
        /// The entry.
        entry: String,
        /// What is wrong.
        message: String,
    },
}

/// A catalog file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a catalog.
    #[error("not a valid catalog: {message}")]
    Parse {
        /// What the parser said.
        message: String,
    },
    /// The catalog parsed but breaks its rules; every error is listed.
    #[error("invalid catalog: {}", errors.join("; "))]
    Invalid {
        /// Every error found.
        errors: Vec<String>,
    },
}
