//! Criterion benchmarks of incremental compilation on the generated 100,000-assignment account
//! (`support::Shape::default()`, plus 2,000 API keys of one token each):
//! - `incremental/role_assignment`: one new role assignment bound to a user group;
//! - `incremental/group_membership`: one user joins a user group that assignments name;
//! - `incremental/token_rotation`: an API key's token rotated (old one kept for grace, new one added);
//! - `incremental/full_compile_baseline`: `compile` of the same account, in the same run.
//!
//! Each delta is asserted to take the fast path and to decide like a full compile of the new
//! document on a sample of checks. A counting global allocator (`stats_alloc`) prints the bytes
//! and allocations one change costs, beside a full compile's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use scopegate::rbac::model::{AccountSnapshot, ApiKey, ApiKeyParent, ApiToken, PrincipalType};
use scopegate::rbac::{
    AccountDelta, Catalog, Check, CompilePath, CompiledAccount, Principal, compile, compile_incremental,
    decide,
};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::{Rng, Shape, generate};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes and allocations `f` makes (reallocations count as allocations of their new size's growth).
fn allocated<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    (
        change.bytes_allocated + change.bytes_reallocated.max(0) as usize,
        change.allocations + change.reallocations,
        out,
    )
}

fn token(id: String, rotated: Option<&str>) -> ApiToken {
    ApiToken {
        identifier: format!("{id}_name"),
        secret_hash: format!("sha256:{}", "5e".repeat(32)),
        valid_from: "2026-01-01T00:00:00Z".to_owned(),
        valid_to: "2027-01-01T00:00:00Z".to_owned(),
        rotated_expire_at: rotated.map(str::to_owned),
        permissions: Vec::new(),
        id,
    }
}

/// The generated account with an API key of one token for each of the first 2,000 users.
fn account_document(catalog: &Catalog) -> AccountSnapshot {
    let mut doc = generate(&Shape::default(), catalog);
    let keys: Vec<ApiKey> = doc
        .users
        .iter()
        .take(2_000)
        .enumerate()
        .map(|(i, user)| ApiKey {
            identifier: "ci".to_owned(),
            parent: Some(ApiKeyParent {
                r#type: PrincipalType::User as i32,
                identifier: user.identifier.clone(),
                scope: None,
            }),
            tokens: vec![token(format!("tok{i}"), None)],
        })
        .collect();
    doc.api_keys = keys;
    doc
}

/// The three benched changes, each as the next document.
fn changes(doc: &AccountSnapshot) -> Vec<(&'static str, AccountSnapshot)> {
    let mut rng = Rng(7);
    let next = |doc: &AccountSnapshot| AccountSnapshot {
        version: doc.version + 1,
        ..doc.clone()
    };
    let mut assignment = next(doc);
    let bound_to_group = doc
        .role_assignments
        .iter()
        .find(|a| {
            a.principal
                .as_ref()
                .is_some_and(|p| p.r#type == PrincipalType::UserGroup as i32)
        })
        .expect("a group assignment");
    let mut copy = bound_to_group.clone();
    copy.identifier = "bench_new_assignment".to_owned();
    assignment.role_assignments.push(copy);

    let mut membership = next(doc);
    let named = doc
        .role_assignments
        .iter()
        .find_map(|a| {
            let p = a.principal.as_ref()?;
            (p.r#type == PrincipalType::UserGroup as i32).then(|| p.identifier.clone())
        })
        .expect("a named group");
    let group = membership
        .user_groups
        .iter_mut()
        .find(|g| g.identifier == named)
        .expect("the group");
    let joining = loop {
        let user = &doc.users[rng.below(doc.users.len())].identifier;
        if !group.users.contains(user) {
            break user.clone();
        }
    };
    group.users.push(joining);

    let mut rotation = next(doc);
    let key = &mut rotation.api_keys[1_000];
    key.tokens[0].rotated_expire_at = Some("2026-06-01T00:00:00Z".to_owned());
    key.tokens.push(token("tok_rotated".to_owned(), None));
    vec![
        ("role_assignment", assignment),
        ("group_membership", membership),
        ("token_rotation", rotation),
    ]
}

/// The incremental account decides like a full compile on a sample of checks.
fn cross_check(incremental: &CompiledAccount, full: &CompiledAccount, doc: &AccountSnapshot) {
    let catalog = full.catalog();
    let mut rng = Rng(11);
    for _ in 0..20_000 {
        let user = &doc.users[rng.below(doc.users.len())].identifier;
        let permission = &catalog.permissions()[rng.below(catalog.len())];
        let org = doc.organizations[rng.below(doc.organizations.len())].clone();
        let project = org
            .projects
            .get(rng.below(org.projects.len() + 1))
            .map(String::as_str);
        let decision = |account: &CompiledAccount| {
            let check = Check {
                scope: account
                    .resolve_scope(Some(&org.identifier), project)
                    .expect("scope"),
                permission: catalog.permission_id(&permission.id).expect("permission"),
                resource_type: permission.resource_type,
                resource_id: Some("pipeline_001"),
            };
            let principal = Principal {
                id: account.user(user).expect("user"),
                token_permissions: None,
            };
            decide(account, &principal, &check)
        };
        let (a, b) = (decision(incremental), decision(full));
        assert_eq!((a.allowed, a.reason.code()), (b.allowed, b.reason.code()));
    }
}

fn benches(c: &mut Criterion) {
    let catalog = Arc::new(Catalog::embedded().expect("embedded catalog"));
    let doc = account_document(&catalog);
    let compiled = compile(&doc, Arc::clone(&catalog), None).expect("compiles");
    let stats = compiled.stats();
    println!(
        "account: {} assignments, {} expanded grants, {} users, {} groups, {} tokens",
        stats.assignments, stats.expanded_grants, stats.users, stats.user_groups, stats.tokens
    );
    let (full_bytes, full_allocations, _) = allocated(|| compile(&doc, Arc::clone(&catalog), None));
    println!("full compile: {full_bytes} bytes in {full_allocations} allocations");

    let mut group = c.benchmark_group("incremental");
    for (name, next) in changes(&doc) {
        let started = Instant::now();
        let delta = AccountDelta::between(&doc, &next).expect("delta");
        let between = started.elapsed();
        let started = Instant::now();
        let replayed = delta.apply_to(&doc).expect("applies");
        let apply = started.elapsed();
        assert!(replayed == next);
        let incremental =
            compile_incremental(&compiled, &doc, &delta, Arc::clone(&catalog)).expect("compiles");
        assert_eq!(incremental.path, CompilePath::Fast, "{name}");
        let full = compile(&next, Arc::clone(&catalog), None).expect("compiles");
        cross_check(&incremental.account, &full, &next);
        let (bytes, allocations, _) =
            allocated(|| compile_incremental(&compiled, &doc, &delta, Arc::clone(&catalog)));
        println!(
            "{name}: {} change(s), {bytes} bytes in {allocations} allocations \
             (between {between:.1?}, apply_to {apply:.1?}, not benched)",
            delta.changes.len()
        );
        group.bench_function(name, |b| {
            b.iter_with_large_drop(|| {
                compile_incremental(
                    black_box(&compiled),
                    black_box(&doc),
                    black_box(&delta),
                    Arc::clone(&catalog),
                )
            })
        });
    }
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("full_compile_baseline", |b| {
        b.iter_with_large_drop(|| compile(black_box(&doc), Arc::clone(&catalog), None))
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
