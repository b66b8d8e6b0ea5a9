//! Criterion benchmarks of the RBAC engine on a large generated account (200 orgs x 10 projects,
//! 20,000 users, 2,000 groups, 100,000 role assignments; see `support::Shape`):
//! - `decide/*`: the compiled engine on allowed and denied checks;
//! - `naive/*`: the same checks through a literal scan of the raw snapshot (`support::naive`, the
//!   oracle of `tests/model_equivalence`);
//! - `compile/100k_assignments`: validating and indexing the snapshot.
//!
//! Engine and naive model are asserted to agree (outside the timed loops) on the benched checks and
//! on a sample of random ones. The compiled account's size and resident-memory cost are printed once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use scopegate::rbac::compiled::{AccountStats, Grant};
use scopegate::rbac::model::{AccountSnapshot, PrincipalType, Scope};
use scopegate::rbac::{Catalog, Check, CompiledAccount, Decision, Principal, Reason, compile, decide};

use support::naive::{NaivePrincipal, naive_decide};
use support::{Rng, Shape, generate, pipeline_name};

/// One benched check: a user asking for a permission on a resource at a scope.
#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    user: String,
    scope: Scope,
    permission: &'static str,
    resource_id: Option<String>,
}

/// A case resolved to the engine's interned IDs.
struct Resolved<'a> {
    principal: Principal<'a>,
    check: Check<'a>,
}

fn resolve<'a>(account: &CompiledAccount, case: &'a Case) -> Resolved<'a> {
    let catalog = account.catalog();
    let permission = catalog.permission_id(case.permission).expect("permission");
    let resource_type = catalog.permission(permission).expect("permission").resource_type;
    let non_empty = |s: &'a str| (!s.is_empty()).then_some(s);
    let scope = account
        .resolve_scope(non_empty(&case.scope.org), non_empty(&case.scope.project))
        .expect("scope");
    Resolved {
        principal: Principal {
            id: account.user(&case.user).expect("user"),
            token_permissions: None,
        },
        check: Check {
            scope,
            permission,
            resource_type,
            resource_id: case.resource_id.as_deref(),
        },
    }
}

fn engine(account: &CompiledAccount, case: &Case) -> Decision {
    let resolved = resolve(account, case);
    decide(account, &resolved.principal, &resolved.check)
}

/// A case in the naive model's terms.
struct NaiveCase<'a> {
    principal: NaivePrincipal,
    org: Option<&'a str>,
    project: Option<&'a str>,
    permission: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
}

impl<'a> NaiveCase<'a> {
    fn new(catalog: &'a Catalog, case: &'a Case) -> Self {
        let permission = catalog.permission_id(case.permission).expect("permission");
        let resource_type = catalog.permission(permission).expect("permission").resource_type;
        let non_empty = |s: &'a str| (!s.is_empty()).then_some(s);
        Self {
            principal: NaivePrincipal::User(case.user.clone()),
            org: non_empty(&case.scope.org),
            project: non_empty(&case.scope.project),
            permission: case.permission,
            resource_type: catalog.resource_type_name(resource_type),
            resource_id: case.resource_id.as_deref(),
        }
    }

    /// The naive model's answer: a scan of `snapshot`.
    fn decide(&self, snapshot: &AccountSnapshot, catalog: &Catalog) -> bool {
        naive_decide(
            snapshot,
            catalog,
            &self.principal,
            None,
            self.org,
            self.project,
            self.permission,
            self.resource_type,
            self.resource_id,
        )
    }
}

/// The granting grant of an allow, if it came from an assignment.
fn granted(decision: Decision) -> Option<Grant> {
    match decision.reason {
        Reason::Granted { grant, .. } => Some(grant),
        _ => None,
    }
}

type Key<'s> = (&'s str, &'s str, &'s str);

