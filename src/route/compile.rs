//! Route-table compilation: validates a [`RouteTableSpec`] as a whole (every error at once) and
//! builds one router per method.

use std::collections::HashSet;

use super::normalize::MAX_SEGMENTS;
use super::spec::{Format, RouteSpec, RouteTableSpec, ScopeSpec, Source};
use super::table::{Action, CompiledRoute, ResourceId, ResourceType, RouteScope, method_index};
use super::{RouteTable, RouteTableError, RouteTableErrors};

impl RouteTable {
    /// Validates and compiles a route table. Every problem is reported, each naming its route:
    /// an unknown permission (by `is_known_permission`), an unknown method, an invalid path
    /// template, a duplicate method and path, a resource id or scope source naming a capture the
    /// path lacks, a route with none or several of `permission` / `public` / `authenticated`.
    pub fn compile(
        spec: &RouteTableSpec,
        is_known_permission: &dyn Fn(&str) -> bool,
    ) -> Result<RouteTable, RouteTableErrors> {
        let mut errors = Vec::new();
        let account = sources(&spec.account, None, "account", None, &mut errors);
        let org = sources(&spec.defaults.org, None, "org", None, &mut errors);
        let project = sources(&spec.defaults.project, None, "project", None, &mut errors);
        let mut table = RouteTable {
            routers: std::array::from_fn(|_| matchit::Router::new()),
            routes: Vec::with_capacity(spec.routes.len()),
            account,
            org,
            project,
            unmatched: spec.unmatched,
        };
        let mut seen: HashSet<(usize, String)> = HashSet::new();
        for route in &spec.routes {
            let label = format!("{} {}", route.method.0.join("|"), route.path);
            let compiled = compile_route(route, &label, is_known_permission, &mut errors);
            let Some((mut compiled, shape)) = compiled else {
                continue;
            };
            let index = table.routes.len();
            let mut methods = HashSet::new();
            for method in &route.method.0 {
                let Some(m) = method_index(method) else {
                    continue;
                };
                let one = format!("{method} {}", route.path);
                if !methods.insert(m) || !seen.insert((m, shape.clone())) {
                    errors.push(RouteTableError::DuplicateRoute { route: one });
                    continue;
                }
                match table.routers[m].insert(route.path.as_str(), index) {
                    Ok(()) => compiled.methods.push(m),
                    Err(e) => errors.push(RouteTableError::InvalidPath {
                        route: one,
                        reason: insert_error(&e),
                    }),
                }
            }
            table.routes.push(compiled);
        }
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(RouteTableErrors(errors))
        }
    }

    /// Parses and compiles a route-table file of the given format.
    pub fn parse(
        text: &str,
        format: Format,
        is_known_permission: &dyn Fn(&str) -> bool,
    ) -> Result<RouteTable, RouteTableErrors> {
        let spec = RouteTableSpec::parse(text, format)?;
        Self::compile(&spec, is_known_permission)
    }

    /// Parses and compiles a YAML route table.
    pub fn from_yaml_str(
        text: &str,
        is_known_permission: &dyn Fn(&str) -> bool,
    ) -> Result<RouteTable, RouteTableErrors> {
        Self::parse(text, Format::Yaml, is_known_permission)
    }

    /// Parses and compiles a JSON route table.
    pub fn from_json_str(
        text: &str,
        is_known_permission: &dyn Fn(&str) -> bool,
    ) -> Result<RouteTable, RouteTableErrors> {
        Self::parse(text, Format::Json, is_known_permission)
    }

    /// Compiles the embedded default table for the Harness NG and v1 APIs and the AI SRE
    /// resources ([`DEFAULT_ROUTES_YAML`](super::DEFAULT_ROUTES_YAML)).
    pub fn default_harness(
        is_known_permission: &dyn Fn(&str) -> bool,
    ) -> Result<RouteTable, RouteTableErrors> {
        Self::from_yaml_str(super::DEFAULT_ROUTES_YAML, is_known_permission)
    }
}

