//! `scopegate routes coverage FILE`: measures an endpoint list (tab-separated `method`, `path`
//! template, `operation`, `tag`, as `data/harness-api/endpoints.tsv`) against the route table with
//! `route::coverage`: routed / total, a table per tag, and with `--unrouted` the endpoints no
//! route matches. A (method, path) listed twice counts once.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{LoadedTable, TableArgs};
use crate::cli::InputError;
use crate::route::METHODS;
use crate::route::coverage::{Coverage, EndpointRouting, route_endpoint};

/// Arguments of `routes coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// The endpoint list: `method<TAB>path[<TAB>operation<TAB>tag]` per line; `#` lines and a
    /// `method<TAB>path...` header are skipped.
    pub file: PathBuf,
    /// List the endpoints no route matches.
    #[arg(long)]
    pub unrouted: bool,
    /// One JSON document instead of text (it always lists the unrouted endpoints).
    #[arg(long)]
    pub json: bool,
    /// The route table and catalog.
    #[command(flatten)]
    pub table: TableArgs,
}

/// One endpoint of the list.
struct Endpoint<'a> {
    method: &'a str,
    path: &'a str,
    tag: &'a str,
}

/// Reads the list; a malformed line is bad input naming its line number.
fn parse<'t>(file: &str, text: &'t str) -> Result<(Vec<Endpoint<'t>>, usize), InputError> {
    let mut seen = HashSet::new();
    let mut endpoints = Vec::new();
    let mut repeated = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with("method\t") {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(method), Some(path)) = (fields.next(), fields.next()) else {
            return Err(InputError(format!(
                "{file}:{}: expected `method<TAB>path[<TAB>operation<TAB>tag]`",
                n + 1
            )));
        };
        if !METHODS.contains(&method) || !path.starts_with('/') {
            return Err(InputError(format!(
                "{file}:{}: `{method} {path}` is not an upper-case HTTP method and a path starting with `/`",
                n + 1
            )));
        }
        let tag = fields.nth(1).filter(|t| !t.is_empty()).unwrap_or("-");
        if seen.insert((method, path)) {
            endpoints.push(Endpoint { method, path, tag });
        } else {
            repeated += 1;
        }
    }
    Ok((endpoints, repeated))
}

fn percent(cov: &Coverage) -> f64 {
    match cov.total() {
        0 => 0.0,
        // to one decimal, rounded half up, in integers so 1586/2093 prints 75.8 everywhere
        total => ((cov.routed() * 1000 + total / 2) / total) as f64 / 10.0,
    }
}

/// Measures and prints.
pub fn run(args: &CoverageArgs) -> Result<ExitCode, InputError> {
    let file = args.file.display().to_string();
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| InputError(format!("cannot read {file}: {e}")))?;
    let (endpoints, repeated) = parse(&file, &text)?;
    let loaded = LoadedTable::load(&args.table)?;
    let mut all = Coverage::default();
    let mut per_tag: BTreeMap<&str, Coverage> = BTreeMap::new();
    let mut unrouted = Vec::new();
    for e in &endpoints {
        let routing = route_endpoint(&loaded.table, e.method, e.path);
        all.add(e.method, e.path, routing);
        per_tag.entry(e.tag).or_default().add(e.method, e.path, routing);
        if routing == EndpointRouting::Unrouted {
            unrouted.push(e);
        }
    }
    let mut out = String::new();
    let out = &mut out;
    if args.json {
        let tags: Vec<serde_json::Value> = per_tag
            .iter()
            .map(|(tag, c)| {
                serde_json::json!({"tag": tag, "routed": c.routed(), "total": c.total(),
                    "permission": c.permission, "public": c.public, "authenticated": c.authenticated})
            })
            .collect();
        let unrouted: Vec<serde_json::Value> = unrouted
            .iter()
            .map(|e| serde_json::json!({"method": e.method, "path": e.path, "tag": e.tag}))
            .collect();
        let doc = serde_json::json!({
            "file": file, "routes": loaded.file, "total": all.total(), "routed": all.routed(),
            "percent": percent(&all), "permission": all.permission, "public": all.public,
            "authenticated": all.authenticated, "repeated": repeated, "tags": tags, "unrouted": unrouted,
        });
        say!(out, "{doc}");
        super::emit(out);
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        out,
        "routed {} of {} endpoints ({:.1} %): {} to a permission, {} public, {} authenticated; {} unrouted",
        all.routed(),
        all.total(),
        percent(&all),
        all.permission,
        all.public,
        all.authenticated,
        all.unrouted.len()
    );
    say!(out, "table: {}; endpoints: {file}", loaded.file);
    if repeated > 0 {
        say!(out, "({repeated} lines repeat a method and path already counted)");
    }
    let width = per_tag.keys().map(|t| t.len()).max().unwrap_or(3).max(3);
    say!(out);
    say!(
        out,
        "{:<width$}  {:>6}  {:>6}  {:>5}",
        "tag",
        "routed",
        "total",
        "%"
    );
    for (tag, c) in &per_tag {
        say!(
            out,
            "{tag:<width$}  {:>6}  {:>6}  {:>5.1}",
            c.routed(),
            c.total(),
            percent(c)
        );
    }
    if args.unrouted {
        say!(out);
        say!(out, "unrouted:");
        for e in &unrouted {
            say!(out, "{}\t{}\t{}", e.method, e.path, e.tag);
        }
    }
    super::emit(out);
    Ok(ExitCode::SUCCESS)
}