/// How many enabled role assignments made at each scope bind each user (directly or through a group):
/// `(user, org, project) -> count`.
fn applicable_counts(snapshot: &AccountSnapshot) -> HashMap<Key<'_>, u32> {
    let mut members: HashMap<Key<'_>, &[String]> = HashMap::new();
    for group in &snapshot.user_groups {
        let scope = group.scope.as_ref().expect("group scope");
        members.insert((&group.identifier, &scope.org, &scope.project), &group.users);
    }
    let mut counts: HashMap<Key<'_>, u32> = HashMap::new();
    for ra in snapshot.role_assignments.iter().filter(|ra| !ra.disabled) {
        let scope = ra.scope.as_ref().expect("assignment scope");
        let principal = ra.principal.as_ref().expect("principal");
        let users: &[String] = match PrincipalType::try_from(principal.r#type) {
            Ok(PrincipalType::User) => std::slice::from_ref(&principal.identifier),
            Ok(PrincipalType::UserGroup) => {
                let home = match principal.scope_level {
                    0 => (scope.org.as_str(), scope.project.as_str()),
                    1 => ("", ""),
                    _ => (scope.org.as_str(), ""),
                };
                members[&(principal.identifier.as_str(), home.0, home.1)]
            }
            _ => &[],
        };
        for user in users {
            *counts.entry((user, &scope.org, &scope.project)).or_default() += 1;
        }
    }
    counts
}

/// Assignments that apply at a project for a user: made at the project, its org or the account.
fn applicable_at(counts: &HashMap<Key<'_>, u32>, user: &str, scope: &Scope) -> (u32, u32) {
    let get = |org: &str, project: &str| counts.get(&(user, org, project)).copied().unwrap_or(0);
    let at_project = get(&scope.org, &scope.project);
    (at_project, at_project + get(&scope.org, "") + get("", ""))
}

