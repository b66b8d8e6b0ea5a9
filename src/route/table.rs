//! The compiled route table and request resolution: one radix-tree router per method, matched
//! against the normalised path, then the route's permission, resource and scope.

use std::borrow::Cow;

use super::extract::Inputs;
use super::normalize::{Query, normalize};
use super::spec::{Source, Unmatched};
use super::{RouteDecision, RouteError, RouteRequest, Scope, ScopeOrigins};

/// The methods a route may name, in router order. HEAD falls back to GET routes.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const GET: usize = 0;
const HEAD: usize = 1;

/// The router index of an HTTP method, matched case-sensitively (`get` is not `GET`).
pub(crate) fn method_index(method: &str) -> Option<usize> {
    METHODS.iter().position(|m| *m == method)
}

/// What a matched route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No credential (`public: true`).
    Public,
    /// Any valid principal (`authenticated: true`).
    Authenticated,
    /// This permission.
    Permission(String),
}

/// The resource type of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceType {
    /// The permission's own type, from the catalog.
    Catalog,
    /// A type named in the route.
    Named(String),
    /// The scope itself (`type: SCOPE`).
    Scope,
}

/// The resource identifier of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceId {
    /// None (create and list endpoints).
    None,
    /// A fixed identifier.
    Literal(String),
    /// The value of this path capture (named without `{}` and `*`).
    Capture(String),
}

/// Scope sources of a route that has its own `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteScope {
    pub account: Option<Vec<Source>>,
    pub org: Vec<Source>,
    pub project: Vec<Source>,
}

/// One compiled route.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    /// The router indexes (into [`METHODS`]) the route was inserted under, in file order.
    pub methods: Vec<usize>,
    pub template: String,
    pub action: Action,
    pub resource_type: ResourceType,
    pub resource_id: ResourceId,
    pub scope: Option<RouteScope>,
}

/// A validated, compiled route table: build it once with
/// [`RouteTable::compile`](RouteTable::compile), then [`RouteTable::resolve`] every request
/// while borrowing it.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub(crate) routers: [matchit::Router<usize>; 7],
    pub(crate) routes: Vec<CompiledRoute>,
    pub(crate) account: Vec<Source>,
    pub(crate) org: Vec<Source>,
    pub(crate) project: Vec<Source>,
    pub(crate) unmatched: Unmatched,
}

impl RouteTable {
    /// The number of routes (as written: a route with several methods counts once).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// What a request matching no route gets.
    pub fn unmatched(&self) -> Unmatched {
        self.unmatched
    }

    /// Maps a request to what it requires.
    ///
    /// The target is normalised (see [`normalize`](super::normalize::normalize)); a malformed one
    /// is an error (400). The method is matched case-sensitively, as HTTP defines it: `get`
    /// matches no route and gets the unmatched policy. HEAD falls back to the GET routes.
    ///
    /// When `req.permission_override` is set (Envoy's `context_extensions.permission`), the
    /// answer is always [`RouteDecision::Permission`] with that permission: a matched route
    /// supplies its scope sources and resource, an unmatched request the default scope sources
    /// and no resource.
    pub fn resolve<'a>(&'a self, req: &RouteRequest<'a>) -> Result<RouteDecision<'a>, RouteError> {
        self.resolve_traced(req).map(|r| r.decision)
    }

    /// [`resolve`](Self::resolve), with what led to the decision: the matched route's index and
    /// where each level of the scope came from ([`explain`](Self::explain) is its public face).
    pub(crate) fn resolve_traced<'a>(&'a self, req: &RouteRequest<'a>) -> Result<Resolution<'a>, RouteError> {
        let target = normalize(req.path)?;
        match target.path {
            Cow::Borrowed(path) => self.resolve_in(req, path, target.query, &Cow::Borrowed),
            Cow::Owned(path) => {
                self.resolve_in(req, &path, target.query, &|s: &str| Cow::Owned(s.to_owned()))
            }
        }
    }

