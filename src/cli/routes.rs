//! `scopegate routes`: the route table as an operator sees it. `explain` says how one request is
//! routed (and, when no route matches, which routes are nearest), `coverage` measures an endpoint
//! list against the table, `list` prints the table. Each reads the table `serve` would use: the
//! embedded default, or `--routes FILE`. Exit 0 matched / done, 1 no route matched, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::cli::InputError;
use crate::rbac::Catalog;
use crate::route::{Action, Format, ResourceId, ResourceType, RouteEntry, RouteTable, Source};

/// One line into the output buffer (a `String`: output is written once, at the end, by [`emit`]).
macro_rules! say {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

#[path = "routes_coverage.rs"]
mod coverage;
#[path = "routes_explain.rs"]
mod explain;

/// `routes` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// How one request is routed: the route, its permission, resource and scope, and where each
    /// came from; the nearest routes when none matches (exit 1).
    #[command(after_help = "Examples:\n  \
        scopegate routes explain POST /v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute \\\n    \
        --header harness-account:acme\n  \
        scopegate routes explain GET 'https://app.harness.io/ng/api/projects/payments?accountIdentifier=acme&orgIdentifier=eng'")]
    Explain(explain::ExplainArgs),
    /// How much of an endpoint list (method, path, operation, tag; tab-separated) the table routes.
    #[command(after_help = "Example:\n  scopegate routes coverage data/harness-api/endpoints.tsv --unrouted")]
    Coverage(coverage::CoverageArgs),
    /// The table, one route per line: methods, path, requirement, resource, scope sources.
    #[command(after_help = "Example:\n  scopegate routes list | grep core_pipeline_execute")]
    List(ListArgs),
}

/// The route table to read (and the catalog its permissions are checked against).
#[derive(Debug, Args)]
pub struct TableArgs {
    /// A route table (YAML, or JSON by extension) instead of the embedded default
    /// (`deploy/routes/harness-ng.yaml`), as `serve --routes` takes it.
    #[arg(long, value_name = "FILE")]
    pub routes: Option<PathBuf>,
    /// A permission catalog replacing the embedded one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// Arguments of `routes list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The table to list.
    #[command(flatten)]
    pub table: TableArgs,
    /// One JSON document instead of tab-separated lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `routes` subcommand.
pub fn run(command: &RoutesCommand) -> Result<ExitCode, InputError> {
    match command {
        RoutesCommand::Explain(args) => explain::run(args),
        RoutesCommand::Coverage(args) => coverage::run(args),
        RoutesCommand::List(args) => list(args),
    }
}

/// A compiled table with what is needed to show it: the catalog, its file name and each route's line.
pub(crate) struct LoadedTable {
    pub table: RouteTable,
    pub catalog: Arc<Catalog>,
    /// The file as the operator knows it.
    pub file: String,
    lines: Vec<Option<usize>>,
}

impl LoadedTable {
    /// Loads `--routes` (or the embedded default) against `--catalog` (or the embedded one).
    pub fn load(args: &TableArgs) -> Result<Self, InputError> {
        let catalog = crate::cli::load_catalog(args.catalog.as_deref())?;
        let known = |id: &str| catalog.permission_id(id).is_some();
        let (file, text, format) = match &args.routes {
            None => (
                "deploy/routes/harness-ng.yaml (embedded)".to_owned(),
                crate::route::DEFAULT_ROUTES_YAML.to_owned(),
                Format::Yaml,
            ),
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| InputError(format!("cannot read route table {file}: {e}")))?;
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                (file, text, Format::from_file_name(name))
            }
        };
        let table = RouteTable::parse(&text, format, &known).map_err(|errors| {
            let all = errors.errors();
            let first = all.first().map(ToString::to_string).unwrap_or_default();
            let more = match all.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more: `scopegate validate` lists them)", n - 1),
            };
            InputError(format!("route table {file}: {first}{more}"))
        })?;
        let lines = table.source_lines(&text);
        Ok(Self {
            table,
            catalog,
            file,
            lines,
        })
    }

    /// The route's line in its file, when it could be told.
    pub fn line(&self, route: &RouteEntry<'_>) -> Option<usize> {
        self.lines.get(route.index()).copied().flatten()
    }

    /// Where a route is written: `FILE:LINE`, else `FILE, route N` (1-based).
    pub fn location(&self, route: &RouteEntry<'_>) -> String {
        let file = self.file.strip_suffix(" (embedded)").unwrap_or(&self.file);
        match self.line(route) {
            Some(line) => format!("{file}:{line}"),
            None => format!("{file}, route {}", route.index() + 1),
        }
    }

    /// The resource type a permission route checks: the route's, or the permission's in the catalog.
    pub fn resource_type_name(&self, route: &RouteEntry<'_>) -> Option<String> {
        match route.resource_type() {
            ResourceType::Named(t) => Some(t.clone()),
            ResourceType::Scope => Some("SCOPE".to_owned()),
            ResourceType::Catalog => {
                let id = self.catalog.permission_id(route.permission()?)?;
                let permission = self.catalog.permission(id)?;
                Some(
                    self.catalog
                        .resource_type_name(permission.resource_type)
                        .to_owned(),
                )
            }
        }
    }
}