/// Picks the benched checks from the generated account.
fn pick_cases(
    snapshot: &AccountSnapshot,
    account: &CompiledAccount,
    counts: &HashMap<Key<'_>, u32>,
) -> Vec<Case> {
    let enabled = |user: &str| account.user(user).is_some_and(|p| !account.is_disabled(p));
    let assignment = |grant: Grant| &snapshot.role_assignments[grant.assignment as usize];
    let groups: HashMap<Key<'_>, &[String]> = snapshot
        .user_groups
        .iter()
        .map(|g| {
            let s = g.scope.as_ref().expect("scope");
            (
                (g.identifier.as_str(), s.org.as_str(), s.project.as_str()),
                g.users.as_slice(),
            )
        })
        .collect();
    let pipeline = pipeline_name(42);
    let mut cases = Vec::new();

    // Allowed through an inherited (org-level) user-group assignment: the user's project-level
    // grants are scanned first and do not grant it. Prefer the user with the most of those.
    let mut best: Option<(u32, Case)> = None;
    for ra in &snapshot.role_assignments {
        let scope = ra.scope.as_ref().expect("scope");
        let principal = ra.principal.as_ref().expect("principal");
        let eligible = !ra.disabled
            && !scope.org.is_empty()
            && scope.project.is_empty()
            && principal.r#type == PrincipalType::UserGroup as i32
            && principal.scope_level == 0
            && ra.role == "_organization_viewer"
            && ra.resource_group == "_all_resources_including_child_scopes";
        if !eligible {
            continue;
        }
        let org = snapshot
            .organizations
            .iter()
            .find(|o| o.identifier == scope.org)
            .expect("org");
        for user in groups[&(principal.identifier.as_str(), scope.org.as_str(), "")] {
            if !enabled(user) {
                continue;
            }
            for project in &org.projects {
                let case = Case {
                    name: "allowed_inherited_org_group",
                    user: user.clone(),
                    scope: Scope::new(Some(&scope.org), Some(project)),
                    permission: "core_pipeline_view",
                    resource_id: Some(pipeline.clone()),
                };
                let Some(grant) = granted(engine(account, &case)) else {
                    continue;
                };
                let by = assignment(grant).scope.as_ref().expect("scope");
                if grant.via_group == u32::MAX || !by.project.is_empty() || by.org.is_empty() {
                    continue;
                }
                let (at_project, _) = applicable_at(counts, user, &case.scope);
                if best.as_ref().is_none_or(|(score, _)| at_project > *score) {
                    best = Some((at_project, case));
                }
            }
        }
    }
    cases.push(best.expect("an inherited org-level group grant").1);

    // Allowed through a direct assignment at the project: `_pipeline_executor` on all project
    // resources. Prefer a busy user (most applicable assignments).
    let mut best: Option<(u32, Case)> = None;
    for (index, ra) in snapshot.role_assignments.iter().enumerate() {
        let scope = ra.scope.as_ref().expect("scope");
        let principal = ra.principal.as_ref().expect("principal");
        let eligible = !ra.disabled
            && !scope.project.is_empty()
            && principal.r#type == PrincipalType::User as i32
            && ra.role == "_pipeline_executor"
            && ra.resource_group == "_all_project_level_resources"
            && enabled(&principal.identifier);
        if !eligible {
            continue;
        }
        let case = Case {
            name: "allowed_direct_project",
            user: principal.identifier.clone(),
            scope: scope.clone(),
            permission: "core_pipeline_execute",
            resource_id: Some(pipeline.clone()),
        };
        if granted(engine(account, &case)).is_none_or(|g| g.assignment as usize != index) {
            continue;
        }
        let (_, total) = applicable_at(counts, &case.user, &case.scope);
        if best.as_ref().is_none_or(|(score, _)| total > *score) {
            best = Some((total, case));
        }
    }
    cases.push(best.expect("a direct project grant").1);

    // Allowed through a custom resource group's pipeline identifier list at the project.
    let mut best: Option<(u32, Case)> = None;
    for (index, ra) in snapshot.role_assignments.iter().enumerate() {
        let scope = ra.scope.as_ref().expect("scope");
        let principal = ra.principal.as_ref().expect("principal");
        let eligible = !ra.disabled
            && !scope.project.is_empty()
            && principal.r#type == PrincipalType::User as i32
            && ra.resource_group.starts_with("rg_")
            && enabled(&principal.identifier);
        if !eligible {
            continue;
        }
        let group = snapshot
            .resource_groups
            .iter()
            .find(|g| g.identifier == ra.resource_group)
            .expect("resource group");
        let ids = &group.resource_filter.as_ref().expect("filter").resources[0].identifiers;
        let case = Case {
            name: "allowed_identifier_list",
            user: principal.identifier.clone(),
            scope: scope.clone(),
            permission: "core_pipeline_execute",
            resource_id: Some(ids[ids.len() / 2].clone()),
        };
        if granted(engine(account, &case)).is_none_or(|g| g.assignment as usize != index) {
            continue;
        }
        let (_, total) = applicable_at(counts, &case.user, &case.scope);
        if best.as_ref().is_none_or(|(score, _)| total > *score) {
            best = Some((total, case));
        }
    }
    cases.push(best.expect("an identifier-list grant").1);

    // Denied for the user with the most applicable assignments at a project (all scanned).
    let mut candidates: Vec<(u32, Key<'_>)> = counts
        .keys()
        .filter(|(_, _, project)| !project.is_empty())
        .map(|&(user, org, project)| {
            let total = applicable_at(counts, user, &Scope::new(Some(org), Some(project))).1;
            (total, (user, org, project))
        })
        .collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    let denied = candidates
        .iter()
        .filter(|(_, (user, _, _))| enabled(user))
        .map(|(_, (user, org, project))| Case {
            name: "denied_many_assignments",
            user: (*user).to_owned(),
            scope: Scope::new(Some(org), Some(project)),
            permission: "core_pipeline_delete",
            resource_id: Some(pipeline.clone()),
        })
        .find(|case| engine(account, case).reason == Reason::NoMatchingGrant)
        .expect("a denied check");
    cases.push(denied);
    cases
}

/// Resident memory of this process in KiB (`VmRSS` of /proc/self/status); 0 where unavailable.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn report_stats(stats: &AccountStats, compile_time: Duration, rss_kib: u64) {
    println!(
        "compiled account: {} scopes, {} users, {} service accounts, {} user groups, {} roles, \
         {} resource-group instances, {} assignments, {} expanded grants",
        stats.scopes,
        stats.users,
        stats.service_accounts,
        stats.user_groups,
        stats.roles,
        stats.resource_groups,
        stats.assignments,
        stats.expanded_grants,
    );
    let grant_bytes = stats.expanded_grants * size_of::<Grant>();
    println!(
        "compiled account memory: resident +{:.1} MiB around compile (grants alone {:.1} MiB = {} x {} B); \
         first compile took {:.0} ms",
        rss_kib as f64 / 1024.0,
        grant_bytes as f64 / (1024.0 * 1024.0),
        stats.expanded_grants,
        size_of::<Grant>(),
        compile_time.as_secs_f64() * 1e3,
    );
}

