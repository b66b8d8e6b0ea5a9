//! `scopegate routes explain METHOD URL`: resolves one request with the server's own routing code
//! (`RouteTable::explain`) and prints the route, where it is written, what it requires, the
//! resource and the scope with the source of each level, and why. When no route matches: the
//! routes of other methods on the same path and the nearest routes of the same method; exit 1.

use std::process::ExitCode;

use clap::Args;

use super::{LoadedTable, TableArgs, methods, requirement};
use crate::cli::InputError;
use crate::route::{
    Explanation, METHODS, Nearest, ResourceId, ResourceType, RouteDecision, RouteEntry, RouteRequest, Scope,
    ScopeOrigins, Source, Unmatched,
};

/// How many nearest routes of the same method are shown.
const NEAREST: usize = 5;

/// Arguments of `routes explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The HTTP method, upper case as HTTP spells it (matching is case-sensitive).
    pub method: String,
    /// The request target (`/v1/...?query`), or a whole `http(s)://host/...` URL.
    pub url: String,
    /// A request header `NAME:VALUE` (repeatable; a repeated name is comma-joined, as Envoy does).
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// The account of the credential the request would carry (the `credential` account source).
    #[arg(long, value_name = "ACCOUNT")]
    pub credential_account: Option<String>,
    /// The route table and catalog.
    #[command(flatten)]
    pub table: TableArgs,
}

/// Explains the request; exit 0 when a route matches, 1 when none does.
pub fn run(args: &ExplainArgs) -> Result<ExitCode, InputError> {
    if !METHODS.contains(&args.method.as_str()) {
        return Err(InputError(format!(
            "unknown method `{}` (expected one of {}, in upper case)",
            args.method,
            METHODS.join(", ")
        )));
    }
    let target = request_target(&args.url)?;
    let headers = parse_headers(&args.headers)?;
    let loaded = LoadedTable::load(&args.table)?;
    let lookup = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let req = RouteRequest {
        headers: &lookup,
        credential_account: args.credential_account.as_deref(),
        ..RouteRequest::new(&args.method, target)
    };
    let malformed = |e: crate::route::RouteError| {
        InputError(format!(
            "the request is malformed: {e} (scopegate answers 400 INVALID_REQUEST, `{}`)",
            e.code()
        ))
    };
    let explanation = loaded.table.explain(&req).map_err(malformed)?;
    let mut out = String::new();
    let out = &mut out;
    say!(out, "{} {target}", args.method);
    match explanation.route {
        Some(route) => {
            print_matched(out, &loaded, &args.method, &explanation, &route);
            super::emit(out);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let nearest = loaded
                .table
                .nearest(&args.method, target, NEAREST)
                .map_err(malformed)?;
            print_unmatched(out, &loaded, (&args.method, target), &explanation, &nearest);
            super::emit(out);
            Ok(ExitCode::from(1))
        }
    }
}

/// The origin-form target of a path or an `http(s)://` URL.
fn request_target(url: &str) -> Result<&str, InputError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let target = match rest {
        Some(rest) => match rest.find(['/', '?', '#']) {
            Some(i) if rest[i..].starts_with('/') => &rest[i..],
            Some(_) | None => "/",
        },
        None => url,
    };
    if target.starts_with('/') {
        Ok(target)
    } else {
        Err(InputError(format!(
            "URL `{url}` is neither a request path (`/v1/...`) nor an http(s) URL"
        )))
    }
}

/// `NAME:VALUE` pairs, names lower-cased, repeated names comma-joined.
fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, InputError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for header in raw {
        let Some((name, value)) = header.split_once(':') else {
            return Err(InputError(format!("header `{header}` is not `NAME:VALUE`")));
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(InputError(format!("header `{header}` has no valid name")));
        }
        let value = value.trim();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            None => out.push((name, value.to_owned())),
        }
    }
    Ok(out)
}

