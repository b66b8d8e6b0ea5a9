//! Building an [`Authorizer`]: the permission catalog (embedded or a file), the route table
//! (embedded Harness table or a file), the account source, credential verification and JWT
//! issuers; then the audit log and dry-run mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Authorizer;
use super::credentials::Credentials;
use super::observe::Observer;
use crate::accounts::{Accounts, SnapshotSource, SourceError};
use crate::audit::AuditLog;
use crate::jwks::{JwksError, JwtAuthenticator, JwtSettings};
use crate::rbac::Catalog;
use crate::route::{RouteTable, RouteTableErrors};

/// How long a verified token stays in the cache.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How many verified tokens the cache holds at most.
pub const TOKEN_CACHE_CAPACITY: u64 = 100_000;
/// How long a check waits by default for an account revision it demands.
pub const MAX_REVISION_WAIT: Duration = Duration::from_millis(150);

/// Why the request policy could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The permission catalog failed to load.
    #[error("permission catalog: {0}")]
    Catalog(String),
    /// The route table could not be read.
    #[error("cannot read route table `{path}`: {source}")]
    RoutesRead {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The route table is invalid.
    #[error("invalid route table: {0}")]
    Routes(#[from] RouteTableErrors),
    /// The control-plane source could not be set up.
    #[error(transparent)]
    ControlPlane(#[from] SourceError),
    /// JWT issuers could not be set up (e.g. a static key file is unreadable).
    #[error("jwt: {0}")]
    Jwt(#[from] JwksError),
}

/// Settings of the request policy beyond its sources.
#[derive(Debug, Clone)]
pub struct AuthorizerOptions {
    /// A catalog file replacing the embedded catalog.
    pub catalog: Option<PathBuf>,
    /// How many verified tokens the cache holds.
    pub token_cache_capacity: u64,
    /// How long a verified token stays cached.
    pub token_ttl: Duration,
    /// JWT issuers; `None` accepts API keys only.
    pub jwt: Option<JwtSettings>,
    /// How long a check waits for an account revision it demands (`x-scopegate-min-revision`)
    /// before 503 `revision_not_reached`; zero answers at once.
    pub max_revision_wait: Duration,
}

impl Default for AuthorizerOptions {
    fn default() -> Self {
        Self {
            catalog: None,
            token_cache_capacity: TOKEN_CACHE_CAPACITY,
            token_ttl: TOKEN_TTL,
            jwt: None,
            max_revision_wait: MAX_REVISION_WAIT,
        }
    }
}

fn route_table(routes: Option<&Path>, catalog: &Catalog) -> Result<RouteTable, LoadError> {
    let known = |id: &str| catalog.permission_id(id).is_some();
    let Some(path) = routes else {
        return Ok(RouteTable::default_harness(&known)?);
    };
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::RoutesRead {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    Ok(RouteTable::parse(
        &text,
        crate::route::Format::from_file_name(name),
        &known,
    )?)
}

impl Authorizer {
    /// Loads the route table (`None` = the embedded default) and the snapshots once.
    pub fn load(snapshots: SnapshotSource, routes: Option<&Path>) -> Result<Self, LoadError> {
        Self::load_with(snapshots, routes, &AuthorizerOptions::default())
    }

    /// Like `load`, with a catalog override, token-cache settings and JWT issuers.
    pub fn load_with(
        snapshots: SnapshotSource,
        routes: Option<&Path>,
        options: &AuthorizerOptions,
    ) -> Result<Self, LoadError> {
        let catalog = match &options.catalog {
            Some(path) => Catalog::from_file(path),
            None => Catalog::embedded(),
        };
        let catalog = Arc::new(catalog.map_err(|e| LoadError::Catalog(e.to_string()))?);
        let routes = route_table(routes, &catalog)?;
        let accounts = Accounts::new(snapshots, catalog)?;
        let jwt = match &options.jwt {
            Some(settings) => Some(Arc::new(JwtAuthenticator::new(settings.clone())?)),
            None => None,
        };
        Ok(Self {
            routes,
            accounts,
            credentials: Credentials::new(options.token_cache_capacity, options.token_ttl, jwt),
            observer: Observer::new(),
            max_revision_wait: options.max_revision_wait,
        })
    }

    /// The embedded demo: demo snapshot and default route table.
    pub fn demo() -> Result<Self, LoadError> {
        Self::load(SnapshotSource::Embedded, None)
    }

    /// This policy writing decision records to `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.observer.set_audit(audit);
        self
    }

    /// This policy in dry-run mode (`mode: dry_run`): every request is decided, counted and audited
    /// with its real result, then allowed.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.observer.set_dry_run(dry_run);
        self
    }
}
