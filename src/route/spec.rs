//! The route-table file as written (YAML or JSON, same structure): serde types only, no checks
//! beyond the shape. [`RouteTable::compile`](crate::route::RouteTable::compile) validates them.
//!
//! ```yaml
//! account: [{header: harness-account}, {query: accountIdentifier}, credential]
//! defaults:
//!   org: [{path: org}, {query: orgIdentifier}]
//!   project: [{path: project}, {query: projectIdentifier}]
//! unmatched: deny                # or allow_authenticated
//! routes:
//!   - method: [PUT, PATCH]
//!     path: /v1/orgs/{org}/projects/{project}/pipelines/{pipeline}
//!     permission: core_pipeline_edit
//!     resource: {type: PIPELINE, id: "{pipeline}"}
//!   - {method: GET, path: /ng/api/projects/{id}, permission: core_project_view,
//!      resource: {type: PROJECT, id: "{id}"}, scope: {org: [{query: orgIdentifier}]}}
//!   - {method: GET, path: /health, public: true}
//!   - {method: GET, path: /v1/me, authenticated: true}
//! ```

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Where a value of the scope (account, org or project) is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `{path: name}`: the capture `{name}` of the matched route's path (percent-decoded).
    Path(String),
    /// `{query: name}`: the query parameter `name` (form-decoded; case-sensitive name).
    Query(String),
    /// `{header: name}`: the request header `name` (matched lower-case).
    Header(String),
    /// `credential`: the account the credential belongs to (account sources only).
    Credential,
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = Source;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`credential` or a map with one of `path`, `query`, `header`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Source, E> {
        if v == "credential" {
            Ok(Source::Credential)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Source, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        let value: String = map.next_value()?;
        let source = match key.as_str() {
            "path" => Source::Path(value),
            "query" => Source::Query(value),
            "header" => Source::Header(value),
            other => {
                return Err(de::Error::unknown_field(other, &["path", "query", "header"]));
            }
        };
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom(
                "a source is a map with exactly one of `path`, `query`, `header`",
            ));
        }
        Ok(source)
    }
}

/// One HTTP method or a list of them (`method: GET` or `method: [PUT, PATCH]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Methods(pub Vec<String>);

impl<'de> Deserialize<'de> for Methods {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MethodsVisitor)
    }
}

struct MethodsVisitor;

impl<'de> Visitor<'de> for MethodsVisitor {
    type Value = Methods;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a method name or a list of method names")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Methods, E> {
        Ok(Methods(vec![v.to_owned()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Methods, A::Error> {
        let mut out = Vec::new();
        while let Some(m) = seq.next_element::<String>()? {
            out.push(m);
        }
        Ok(Methods(out))
    }
}

/// What a request that matches no route gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Deny it (403, code `NO_ROUTE`). The default.
    #[default]
    Deny,
    /// Allow any authenticated principal, with no permission check.
    AllowAuthenticated,
}

/// The default org and project sources, used by every route without a `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeDefaults {
    /// Org sources; default `[{path: org}, {query: orgIdentifier}]`.
    pub org: Vec<Source>,
    /// Project sources; default `[{path: project}, {query: projectIdentifier}]`.
    pub project: Vec<Source>,
}

impl Default for ScopeDefaults {
    fn default() -> Self {
        Self {
            org: vec![Source::Path("org".into()), Source::Query("orgIdentifier".into())],
            project: vec![
                Source::Path("project".into()),
                Source::Query("projectIdentifier".into()),
            ],
        }
    }
}

/// A route's own scope sources. When a route has `scope`, it replaces the defaults as a whole: a
/// level it leaves out (`org`, `project`) has no source, so `scope: {org: [{query: orgIdentifier}]}`
/// checks in the org and never in a project, and `scope: {}` checks in the account. `account`,
/// when given, replaces the table's `account` list for this route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeSpec {
    /// Account sources for this route (default: the table's `account`).
    pub account: Option<Vec<Source>>,
    /// Org sources (default: none).
    pub org: Vec<Source>,
    /// Project sources (default: none).
    pub project: Vec<Source>,
}

/// The resource a route's permission is checked on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceSpec {
    /// The resource type (upper-case, e.g. `PIPELINE`); default: the permission's type in the
    /// catalog. The pseudo-type `SCOPE` checks the request's scope itself: `PROJECT/p` in the
    /// parent org, `ORGANIZATION/o` in the account, or `ACCOUNT/a` in the account.
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    /// The resource identifier: a literal, or exactly one capture of the path such as
    /// `"{pipeline}"`. Default: none (create and list endpoints).
    pub id: Option<String>,
}

/// One route of the table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The method or methods (upper-case, as HTTP spells them).
    pub method: Methods,
    /// The path template: `{name}` captures one segment, `{*name}` the rest of the path.
    pub path: String,
    /// The permission the route requires.
    #[serde(default)]
    pub permission: Option<String>,
    /// The resource the permission is checked on.
    #[serde(default)]
    pub resource: Option<ResourceSpec>,
    /// Scope sources replacing the table's defaults for this route.
    #[serde(default)]
    pub scope: Option<ScopeSpec>,
    /// `true`: no credential needed.
    #[serde(default)]
    pub public: bool,
    /// `true`: any valid principal, no permission.
    #[serde(default)]
    pub authenticated: bool,
}

/// A whole route-table file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableSpec {
    /// Account sources, first non-empty wins; default
    /// `[{header: harness-account}, {query: accountIdentifier}, credential]`.
    #[serde(default = "default_account")]
    pub account: Vec<Source>,
    /// Default org and project sources.
    #[serde(default)]
    pub defaults: ScopeDefaults,
    /// What a request matching no route gets; default `deny`.
    #[serde(default)]
    pub unmatched: Unmatched,
    /// The routes.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

fn default_account() -> Vec<Source> {
    vec![
        Source::Header("harness-account".into()),
        Source::Query("accountIdentifier".into()),
        Source::Credential,
    ]
}

/// The syntax of a route-table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format for a file name by its extension: `.json` is JSON, anything else YAML.
    pub fn from_file_name(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".json") {
            Self::Json
        } else {
            Self::Yaml
        }
    }
}

impl RouteTableSpec {
    /// Parses a route-table file of the given format.
    pub fn parse(text: &str, format: Format) -> Result<Self, super::RouteTableError> {
        let parsed = match format {
            Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
            Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|message| super::RouteTableError::Parse { message })
    }
}