fn print_matched(
    out: &mut String,
    loaded: &LoadedTable,
    method: &str,
    e: &Explanation<'_>,
    route: &RouteEntry<'_>,
) {
    say!(out, "route:      {} {}", methods(route), route.template());
    say!(
        out,
        "defined:    {} (route {} of {})",
        loaded.location(route),
        route.index() + 1,
        loaded.table.len()
    );
    let (via_get, method) = if e.head_as_get {
        ("no HEAD route matches, so HEAD uses the GET routes: ", "GET")
    } else {
        ("", method)
    };
    let matched =
        format!("{via_get}{method} matches this route's template (static segments win over captures)");
    match &e.decision {
        RouteDecision::Public { .. } => {
            say!(out, "requires:   nothing (`public: true`)");
            say!(out, "why:        {matched}; no credential is checked");
        }
        RouteDecision::Authenticated { scope, .. } => {
            say!(
                out,
                "requires:   any valid principal of the account (`authenticated: true`)"
            );
            print_scope(out, route, scope, &e.origins);
            say!(
                out,
                "why:        {matched}; any valid credential of the account is allowed"
            );
        }
        RouteDecision::Permission {
            permission,
            resource_type,
            resource_id,
            scope,
            ..
        } => {
            say!(out, "requires:   permission {permission}");
            let kind = resource_type
                .map(str::to_owned)
                .or_else(|| loaded.resource_type_name(route))
                .unwrap_or_else(|| "-".to_owned());
            let id = resource_id.as_deref().unwrap_or("-");
            say!(out, "resource:   {kind} {id} ({})", resource_origin(route));
            print_scope(out, route, scope, &e.origins);
            say!(
                out,
                "why:        {matched}; the request is allowed when the principal holds {permission} on \
                 {kind}/{id} in {}",
                scope_path(scope)
            );
        }
        RouteDecision::Unmatched { .. } => {}
    }
}

fn print_unmatched(
    out: &mut String,
    loaded: &LoadedTable,
    (method, target): (&str, &str),
    e: &Explanation<'_>,
    nearest: &Nearest<'_>,
) {
    say!(out, "route:      none: no {method} route matches this path");
    match loaded.table.unmatched() {
        Unmatched::Deny => say!(
            out,
            "result:     denied, 403 NO_ROUTE (the table's `unmatched: deny`)"
        ),
        Unmatched::AllowAuthenticated => say!(
            out,
            "result:     any valid principal is allowed, no permission checked (`unmatched: allow_authenticated`)"
        ),
    }
    if let Some(scope) = e.decision.scope() {
        print_level(out, "account", scope.account.as_deref(), e.origins.account, None);
        print_level(out, "org", scope.org.as_deref(), e.origins.org, None);
        print_level(out, "project", scope.project.as_deref(), e.origins.project, None);
    }
    if nearest.other_methods.is_empty() {
        say!(out, "other methods: no route of any method matches this path");
    } else {
        let routed: Vec<&str> = nearest.other_methods.iter().map(|(m, _)| *m).collect();
        let verb = if routed.len() == 1 { "is" } else { "are" };
        say!(
            out,
            "other methods: {} {verb} routed, {method} is not:",
            routed.join(", ")
        );
        for (m, route) in &nearest.other_methods {
            say!(
                out,
                "  {m} {} ({}; {})",
                route.template(),
                requirement(route),
                loaded.location(route)
            );
        }
    }
    if nearest.same_method.is_empty() {
        say!(out, "nearest:    no {method} route shares a leading path segment");
    } else {
        let segments = target_segments(target);
        say!(
            out,
            "nearest {method} routes (leading path segments in common, of {segments}):"
        );
        for near in &nearest.same_method {
            let route = &near.route;
            say!(
                out,
                "  {:>2}  {} {} ({}; {})",
                near.common_segments,
                methods(route),
                route.template(),
                requirement(route),
                loaded.location(route)
            );
        }
    }
}

