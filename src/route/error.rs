//! Errors of the route module: [`RouteTableError`] when a route table is loaded (every error of a
//! file is collected into [`RouteTableErrors`]) and [`RouteError`] when a request cannot be routed
//! (always a malformed request: HTTP 400, body code `INVALID_REQUEST`).

use std::fmt;

/// One problem found while loading or compiling a route table. Each names the route it is about
/// as `METHOD /path` exactly as the file wrote them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    /// The file is not valid YAML/JSON or does not have the route-table shape.
    #[error("invalid route table: {message}")]
    Parse {
        /// The parser's message (line and column included when known).
        message: String,
    },
    /// The route names a permission the catalog does not know.
    #[error("route `{route}`: unknown permission `{permission}`")]
    UnknownPermission {
        /// The route, as `METHOD /path`.
        route: String,
        /// The permission as written.
        permission: String,
    },
    /// The route's method is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
    #[error(
        "route `{route}`: unknown method `{method}` (expected GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)"
    )]
    UnknownMethod {
        /// The route, as `METHOD /path`.
        route: String,
        /// The method as written.
        method: String,
    },
    /// The route lists no method at all.
    #[error("route `{route}`: no method given")]
    NoMethod {
        /// The route, as `METHOD /path`.
        route: String,
    },
    /// The path template is malformed or can never match a normalised request path.
    #[error("route `{route}`: invalid path template: {reason}")]
    InvalidPath {
        /// The route, as `METHOD /path`.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another route already has this method and path (parameter names aside).
    #[error("route `{route}`: duplicate of an earlier route with the same method and path")]
    DuplicateRoute {
        /// The route, as `METHOD /path` with the one duplicated method.
        route: String,
    },
    /// A resource id template or a `{path: ...}` scope source of the route names a capture the
    /// route's path does not have.
    #[error("route `{route}`: {what} names `{name}`, which the path does not capture")]
    UnknownCapture {
        /// The route, as `METHOD /path`.
        route: String,
        /// Where the name was used (`resource id`, `org source`, ...).
        what: &'static str,
        /// The capture name as written.
        name: String,
    },
    /// A resource id is neither a literal nor exactly one `{capture}`, or a resource type is not
    /// an upper-case name.
    #[error("route `{route}`: invalid resource: {reason}")]
    InvalidResource {
        /// The route, as `METHOD /path`.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The route has none of `permission`, `public: true`, `authenticated: true`.
    #[error("route `{route}`: needs one of `permission`, `public: true` or `authenticated: true`")]
    NoAction {
        /// The route, as `METHOD /path`.
        route: String,
    },
    /// The route has more than one of `permission`, `public: true`, `authenticated: true`.
    #[error("route `{route}`: has more than one of `permission`, `public` and `authenticated`")]
    ConflictingActions {
        /// The route, as `METHOD /path`.
        route: String,
    },
    /// A scope source is not usable where it is written (e.g. `credential` for an org), or a
    /// header or query name is empty.
    #[error("{place}: invalid {what} source: {reason}")]
    InvalidSource {
        /// `route `METHOD /path`` or `defaults`.
        place: String,
        /// `account`, `org` or `project`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Every error found in one route table, in file order. Displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableErrors(pub Vec<RouteTableError>);

impl RouteTableErrors {
    /// The individual errors.
    pub fn errors(&self) -> &[RouteTableError] {
        &self.0
    }
}

impl fmt::Display for RouteTableErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RouteTableErrors {}

impl From<RouteTableError> for RouteTableErrors {
    fn from(e: RouteTableError) -> Self {
        Self(vec![e])
    }
}

/// Why a request could not be routed. Every variant is a malformed request: answer HTTP 400 with
/// body code `INVALID_REQUEST`. Messages never echo the request's path or values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The request target is not in origin form (`/path?query`): empty, `*` or absolute form.
    #[error("request target must be an absolute path starting with `/`")]
    NotOriginForm,
    /// A `.` or `..` path segment (also when spelled `%2e`).
    #[error("path has a `.` or `..` segment")]
    DotSegment,
    /// An escape the route table refuses: `%2F` (`/`), `%5C` (`\`), `%00` or another control byte.
    #[error("path has a forbidden percent-escape (encoded `/`, `\\` or control character)")]
    ForbiddenEscape,
    /// A `%` not followed by two hexadecimal digits.
    #[error("request target has a malformed percent-escape")]
    InvalidEscape,
    /// A control character, space, non-ASCII byte, `\` or (in the path) `;`.
    #[error("request target has a forbidden character")]
    InvalidCharacter,
    /// The path part is longer than [`MAX_PATH_LEN`](crate::route::MAX_PATH_LEN).
    #[error("path is too long")]
    PathTooLong,
    /// The query part is longer than [`MAX_QUERY_LEN`](crate::route::MAX_QUERY_LEN).
    #[error("query string is too long")]
    QueryTooLong,
    /// The path has more than [`MAX_SEGMENTS`](crate::route::MAX_SEGMENTS) segments.
    #[error("path has too many segments")]
    TooManySegments,
    /// A percent-decoded value used as an identifier is not UTF-8.
    #[error("a percent-decoded value is not valid utf-8")]
    InvalidUtf8,
    /// A query parameter used for the scope appears more than once with different values.
    #[error("query parameter `{0}` is given more than once with different values")]
    AmbiguousQuery(String),
    /// A header used for the scope holds several comma-joined values.
    #[error("header used for the scope holds more than one value")]
    AmbiguousHeader,
    /// The request names the account in more than one place, with different values.
    #[error("the account is given more than once with different values")]
    AmbiguousAccount,
    /// The request names a project but no organization.
    #[error("a project was given without an organization")]
    ProjectWithoutOrg,
}

impl RouteError {
    /// A stable snake-case code for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotOriginForm => "not_origin_form",
            Self::DotSegment => "dot_segment",
            Self::ForbiddenEscape => "forbidden_escape",
            Self::InvalidEscape => "invalid_escape",
            Self::InvalidCharacter => "invalid_character",
            Self::PathTooLong => "path_too_long",
            Self::QueryTooLong => "query_too_long",
            Self::TooManySegments => "too_many_segments",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::AmbiguousQuery(_) => "ambiguous_query",
            Self::AmbiguousHeader => "ambiguous_header",
            Self::AmbiguousAccount => "ambiguous_account",
            Self::ProjectWithoutOrg => "project_without_org",
        }
    }

    /// The HTTP status to answer with: always 400.
    pub fn http_status(&self) -> u16 {
        400
    }
}
