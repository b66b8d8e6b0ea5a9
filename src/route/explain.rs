//! What an operator needs to understand a routing decision (`scopegate routes`): a read-only view
//! of each compiled route ([`RouteEntry`]); [`RouteTable::explain`], which is
//! [`RouteTable::resolve`] itself (same normalisation, same routers, same scope extraction) with
//! the matched route and the source of each scope level kept; [`RouteTable::nearest`], the routes
//! closest to a request that no route matches; and [`RouteTable::source_lines`], the line of its
//! file each route is written on.

use std::collections::{HashMap, VecDeque};

use super::normalize::normalize;
use super::spec::Source;
use super::table::{Action, CompiledRoute, METHODS, ResourceId, ResourceType, method_index};
use super::{RouteDecision, RouteError, RouteRequest, RouteTable, ScopeOrigins};

/// One route of a compiled table.
#[derive(Clone, Copy)]
pub struct RouteEntry<'t> {
    table: &'t RouteTable,
    route: &'t CompiledRoute,
    index: usize,
}

impl std::fmt::Debug for RouteEntry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteEntry")
            .field("index", &self.index)
            .field("methods", &self.methods().collect::<Vec<_>>())
            .field("template", &self.template())
            .finish_non_exhaustive()
    }
}

impl<'t> RouteEntry<'t> {
    /// The route's position in the table (0-based, file order).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The methods the route answers, in file order.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> + 't {
        self.route.methods.iter().filter_map(|m| METHODS.get(*m).copied())
    }

    /// Whether the route answers `method` (exactly as written, upper case).
    pub fn has_method(&self, method: &str) -> bool {
        method_index(method).is_some_and(|m| self.route.methods.contains(&m))
    }

    /// The path template as written.
    pub fn template(&self) -> &'t str {
        &self.route.template
    }

    /// What the route requires.
    pub fn action(&self) -> &'t Action {
        &self.route.action
    }

    /// The permission the route requires, if it requires one.
    pub fn permission(&self) -> Option<&'t str> {
        match &self.route.action {
            Action::Permission(p) => Some(p),
            Action::Public | Action::Authenticated => None,
        }
    }

    /// The resource type the permission is checked on.
    pub fn resource_type(&self) -> &'t ResourceType {
        &self.route.resource_type
    }

    /// Where the resource identifier comes from.
    pub fn resource_id(&self) -> &'t ResourceId {
        &self.route.resource_id
    }

    /// The account sources in force for this route (its own, or the table's).
    pub fn account_sources(&self) -> &'t [Source] {
        match &self.route.scope {
            Some(s) => s.account.as_deref().unwrap_or(&self.table.account),
            None => &self.table.account,
        }
    }

    /// The org sources in force for this route (empty: the route never checks in an org).
    pub fn org_sources(&self) -> &'t [Source] {
        self.route.scope.as_ref().map_or(&self.table.org, |s| &s.org)
    }

    /// The project sources in force for this route (empty: never in a project).
    pub fn project_sources(&self) -> &'t [Source] {
        self.route
            .scope
            .as_ref()
            .map_or(&self.table.project, |s| &s.project)
    }
}

/// A routing decision and what led to it.
#[derive(Debug, Clone)]
pub struct Explanation<'a> {
    /// The decision, exactly as [`RouteTable::resolve`] gives it.
    pub decision: RouteDecision<'a>,
    /// The matched route, if one matched.
    pub route: Option<RouteEntry<'a>>,
    /// A HEAD request matched a GET route (no HEAD route matched).
    pub head_as_get: bool,
    /// The source each level of the scope was read from. For a `type: SCOPE` resource these are
    /// read before the deepest level becomes the resource.
    pub origins: ScopeOrigins<'a>,
}

/// The routes closest to a request (see [`RouteTable::nearest`]).
#[derive(Debug, Clone, Default)]
pub struct Nearest<'t> {
    /// Routes of other methods that match the path: "PUT is routed, POST is not".
    pub other_methods: Vec<(&'static str, RouteEntry<'t>)>,
    /// Routes of the request's method (for HEAD, also GET), best first.
    pub same_method: Vec<NearRoute<'t>>,
}

/// A route of the request's method and how close its template is to the path.
#[derive(Debug, Clone, Copy)]
pub struct NearRoute<'t> {
    /// The route.
    pub route: RouteEntry<'t>,
    /// How many leading path segments the template matches (a capture matches any segment).
    pub common_segments: usize,
}

