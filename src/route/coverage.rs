//! How much of an endpoint list a compiled route table routes: each `(method, path template)`
//! (e.g. Harness's `GET /v1/orgs/{org}`) is turned into a concrete request (every `{capture}`
//! replaced by a sample identifier) and resolved; the result says which endpoints fall to a
//! permission route, a public or authenticated route, or to no route at all.

use super::{RouteDecision, RouteRequest, RouteTable};

/// What the table does with one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointRouting {
    /// A route requiring a permission matched.
    Permission,
    /// A `public: true` route matched.
    Public,
    /// An `authenticated: true` route matched.
    Authenticated,
    /// No route matched (or the request could not be routed).
    Unrouted,
}

/// The result of [`measure`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Endpoints routed to a permission.
    pub permission: usize,
    /// Endpoints routed public.
    pub public: usize,
    /// Endpoints routed authenticated-only.
    pub authenticated: usize,
    /// Endpoints no route matches, as `(method, path template)`.
    pub unrouted: Vec<(String, String)>,
}

impl Coverage {
    /// Every endpoint measured.
    pub fn total(&self) -> usize {
        self.permission + self.public + self.authenticated + self.unrouted.len()
    }

    /// Endpoints some route matches (permission, public or authenticated).
    pub fn routed(&self) -> usize {
        self.permission + self.public + self.authenticated
    }

    /// Counts one endpoint routed as `routing`.
    pub fn add(&mut self, method: &str, template: &str, routing: EndpointRouting) {
        match routing {
            EndpointRouting::Permission => self.permission += 1,
            EndpointRouting::Public => self.public += 1,
            EndpointRouting::Authenticated => self.authenticated += 1,
            EndpointRouting::Unrouted => self.unrouted.push((method.to_owned(), template.to_owned())),
        }
    }
}

/// A concrete request path for an endpoint template: `{x}` becomes `x1`, `{a}.{b}` `x1.x2`.
pub fn sample_path(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut n = 0;
    let mut in_capture = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_capture = true;
                n += 1;
                out.push('x');
                out.push_str(&n.to_string());
            }
            '}' => in_capture = false,
            _ if in_capture => {}
            _ => out.push(c),
        }
    }
    out
}

/// How `table` routes one endpoint (`method`, path template).
pub fn route_endpoint(table: &RouteTable, method: &str, template: &str) -> EndpointRouting {
    let path = sample_path(template);
    match table.resolve(&RouteRequest::new(method, &path)) {
        Ok(RouteDecision::Permission { route: Some(_), .. }) => EndpointRouting::Permission,
        Ok(RouteDecision::Public { .. }) => EndpointRouting::Public,
        Ok(RouteDecision::Authenticated { .. }) => EndpointRouting::Authenticated,
        _ => EndpointRouting::Unrouted,
    }
}

/// Measures an endpoint list (`(method, path template)` pairs) against a compiled table.
pub fn measure<'e>(table: &RouteTable, endpoints: impl IntoIterator<Item = (&'e str, &'e str)>) -> Coverage {
    let mut cov = Coverage::default();
    for (method, template) in endpoints {
        cov.add(method, template, route_endpoint(table, method, template));
    }
    cov
}