/// Writes the output to stdout. A reader that went away (`routes list | head`) is not an error.
pub(crate) fn emit(out: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// `METHOD|METHOD`.
pub(crate) fn methods(route: &RouteEntry<'_>) -> String {
    route.methods().collect::<Vec<_>>().join("|")
}

/// What a route requires, in one word or a permission id.
pub(crate) fn requirement(route: &RouteEntry<'_>) -> String {
    match route.action() {
        Action::Public => "public".to_owned(),
        Action::Authenticated => "authenticated".to_owned(),
        Action::Permission(p) => p.clone(),
    }
}

/// A source as `path:org`, `query:orgIdentifier`, `header:harness-account` or `credential`.
pub(crate) fn source_short(source: &Source) -> String {
    match source {
        Source::Path(n) => format!("path:{n}"),
        Source::Query(n) => format!("query:{n}"),
        Source::Header(n) => format!("header:{n}"),
        Source::Credential => "credential".to_owned(),
    }
}

fn sources_short(sources: &[Source]) -> String {
    sources.iter().map(source_short).collect::<Vec<_>>().join(",")
}

/// `TYPE/{capture}`, `TYPE/literal`, `TYPE` or `-` (no permission).
fn resource_short(loaded: &LoadedTable, route: &RouteEntry<'_>) -> String {
    let Some(kind) = loaded.resource_type_name(route) else {
        return "-".to_owned();
    };
    match route.resource_id() {
        ResourceId::None => kind,
        ResourceId::Literal(l) => format!("{kind}/{l}"),
        ResourceId::Capture(c) => format!("{kind}/{{{c}}}"),
    }
}

/// `account=... org=... project=...`, a level with no source left out.
fn scope_short(route: &RouteEntry<'_>) -> String {
    let levels = [
        ("account", route.account_sources()),
        ("org", route.org_sources()),
        ("project", route.project_sources()),
    ];
    levels
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(level, s)| format!("{level}={}", sources_short(s)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn list(args: &ListArgs) -> Result<ExitCode, InputError> {
    let loaded = LoadedTable::load(&args.table)?;
    let mut out = String::new();
    let out = &mut out;
    if args.json {
        let routes: Vec<serde_json::Value> = loaded
            .table
            .routes()
            .map(|route| {
                let list = |s: &[Source]| s.iter().map(source_short).collect::<Vec<_>>();
                serde_json::json!({
                    "index": route.index(),
                    "line": loaded.line(&route),
                    "methods": route.methods().collect::<Vec<_>>(),
                    "path": route.template(),
                    "requires": requirement(&route),
                    "resource": resource_short(&loaded, &route),
                    "scope": {
                        "account": list(route.account_sources()),
                        "org": list(route.org_sources()),
                        "project": list(route.project_sources()),
                    },
                })
            })
            .collect();
        let doc = serde_json::json!({"file": loaded.file, "routes": routes});
        say!(out, "{doc}");
        emit(out);
        return Ok(ExitCode::SUCCESS);
    }
    for route in loaded.table.routes() {
        say!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            methods(&route),
            route.template(),
            requirement(&route),
            resource_short(&loaded, &route),
            scope_short(&route)
        );
    }
    emit(out);
    Ok(ExitCode::SUCCESS)
}