/// Where the resource id of a permission route comes from.
fn resource_origin(route: &RouteEntry<'_>) -> String {
    let kind = match route.resource_type() {
        ResourceType::Scope => {
            return "`type: SCOPE`: the request's deepest scope level, checked in its parent".to_owned();
        }
        ResourceType::Named(_) => "type from the route",
        ResourceType::Catalog => "type: the permission's in the catalog",
    };
    match route.resource_id() {
        ResourceId::None => format!("{kind}; no id: a create or list endpoint"),
        ResourceId::Literal(_) => format!("{kind}; id fixed by the route"),
        ResourceId::Capture(c) => format!("{kind}; id from path capture {{{c}}}"),
    }
}

fn print_scope(out: &mut String, route: &RouteEntry<'_>, scope: &Scope<'_>, origins: &ScopeOrigins<'_>) {
    let account = scope.account.as_deref();
    print_level(
        out,
        "account",
        account,
        origins.account,
        Some(route.account_sources()),
    );
    let lifted = matches!(route.resource_type(), ResourceType::Scope);
    for (level, value, origin, sources) in [
        ("org", scope.org.as_deref(), origins.org, route.org_sources()),
        (
            "project",
            scope.project.as_deref(),
            origins.project,
            route.project_sources(),
        ),
    ] {
        match origin {
            Some(src) if value.is_none() && lifted => {
                say!(
                    out,
                    "{:<11} - (the {level} is the resource, from {})",
                    format!("{level}:"),
                    source_long(src)
                )
            }
            _ => print_level(out, level, value, origin, Some(sources)),
        }
    }
}

/// One scope level: its value and source, or why it has none. `sources`: the route's sources for
/// the level (`None` for an unmatched request).
fn print_level(
    out: &mut String,
    level: &str,
    value: Option<&str>,
    origin: Option<&Source>,
    sources: Option<&[Source]>,
) {
    let label = format!("{level}:");
    match (value, origin, sources) {
        (Some(v), Some(src), _) => say!(out, "{label:<11} {v} ({})", source_long(src)),
        (Some(v), None, _) => say!(out, "{label:<11} {v}"),
        (None, _, None) if level == "account" => say!(out, "{label:<11} - (none given)"),
        (None, _, None) => say!(
            out,
            "{label:<11} - (none given; with no route, only the query can give one)"
        ),
        (None, _, Some([])) if level != "account" => {
            say!(
                out,
                "{label:<11} - (this route never checks in {})",
                article(level)
            )
        }
        (None, _, Some(sources)) => {
            let tried: Vec<String> = sources.iter().map(source_long).collect();
            let note = if sources.contains(&Source::Credential) {
                "; at request time the credential's account is used"
            } else {
                ""
            };
            say!(
                out,
                "{label:<11} - (none given; tried {}{note})",
                tried.join(", ")
            );
        }
    }
}

fn article(level: &str) -> &'static str {
    if level == "org" { "an org" } else { "a project" }
}

/// A source in words.
fn source_long(source: &Source) -> String {
    match source {
        Source::Path(n) => format!("path capture {{{n}}}"),
        Source::Query(n) => format!("query parameter {n}"),
        Source::Header(n) => format!("header {n}"),
        Source::Credential => "the credential's account".to_owned(),
    }
}

/// `acme/eng/payments`, `-` for a missing account.
fn scope_path(scope: &Scope<'_>) -> String {
    let mut out = scope.account.as_deref().unwrap_or("-").to_owned();
    for level in [&scope.org, &scope.project].into_iter().flatten() {
        out.push('/');
        out.push_str(level);
    }
    out
}

/// The number of segments of the target's path, as the router sees them (collapsed slashes).
fn target_segments(target: &str) -> usize {
    let path = target.split(['?', '#']).next().unwrap_or(target);
    path.split('/').filter(|s| !s.is_empty()).count()
}