/// Compiles one route, pushing its errors; `None` when it cannot go into a router. Returns the
/// route and its path shape (captures unnamed) for duplicate detection.
fn compile_route(
    route: &RouteSpec,
    label: &str,
    is_known: &dyn Fn(&str) -> bool,
    errors: &mut Vec<RouteTableError>,
) -> Option<(CompiledRoute, String)> {
    if route.method.0.is_empty() {
        errors.push(RouteTableError::NoMethod {
            route: label.to_owned(),
        });
    }
    for method in &route.method.0 {
        if method_index(method).is_none() {
            errors.push(RouteTableError::UnknownMethod {
                route: label.to_owned(),
                method: method.clone(),
            });
        }
    }
    let template = match check_template(&route.path) {
        Ok(t) => Some(t),
        Err(reason) => {
            errors.push(RouteTableError::InvalidPath {
                route: label.to_owned(),
                reason,
            });
            None
        }
    };
    let captures: &[String] = template.as_ref().map_or(&[], |t| &t.captures);
    let set = [route.permission.is_some(), route.public, route.authenticated];
    let action = match set.iter().filter(|b| **b).count() {
        0 => {
            errors.push(RouteTableError::NoAction {
                route: label.to_owned(),
            });
            Action::Authenticated
        }
        1 => match &route.permission {
            Some(p) => {
                if !is_known(p) {
                    errors.push(RouteTableError::UnknownPermission {
                        route: label.to_owned(),
                        permission: p.clone(),
                    });
                }
                Action::Permission(p.clone())
            }
            None if route.public => Action::Public,
            None => Action::Authenticated,
        },
        _ => {
            errors.push(RouteTableError::ConflictingActions {
                route: label.to_owned(),
            });
            Action::Authenticated
        }
    };
    let (resource_type, resource_id) = resource(route, label, template.is_some().then_some(captures), errors);
    let scope = route.scope.as_ref().map(|s: &ScopeSpec| {
        let caps = template.is_some().then_some(captures);
        RouteScope {
            account: s
                .account
                .as_ref()
                .map(|a| sources(a, Some(label), "account", caps, errors)),
            org: sources(&s.org, Some(label), "org", caps, errors),
            project: sources(&s.project, Some(label), "project", caps, errors),
        }
    });
    let template = template?;
    Some((
        CompiledRoute {
            methods: Vec::with_capacity(route.method.0.len()),
            template: route.path.clone(),
            action,
            resource_type,
            resource_id,
            scope,
        },
        template.shape,
    ))
}