impl RouteTable {
    /// The route at `index` (file order).
    pub fn route(&self, index: usize) -> Option<RouteEntry<'_>> {
        self.routes.get(index).map(|route| RouteEntry {
            table: self,
            route,
            index,
        })
    }

    /// Every route, in file order.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = RouteEntry<'_>> {
        self.routes.iter().enumerate().map(|(index, route)| RouteEntry {
            table: self,
            route,
            index,
        })
    }

    /// Resolves a request as [`resolve`](Self::resolve) does (it is the same code) and says what
    /// led to the decision: the matched route and where the scope came from.
    pub fn explain<'a>(&'a self, req: &RouteRequest<'a>) -> Result<Explanation<'a>, RouteError> {
        let traced = self.resolve_traced(req)?;
        Ok(Explanation {
            decision: traced.decision,
            route: traced.route.and_then(|i| self.route(i)),
            head_as_get: traced.head_as_get,
            origins: traced.origins,
        })
    }

    /// The routes nearest to `method` and the raw request target: every route of another
    /// method whose template matches the path (as the router matches it), and up to `limit`
    /// routes of the same method ranked by the number of leading segments their template shares
    /// with the path (a capture matches any segment), then by closeness of length, then table
    /// order. Routes sharing no segment are left out. A malformed target is the same
    /// [`RouteError`] as `resolve` gives.
    pub fn nearest(&self, method: &str, target: &str, limit: usize) -> Result<Nearest<'_>, RouteError> {
        let target = normalize(target)?;
        let path = target.path.as_ref();
        let own = method_index(method);
        let mut other_methods = Vec::new();
        for (m, name) in METHODS.iter().enumerate() {
            if Some(m) == own {
                continue;
            }
            let found = self.routers.get(m).and_then(|r| r.at(path).ok());
            if let Some(route) = found.and_then(|f| self.route(*f.value)) {
                other_methods.push((*name, route));
            }
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let mut same_method: Vec<(usize, usize, NearRoute<'_>)> = self
            .routes()
            .filter(|r| own.is_some() && (r.has_method(method) || (method == "HEAD" && r.has_method("GET"))))
            .filter_map(|route| {
                let template: Vec<&str> = route.template().split('/').skip(1).collect();
                let common_segments = common_segments(&template, &segments);
                let distance = template.len().abs_diff(segments.len());
                (common_segments > 0).then_some((
                    common_segments,
                    distance,
                    NearRoute {
                        route,
                        common_segments,
                    },
                ))
            })
            .collect();
        same_method.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then(a.2.route.index.cmp(&b.2.route.index))
        });
        same_method.truncate(limit);
        Ok(Nearest {
            other_methods,
            same_method: same_method.into_iter().map(|(_, _, near)| near).collect(),
        })
    }

    /// The 1-based line of `text` (the file this table was compiled from) on which each route is
    /// written, in table order; `None` where it cannot be told. A scan of the text, not of the
    /// parse: the n-th route with a given template is placed on the n-th line that writes
    /// `path: <that template>` (quoted or not, YAML or JSON), so it is exact for files that write
    /// each route's path once, as the default table does.
    pub fn source_lines(&self, text: &str) -> Vec<Option<usize>> {
        let mut lines: HashMap<&str, VecDeque<usize>> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            for template in path_values(line) {
                lines.entry(template).or_default().push_back(n + 1);
            }
        }
        self.routes
            .iter()
            .map(|r| lines.get_mut(r.template.as_str()).and_then(VecDeque::pop_front))
            .collect()
    }
}

/// How many leading segments of `path` the template segments match.
fn common_segments(template: &[&str], path: &[&str]) -> usize {
    let mut n = 0;
    for (t, p) in template.iter().zip(path) {
        if t.starts_with("{*") {
            return path.len();
        }
        let capture = t.replace("{{", "").replace("}}", "").contains('{');
        if (capture && !p.is_empty()) || t == p {
            n += 1;
        } else {
            break;
        }
    }
    n
}

/// The route templates a line writes as `path: /...` (YAML, block or flow) or `"path": "/..."`
/// (JSON), ignoring a YAML comment and scope sources (`{path: org}`, which never start with `/`).
fn path_values(line: &str) -> impl Iterator<Item = &str> {
    let code = match line.find(" #") {
        Some(i) => &line[..i],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    };
    code.match_indices("path").filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return None;
        }
        let rest = &code[at + "path".len()..];
        let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let value = match rest.strip_prefix(['"', '\'']) {
            Some(quoted) => quoted.split_once(['"', '\''])?.0,
            None => unquoted(rest),
        };
        value.starts_with('/').then_some(value)
    })
}

/// A plain (unquoted) YAML value: up to a space, `,` or `]`, less the `}` that closes a flow
/// mapping (a template's own braces are balanced).
fn unquoted(rest: &str) -> &str {
    let mut value = rest.split([',', ']', ' ', '\t']).next().unwrap_or(rest);
    while value.ends_with('}') && value.matches('}').count() > value.matches('{').count() {
        value = &value[..value.len() - 1];
    }
    value
}
