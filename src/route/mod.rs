//! The route table: maps a request's method and path to what it requires (nothing, any valid
//! principal, or a permission on a resource) and to the scope (account, org, project) it acts in.
//!
//! This module owns the route-table file format ([`spec`]), its validation and compilation into
//! one radix-tree router per method ([`RouteTable::compile`]), request-target normalisation
//! ([`normalize()`](normalize::normalize), whose rules are documented in [`mod@normalize`]), and the
//! extraction of scope and resource identifiers from path captures, query parameters, headers and
//! the credential. It is pure and synchronous: no I/O, no async runtime, no knowledge of Envoy's
//! wire types. The caller reads the file, hands in a permission check against the catalog, and
//! maps [`RouteError`] to a 400 (`INVALID_REQUEST`).
//!
//! The embedded default table ([`DEFAULT_ROUTES_YAML`], also shipped as
//! `deploy/routes/harness-ng.yaml`) covers the Harness NG (`/ng/api`, `/pipeline/api`,
//! `/authz/api`, `/template/api`, `/resourcegroup/api`, `/audit/api`, `/cf`) and v1 (`/v1/...`)
//! APIs, and the AI SRE resources under `/v1[/orgs/{org}[/projects/{project}]]/ai-sre/`.
//!
//! For operators (`scopegate routes`), [`RouteTable::explain`] gives a decision with the route
//! and sources behind it, [`RouteTable::nearest`] the routes closest to an unmatched request, and
//! [`RouteTable::routes`] the table itself; [`coverage`] measures an endpoint list against it.

use std::borrow::Cow;

mod compile;
pub mod coverage;
mod error;
mod explain;
mod extract;
pub mod normalize;
pub mod spec;
mod table;

pub use error::{RouteError, RouteTableError, RouteTableErrors};
pub use explain::{Explanation, NearRoute, Nearest, RouteEntry};
pub use normalize::{MAX_PATH_LEN, MAX_QUERY_LEN, MAX_SEGMENTS, Query, Target, normalize};
pub use spec::{Format, RouteTableSpec, Source, Unmatched};
pub use table::{Action, METHODS, ResourceId, ResourceType, RouteTable};

/// The default route table for the Harness NG and v1 APIs and the AI SRE resources (YAML).
pub const DEFAULT_ROUTES_YAML: &str = include_str!("../../deploy/routes/harness-ng.yaml");

/// A request to route. All borrowed: building one allocates nothing.
#[derive(Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The HTTP method as received (case-sensitive: `get` is not `GET`).
    pub method: &'a str,
    /// The raw request target, query string included (Envoy's `:path`).
    pub path: &'a str,
    /// Looks a request header up by its lower-case name (Envoy comma-joins repeated headers).
    /// Pass a closure, e.g. `&|n: &str| check.headers.get(n).map(String::as_str)`, or a
    /// generic `fn h<'a>(name: &str) -> Option<&'a str>`.
    pub headers: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The account the presented credential belongs to, when authentication already knows it
    /// (the `credential` account source).
    pub credential_account: Option<&'a str>,
    /// A permission that replaces the route's (Envoy's `context_extensions.permission`).
    pub permission_override: Option<&'a str>,
}

impl<'a> RouteRequest<'a> {
    /// A request with no headers, no credential account and no permission override.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            headers: &no_headers,
            credential_account: None,
            permission_override: None,
        }
    }
}

impl std::fmt::Debug for RouteRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("credential_account", &self.credential_account)
            .field("permission_override", &self.permission_override)
            .finish_non_exhaustive()
    }
}

fn no_headers<'a>(_: &str) -> Option<&'a str> {
    None
}

/// The scope a request acts in, as identifiers read from the request. Values borrow from the
/// request where they could be used as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The account identifier, if any source gave one.
    pub account: Option<Cow<'a, str>>,
    /// The org identifier, if any.
    pub org: Option<Cow<'a, str>>,
    /// The project identifier, if any (never without an org).
    pub project: Option<Cow<'a, str>>,
}

/// Which source gave each level of a [`Scope`]; `None` where no source gave a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeOrigins<'a> {
    /// The source of the account.
    pub account: Option<&'a Source>,
    /// The source of the org.
    pub org: Option<&'a Source>,
    /// The source of the project.
    pub project: Option<&'a Source>,
}

/// What a request requires, as the route table says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision<'a> {
    /// No credential needed (`public: true`).
    Public {
        /// The matched route's path template.
        route: &'a str,
    },
    /// Any valid principal of the scope's account (`authenticated: true`).
    Authenticated {
        /// The matched route's path template.
        route: &'a str,
        /// The scope read from the request.
        scope: Scope<'a>,
    },
    /// `permission` on the resource, in `scope`.
    Permission {
        /// The matched route's path template; `None` for an unmatched request whose permission
        /// came from the override.
        route: Option<&'a str>,
        /// The permission ID (from the table, or the override).
        permission: &'a str,
        /// The resource type when the route names one; `None` means the permission's own type
        /// in the catalog.
        resource_type: Option<&'a str>,
        /// The resource identifier; `None` for create and list endpoints.
        resource_id: Option<Cow<'a, str>>,
        /// The scope the permission is checked in.
        scope: Scope<'a>,
    },
    /// No route matched.
    Unmatched {
        /// The table's `unmatched: allow_authenticated`: allow any valid principal. Otherwise
        /// deny (403, `NO_ROUTE`).
        allow_authenticated: bool,
        /// The scope read with the default sources (for logs and the account lookup).
        scope: Scope<'a>,
    },
}

impl<'a> RouteDecision<'a> {
    /// The scope of the decision (`None` for a public route).
    pub fn scope(&self) -> Option<&Scope<'a>> {
        match self {
            Self::Public { .. } => None,
            Self::Authenticated { scope, .. }
            | Self::Permission { scope, .. }
            | Self::Unmatched { scope, .. } => Some(scope),
        }
    }
}

#[cfg(test)]
mod tests;
