//! The default route table against the real Harness API (data/harness-api/endpoints.tsv, from
//! Harness's generated client): every endpoint is routed or excluded, an excluded endpoint is not
//! routed to a permission, and at least the pinned share of the API is routed.

use std::collections::{BTreeMap, HashMap};

use scopegate::route::coverage::{EndpointRouting, measure, route_endpoint, sample_path};
use scopegate::route::{RouteDecision, RouteRequest, RouteTable};

/// The share of the (method, path) pairs the default table must route (permission, public or
/// authenticated). Raise it as the table grows; never lower it without saying why.
const MIN_ROUTED_PERCENT: usize = 75;

fn table() -> RouteTable {
    let catalog = scopegate::rbac::Catalog::embedded().unwrap();
    RouteTable::default_harness(&|p| catalog.permission_id(p).is_some()).unwrap()
}

fn read_tsv(name: &str) -> Vec<Vec<String>> {
    let path = format!("{}/data/harness-api/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn endpoints() -> Vec<(String, String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    read_tsv("endpoints.tsv")
        .into_iter()
        .filter(|r| seen.insert((r[0].clone(), r[1].clone())))
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
        .collect()
}

#[test]
fn every_harness_endpoint_is_routed_or_excluded() {
    let t = table();
    let excluded: HashMap<(String, String), String> = read_tsv("excluded.tsv")
        .into_iter()
        .map(|r| ((r[0].clone(), r[1].clone()), r[2].clone()))
        .collect();
    let eps = endpoints();
    assert_eq!(eps.len(), 2093);
    let mut problems = Vec::new();
    for (m, p, _) in &eps {
        let routing = route_endpoint(&t, m, p);
        match (excluded.get(&(m.clone(), p.clone())), routing) {
            (None, EndpointRouting::Unrouted) => {
                problems.push(format!("{m} {p}: neither routed nor excluded"))
            }
            (Some(r), EndpointRouting::Permission) => {
                problems.push(format!("{m} {p}: excluded ({r}) but routed to a permission"))
            }
            (Some(r), EndpointRouting::Public) if !r.starts_with("routed public") => {
                problems.push(format!("{m} {p}: excluded ({r}) but routed public"))
            }
            (Some(r), EndpointRouting::Authenticated) if !r.starts_with("routed authenticated") => {
                problems.push(format!("{m} {p}: excluded ({r}) but routed authenticated"))
            }
            (Some(r), EndpointRouting::Unrouted) if r.starts_with("routed") => {
                problems.push(format!("{m} {p}: says `{r}` but is not routed"))
            }
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let cov = measure(&t, eps.iter().map(|(m, p, _)| (m.as_str(), p.as_str())));
    let routed = cov.total() - cov.unrouted.len();
    assert!(
        routed * 100 >= MIN_ROUTED_PERCENT * cov.total(),
        "routed {routed} of {}",
        cov.total()
    );
}

#[test]
fn coverage_per_module_is_printed() {
    // Not an assertion: `cargo test ... -- --nocapture coverage_per_module` prints the table.
    let t = table();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (m, p, tag) in endpoints() {
        let e = per.entry(tag).or_default();
        e.1 += 1;
        if route_endpoint(&t, &m, &p) != EndpointRouting::Unrouted {
            e.0 += 1;
        }
    }
    for (tag, (r, n)) in per {
        println!("{tag}\t{r}\t{n}");
    }
}

/// (permission or `public` / `authenticated`) of an endpoint.
fn decision(t: &RouteTable, method: &str, template: &str) -> String {
    let path = sample_path(template);
    match t.resolve(&RouteRequest::new(method, &path)) {
        Ok(RouteDecision::Permission { permission, .. }) => permission.to_owned(),
        Ok(RouteDecision::Public { .. }) => "public".into(),
        Ok(RouteDecision::Authenticated { .. }) => "authenticated".into(),
        Ok(RouteDecision::Unmatched { .. }) => "unrouted".into(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn generated_pins_hold() {
    // data/harness-api/generated-pins.tsv: what scripts/harness_routes.py decided for every
    // endpoint it generated; catches a regression of the compiler or a hand edit of the section.
    let t = table();
    let mut wrong = Vec::new();
    for r in read_tsv("generated-pins.tsv") {
        let (m, p, want) = (&r[0], &r[1], &r[2]);
        if want == "hand-written" || want == "duplicate" {
            continue;
        }
        let got = decision(&t, m, p);
        if &got != want {
            wrong.push(format!("{m} {p}: want {want}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn hand_checked_pins_hold() {
    // data/harness-api/hand-pins.tsv: (method, path, permission, resource id, org, project) written
    // by hand from Harness's permission model and the table's convention, not from the table.
    let t = table();
    let known: std::collections::HashSet<(String, String)> =
        endpoints().into_iter().map(|(m, p, _)| (m, p)).collect();
    let opt = |s: &str| (s != "-").then(|| s.to_owned());
    let mut wrong = Vec::new();
    let pins = read_tsv("hand-pins.tsv");
    assert!(pins.len() >= 50, "{} hand pins", pins.len());
    for r in pins {
        let (m, p) = (&r[0], &r[1]);
        if !known.contains(&(m.clone(), p.clone())) {
            wrong.push(format!("{m} {p}: not a Harness endpoint (fix the pin)"));
            continue;
        }
        let want = (r[2].clone(), opt(&r[3]), opt(&r[4]), opt(&r[5]));
        let path = sample_path(p);
        match t.resolve(&RouteRequest::new(m, &path)) {
            Ok(RouteDecision::Permission {
                permission,
                resource_id,
                scope,
                ..
            }) => {
                let got = (
                    permission.to_owned(),
                    resource_id.map(|c| c.into_owned()),
                    scope.org.map(|c| c.into_owned()),
                    scope.project.map(|c| c.into_owned()),
                );
                if got != want {
                    wrong.push(format!("{m} {p}: want {want:?}, got {got:?}"));
                }
            }
            other => wrong.push(format!("{m} {p}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

/// A template with every segment that holds a capture written `{}`.
fn segment_shape(template: &str) -> String {
    template
        .trim_end_matches('/')
        .split('/')
        .map(|s| if s.contains('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_routed_endpoint_matches_its_own_route() {
    // Overlaps (a static segment beside a capture, `/x/{id}` beside `/x/list`) are resolved by the
    // router's precedence; this proves that for every Harness endpoint the route chosen is the one
    // written for that endpoint's shape, not a sibling that happens to match too.
    let t = table();
    let mut wrong = Vec::new();
    for (m, p, _) in endpoints() {
        let path = sample_path(&p);
        let route = match t.resolve(&RouteRequest::new(&m, &path)) {
            Ok(RouteDecision::Permission { route: Some(r), .. })
            | Ok(RouteDecision::Public { route: r })
            | Ok(RouteDecision::Authenticated { route: r, .. }) => r,
            _ => continue,
        };
        if segment_shape(route) != segment_shape(&p) {
            wrong.push(format!("{m} {p}: matched {route}"));
        }
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}