    /// [`resolve`](Self::resolve) with a permission override given apart from the request.
    pub fn resolve_with_permission<'a>(
        &'a self,
        req: &RouteRequest<'a>,
        permission_override: Option<&'a str>,
    ) -> Result<RouteDecision<'a>, RouteError> {
        let req = RouteRequest {
            permission_override: permission_override.or(req.permission_override),
            ..*req
        };
        self.resolve(&req)
    }

    fn resolve_in<'a, 'p, L>(
        &'a self,
        req: &RouteRequest<'a>,
        path: &'p str,
        query: Query<'a>,
        lift: &L,
    ) -> Result<Resolution<'a>, RouteError>
    where
        L: Fn(&'p str) -> Cow<'a, str>,
    {
        let mut head_as_get = false;
        let matched = method_index(req.method).and_then(|m| {
            let found = self.routers[m].at(path).ok();
            match found {
                None if m == HEAD => {
                    head_as_get = true;
                    self.routers[GET].at(path).ok()
                }
                found => found,
            }
        });
        let Some((index, route, params)) =
            matched.and_then(|m| Some((*m.value, self.routes.get(*m.value)?, m.params)))
        else {
            return self.unmatched_decision(req, query, lift);
        };
        let done = |decision, origins| Resolution {
            decision,
            route: Some(index),
            head_as_get,
            origins,
        };
        let template = route.template.as_str();
        if req.permission_override.is_none() && route.action == Action::Public {
            return Ok(done(
                RouteDecision::Public { route: template },
                ScopeOrigins::default(),
            ));
        }
        let inputs = Inputs {
            req,
            query,
            params: Some(&params),
            lift,
        };
        let (mut scope, origins) = match &route.scope {
            Some(s) => {
                let account = s.account.as_deref().unwrap_or(&self.account);
                inputs.scope(account, &s.org, &s.project)?
            }
            None => inputs.scope(&self.account, &self.org, &self.project)?,
        };
        let permission = match (req.permission_override, &route.action) {
            (Some(p), _) => p,
            (None, Action::Permission(p)) => p.as_str(),
            (None, _) => {
                let decision = RouteDecision::Authenticated {
                    route: template,
                    scope,
                };
                return Ok(done(decision, origins));
            }
        };
        let (resource_type, resource_id) = match &route.resource_type {
            ResourceType::Scope => scope_resource(&mut scope),
            ResourceType::Named(t) => (Some(t.as_str()), None),
            ResourceType::Catalog => (None, None),
        };
        let resource_id = match &route.resource_id {
            ResourceId::None => resource_id,
            ResourceId::Literal(l) => Some(Cow::Borrowed(l.as_str())),
            ResourceId::Capture(name) => inputs.capture(name)?,
        };
        let decision = RouteDecision::Permission {
            route: Some(template),
            permission,
            resource_type,
            resource_id,
            scope,
        };
        Ok(done(decision, origins))
    }

    fn unmatched_decision<'a, 'p, L>(
        &'a self,
        req: &RouteRequest<'a>,
        query: Query<'a>,
        lift: &L,
    ) -> Result<Resolution<'a>, RouteError>
    where
        L: Fn(&'p str) -> Cow<'a, str>,
    {
        let inputs = Inputs {
            req,
            query,
            params: None,
            lift,
        };
        let (scope, origins) = inputs.scope(&self.account, &self.org, &self.project)?;
        let decision = match req.permission_override {
            Some(permission) => RouteDecision::Permission {
                route: None,
                permission,
                resource_type: None,
                resource_id: None,
                scope,
            },
            None => RouteDecision::Unmatched {
                allow_authenticated: self.unmatched == Unmatched::AllowAuthenticated,
                scope,
            },
        };
        Ok(Resolution {
            decision,
            route: None,
            head_as_get: false,
            origins,
        })
    }
}

/// A decision and what led to it.
pub(crate) struct Resolution<'a> {
    pub decision: RouteDecision<'a>,
    /// The matched route's index in the table.
    pub route: Option<usize>,
    /// A HEAD request matched through the GET routes.
    pub head_as_get: bool,
    /// Where each level of the scope came from (before a `SCOPE` resource took its deepest level).
    pub origins: ScopeOrigins<'a>,
}

/// The scope itself as the resource: the deepest level becomes the resource, checked in its
/// parent (an account is checked in itself).
fn scope_resource<'a>(scope: &mut Scope<'a>) -> (Option<&'a str>, Option<Cow<'a, str>>) {
    if let Some(project) = scope.project.take() {
        (Some("PROJECT"), Some(project))
    } else if let Some(org) = scope.org.take() {
        (Some("ORGANIZATION"), Some(org))
    } else {
        (Some("ACCOUNT"), scope.account.clone())
    }
}