fn resource(
    route: &RouteSpec,
    label: &str,
    captures: Option<&[String]>,
    errors: &mut Vec<RouteTableError>,
) -> (ResourceType, ResourceId) {
    let Some(res) = &route.resource else {
        return (ResourceType::Catalog, ResourceId::None);
    };
    let mut invalid = |reason: &str| {
        errors.push(RouteTableError::InvalidResource {
            route: label.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if route.permission.is_none() {
        invalid("only a route with a `permission` has a resource");
    }
    let rtype = match res.resource_type.as_deref() {
        None => ResourceType::Catalog,
        Some("SCOPE") => {
            if res.id.is_some() {
                invalid("type `SCOPE` takes no `id`: the scope itself is the resource");
            }
            ResourceType::Scope
        }
        Some(t) if is_type_name(t) => ResourceType::Named(t.to_owned()),
        Some(t) => {
            invalid(&format!("type `{t}` must be an upper-case name like `PIPELINE`"));
            ResourceType::Catalog
        }
    };
    let id = match res.id.as_deref() {
        None => ResourceId::None,
        Some(id) => match id.strip_prefix('{').and_then(|i| i.strip_suffix('}')) {
            Some(name) => {
                let name = name.strip_prefix('*').unwrap_or(name);
                if !is_capture_name(name) {
                    invalid(&format!(
                        "id `{id}` must be a literal or exactly one `{{capture}}`"
                    ));
                } else if captures.is_some_and(|c| !c.iter().any(|n| n == name)) {
                    errors.push(RouteTableError::UnknownCapture {
                        route: label.to_owned(),
                        what: "resource id",
                        name: name.to_owned(),
                    });
                }
                ResourceId::Capture(name.to_owned())
            }
            None if id.is_empty() || id.contains(['{', '}']) => {
                invalid(&format!(
                    "id `{id}` must be a literal or exactly one `{{capture}}`"
                ));
                ResourceId::None
            }
            None => ResourceId::Literal(id.to_owned()),
        },
    };
    (rtype, id)
}

/// Checks a list of sources and lower-cases header names. `route` is the route's label (`None`
/// for the table's defaults); `captures` the route's captures (`None` for the defaults, where a
/// missing capture simply yields nothing, or when the path is invalid).
fn sources(
    list: &[Source],
    route: Option<&str>,
    what: &'static str,
    captures: Option<&[String]>,
    errors: &mut Vec<RouteTableError>,
) -> Vec<Source> {
    let mut out = Vec::with_capacity(list.len());
    for src in list {
        let invalid = |reason: String| RouteTableError::InvalidSource {
            place: route.map_or_else(|| "defaults".to_owned(), |r| format!("route `{r}`")),
            what,
            reason,
        };
        match src {
            Source::Credential if what != "account" => {
                errors.push(invalid("`credential` names only an account".into()));
            }
            Source::Path(n) | Source::Query(n) | Source::Header(n) if n.is_empty() => {
                errors.push(invalid("a source name must not be empty".into()));
            }
            Source::Path(n) if captures.is_some_and(|c| !c.iter().any(|x| x == n)) => {
                errors.push(RouteTableError::UnknownCapture {
                    route: route.unwrap_or_default().to_owned(),
                    what: match what {
                        "account" => "account source",
                        "org" => "org source",
                        _ => "project source",
                    },
                    name: n.clone(),
                });
            }
            Source::Header(n) => out.push(Source::Header(n.to_ascii_lowercase())),
            other => out.push(other.clone()),
        }
    }
    out
}

/// A checked path template.
struct Template {
    /// Capture names, without `*`.
    captures: Vec<String>,
    /// The template with every capture written `{}` (or `{*}`), for duplicate detection.
    shape: String,
}

/// Checks that a template is well-formed and in normalised form (else it could never match).
fn check_template(path: &str) -> Result<Template, String> {
    if !path.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err("must not end with `/` (request paths lose their trailing slash)".into());
    }
    if path.contains("//") {
        return Err("must not contain `//`".into());
    }
    if let Some(c) = path
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '\\' | ';' | '?' | '#' | '%'))
    {
        return Err(format!("must not contain {c:?}"));
    }
    let segments = path.split('/').skip(1);
    if segments.clone().any(|s| s == "." || s == "..") {
        return Err("must not have a `.` or `..` segment".into());
    }
    if segments.count() > MAX_SEGMENTS {
        return Err(format!("has more than {MAX_SEGMENTS} segments"));
    }
    let mut captures: Vec<String> = Vec::new();
    let mut shape = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find(['{', '}']) {
        shape.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            shape.push_str(&tail[..2]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err("has an unmatched `}` (write `}}` for a literal one)".into());
        }
        let Some(end) = tail.find('}') else {
            return Err("has an unclosed `{`".into());
        };
        let inner = &tail[1..end];
        let (star, name) = match inner.strip_prefix('*') {
            Some(n) => ("*", n),
            None => ("", inner),
        };
        if !is_capture_name(name) {
            return Err(format!(
                "capture `{{{inner}}}` needs a name of letters, digits and `_`"
            ));
        }
        if captures.iter().any(|c| c == name) {
            return Err(format!("captures `{name}` twice"));
        }
        captures.push(name.to_owned());
        shape.push('{');
        shape.push_str(star);
        shape.push('}');
        rest = &tail[end + 1..];
    }
    shape.push_str(rest);
    Ok(Template { captures, shape })
}

fn is_capture_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_type_name(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_uppercase())
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn insert_error(e: &matchit::InsertError) -> String {
    match e {
        matchit::InsertError::Conflict { with } => {
            format!("overlaps the route `{with}` so that neither can be chosen")
        }
        matchit::InsertError::InvalidParamSegment => "only one capture is allowed per segment".into(),
        matchit::InsertError::InvalidParam => "a capture is malformed".into(),
        matchit::InsertError::InvalidCatchAll => "a `{*rest}` capture must be the last segment".into(),
        _ => "rejected by the router".into(),
    }
}