/// Engine and naive model agree on random checks of busy users (a second opinion, outside timing).
fn cross_check(account: &CompiledAccount, snapshot: &AccountSnapshot, counts: &HashMap<Key<'_>, u32>) {
    const PERMISSIONS: [&str; 10] = [
        "core_pipeline_view",
        "core_pipeline_execute",
        "core_pipeline_edit",
        "core_pipeline_delete",
        "core_connector_access",
        "core_environment_view",
        "core_secret_access",
        "core_project_view",
        "iro_runbook_trigger",
        "iro_iroschedule_view",
    ];
    let mut keys: Vec<Key<'_>> = counts.keys().copied().collect();
    keys.sort_unstable();
    let mut rng = Rng(7);
    let (mut allowed, mut total) = (0, 0);
    for _ in 0..400 {
        let (user, org, project) = *rng.pick(&keys);
        let org = (!org.is_empty()).then_some(org);
        let project = (!project.is_empty()).then_some(project);
        let case = Case {
            name: "random",
            user: user.to_owned(),
            scope: Scope::new(org, project),
            permission: PERMISSIONS[rng.below(PERMISSIONS.len())],
            resource_id: rng.chance(0.8).then(|| pipeline_name(rng.below(200))),
        };
        let expected = engine(account, &case);
        let actual = NaiveCase::new(account.catalog(), &case).decide(snapshot, account.catalog());
        assert_eq!(
            expected.allowed, actual,
            "engine and naive model disagree on {case:?}: engine {expected:?}, naive {actual:?}"
        );
        allowed += usize::from(expected.allowed);
        total += 1;
    }
    println!("cross-check: engine and naive model agree on {total} random checks ({allowed} allowed)");
}

fn benches(c: &mut Criterion) {
    let catalog = Arc::new(Catalog::embedded().expect("embedded catalog"));
    let snapshot = generate(&Shape::default(), &catalog);

    let rss_before = resident_kib();
    let started = Instant::now();
    let account = compile(&snapshot, Arc::clone(&catalog), None).expect("generated snapshot compiles");
    let compile_time = started.elapsed();
    let rss_after = resident_kib();
    report_stats(
        &account.stats(),
        compile_time,
        rss_after.saturating_sub(rss_before),
    );

    let counts = applicable_counts(&snapshot);
    let cases = pick_cases(&snapshot, &account, &counts);
    for case in &cases {
        let decision = engine(&account, case);
        let reference = NaiveCase::new(&catalog, case).decide(&snapshot, &catalog);
        assert_eq!(
            decision.allowed, reference,
            "engine and naive model disagree on {case:?}"
        );
        assert_eq!(decision.allowed, case.name.starts_with("allowed"), "{case:?}");
        let (at_project, total) = applicable_at(&counts, &case.user, &case.scope);
        let explanation = decision.explain(&account, &resolve(&account, case).check);
        println!(
            "case {}: {} {} on {:?} in {}/{} ({} applicable assignments, {} at the project) -> {}",
            case.name,
            case.user,
            case.permission,
            case.resource_id,
            case.scope.org,
            case.scope.project,
            total,
            at_project,
            explanation,
        );
    }
    cross_check(&account, &snapshot, &counts);

    let mut group = c.benchmark_group("decide");
    for case in &cases {
        let resolved = resolve(&account, case);
        group.bench_function(case.name, |b| {
            b.iter(|| {
                decide(
                    black_box(&account),
                    black_box(&resolved.principal),
                    black_box(&resolved.check),
                )
            })
        });
    }
    group.finish();

    // A naive check takes milliseconds: flat sampling keeps 50 samples within the measurement time.
    let mut group = c.benchmark_group("naive");
    group.sampling_mode(SamplingMode::Flat);
    for case in &cases {
        let naive = NaiveCase::new(&catalog, case);
        group.bench_function(case.name, |b| {
            b.iter(|| black_box(&naive).decide(black_box(&snapshot), &catalog))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("compile");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("100k_assignments", |b| {
        b.iter_with_large_drop(|| compile(black_box(&snapshot), Arc::clone(&catalog), None))
    });
    group.finish();
}

// `criterion_group!` would generate an undocumented `pub fn` (the crate warns on missing docs),
// so the harness is spelled out: what `criterion_group!` + `criterion_main!` expand to.
fn main() {
    let mut criterion = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
