//! Incremental compile against full compile and the naive model: a random account (`generate`),
//! then a random sequence of entity changes (assignments added, toggled, repointed and deleted,
//! group memberships, users disabled, API keys issued, rotated and deleted, plus changes that must
//! fall back: custom roles, resources, new users, and invalid ones: dangling role, resource group
//! and principal references). After each step: `between` then `apply_to` gives the new document,
//! `compile_incremental` succeeds or fails exactly as `compile` does (same errors), and on success
//! both accounts and the naive model answer a grid of checks (every principal, scope and pooled
//! permission, with and without resource identifiers) alike, and hold the same tokens.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scopegate::rbac::model::{
    AccountSnapshot, ApiKey, ApiKeyParent, ApiToken, PrincipalRef, PrincipalType, RoleAssignment, User,
};
use scopegate::rbac::{
    AccountDelta, CompilePath, CompiledAccount, SnapshotError, compile, compile_incremental,
};

use super::catalog;
use super::generate::{Spec, build_snapshot, spec_strategy};
use super::naive::NaivePrincipal;
use super::query::{Query, service_account};
use super::universe::{PERMISSIONS, RESOURCE_IDS, SCOPES, USERS, non_empty};

/// One random change: what kind, and seeds picking its targets.
#[derive(Debug, Clone)]
struct Step {
    kind: u8,
    a: u16,
    b: u16,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    (0u8..14, any::<u16>(), any::<u16>()).prop_map(|(kind, a, b)| Step { kind, a, b })
}

fn pick<T>(items: &[T], seed: u16) -> Option<usize> {
    (!items.is_empty()).then(|| usize::from(seed) % items.len())
}

fn token(id: String, rotated: Option<&str>) -> ApiToken {
    ApiToken {
        identifier: format!("{id}_name"),
        secret_hash: format!("sha256:{}", "ab".repeat(32)),
        valid_from: "2026-01-01T00:00:00Z".to_owned(),
        valid_to: "2027-01-01T00:00:00Z".to_owned(),
        rotated_expire_at: rotated.map(str::to_owned),
        permissions: if id.len().is_multiple_of(2) {
            vec!["core_pipeline_view".to_owned()]
        } else {
            Vec::new()
        },
        id,
    }
}

/// The document after one change (`n` numbers new entries); the same document when the change does
/// not apply to it.
fn mutate(doc: &AccountSnapshot, step: &Step, n: usize) -> AccountSnapshot {
    let mut next = doc.clone();
    next.version = doc.version + 1;
    let assignments = &mut next.role_assignments;
    match step.kind {
        0 | 1 => {
            if let Some(i) = pick(assignments, step.a) {
                assignments[i].disabled = !assignments[i].disabled;
            }
        }
        2 => {
            if let Some(i) = pick(assignments, step.a) {
                assignments.remove(i);
            }
        }
        3 | 4 => {
            // A copy of an assignment under a new identifier, bound to a user, a group or a service
            // account borrowed from another assignment (not always valid at its scope).
            if let (Some(i), Some(j)) = (pick(assignments, step.a), pick(assignments, step.b)) {
                let mut copy = assignments[i].clone();
                copy.identifier = format!("inc_{n}");
                copy.principal = if step.b.is_multiple_of(3) {
                    Some(PrincipalRef {
                        r#type: PrincipalType::User as i32,
                        identifier: USERS[usize::from(step.b) % USERS.len()].to_owned(),
                        scope_level: 0,
                    })
                } else {
                    assignments[j].principal.clone()
                };
                assignments.push(copy);
            }
        }
        5 => {
            // Repoint an assignment's role or resource group at another assignment's.
            if let (Some(i), Some(j)) = (pick(assignments, step.a), pick(assignments, step.b)) {
                let RoleAssignment {
                    role, resource_group, ..
                } = assignments[j].clone();
                if step.a.is_multiple_of(2) {
                    assignments[i].role = role;
                } else {
                    assignments[i].resource_group = resource_group;
                }
            }
        }
        6 | 7 => {
            if let Some(g) = pick(&next.user_groups, step.a) {
                let user = USERS[usize::from(step.b) % USERS.len()].to_owned();
                let members = &mut next.user_groups[g].users;
                match members.iter().position(|m| *m == user) {
                    Some(at) => {
                        members.remove(at);
                    }
                    None => members.push(user),
                }
            }
        }
        8 => {
            if let Some(u) = pick(&next.users, step.a) {
                next.users[u].disabled = !next.users[u].disabled;
            }
        }
        9 => {
            // Issue a key, or rotate (grace for the old token, a new one) or revoke one.
            match pick(&next.api_keys, step.a).filter(|_| !step.b.is_multiple_of(4)) {
                Some(k) if step.b % 4 == 1 => {
                    next.api_keys.remove(k);
                }
                Some(k) => {
                    let key = &mut next.api_keys[k];
                    for old in &mut key.tokens {
                        old.rotated_expire_at = Some("2026-06-01T00:00:00Z".to_owned());
                    }
                    if step.b % 4 == 2 && !key.tokens.is_empty() {
                        key.tokens.remove(0);
                    }
                    key.tokens.push(token(format!("tok{n}"), None));
                }
                None => {
                    let user = USERS[usize::from(step.b) % USERS.len()];
                    next.api_keys.push(ApiKey {
                        identifier: format!("key{n}"),
                        parent: Some(ApiKeyParent {
                            r#type: PrincipalType::User as i32,
                            identifier: user.to_owned(),
                            scope: None,
                        }),
                        tokens: vec![token(format!("tok{n}"), None)],
                    });
                }
            }
        }
        10 => {
            // Falls back: a custom role loses a permission, or a resource goes.
            if let Some(r) = pick(&next.roles, step.a).filter(|_| step.b.is_multiple_of(2)) {
                next.roles[r].permissions.pop();
            } else if let Some(r) = pick(&next.resources, step.a) {
                next.resources.remove(r);
            }
        }
        11 => {
            // Invalid: a dangling role or resource group, or a user group that goes while named.
            if let Some(i) = pick(assignments, step.a) {
                match step.b % 3 {
                    0 => assignments[i].role = "no_such_role".to_owned(),
                    1 => assignments[i].resource_group = "no_such_group".to_owned(),
                    _ => {
                        if let Some(g) = pick(&next.user_groups, step.b) {
                            next.user_groups.remove(g);
                        }
                    }
                }
            }
        }
        12 => {
            // A group no assignment names may go (fast); a named one makes the document invalid.
            if let Some(g) = pick(&next.user_groups, step.a) {
                next.user_groups.remove(g);
            }
        }
        _ => {
            // Falls back: a new user (principal slots shift), sometimes a member of a group.
            next.users.push(User {
                identifier: format!("new{n}"),
                email: String::new(),
                disabled: false,
            });
        }
    }
    next
}

fn errors_of(result: &Result<CompiledAccount, SnapshotError>) -> Option<String> {
    result.as_ref().err().map(ToString::to_string)
}

/// Every principal × scope × pooled permission, on the permission's own type and on the scope
/// types, with no identifier and with each pooled one.
fn grid(doc: &AccountSnapshot) -> Vec<Query> {
    let catalog = catalog();
    let mut principals: Vec<NaivePrincipal> = USERS
        .iter()
        .map(|u| NaivePrincipal::User((*u).to_owned()))
        .collect();
    principals.extend(
        doc.service_accounts
            .iter()
            .map(|sa| service_account(sa.identifier.clone(), sa.scope.as_ref())),
    );
    let mut queries = Vec::new();
    for principal in &principals {
        for (org, project) in SCOPES {
            for permission in PERMISSIONS {
                let own = catalog
                    .permission_id(permission)
                    .and_then(|id| catalog.permission(id))
                    .map(|p| catalog.resource_type_name(p.resource_type).to_owned())
                    .unwrap_or_default();
                for resource_type in [own.as_str(), "PROJECT", "ORGANIZATION"] {
                    for resource_id in std::iter::once(None).chain(RESOURCE_IDS.iter().map(Some)) {
                        queries.push(Query {
                            principal: principal.clone(),
                            token: None,
                            org: non_empty(org).map(str::to_owned),
                            project: non_empty(project).map(str::to_owned),
                            permission: permission.to_owned(),
                            resource_type: resource_type.to_owned(),
                            resource_id: resource_id.map(|id| (*id).to_owned()),
                        });
                    }
                }
            }
        }
    }
    queries
}

fn same_tokens(doc: &AccountSnapshot, a: &CompiledAccount, b: &CompiledAccount) -> Result<(), TestCaseError> {
    for key in &doc.api_keys {
        for t in &key.tokens {
            let (x, y) = (a.token(&t.id), b.token(&t.id));
            let same = match (x, y) {
                (Some(x), Some(y)) => {
                    (
                        &x.api_key,
                        &x.identifier,
                        x.principal,
                        &x.secret_hash,
                        x.valid_from,
                        x.valid_to,
                    ) == (
                        &y.api_key,
                        &y.identifier,
                        y.principal,
                        &y.secret_hash,
                        y.valid_from,
                        y.valid_to,
                    ) && x.rotated_expire_at == y.rotated_expire_at
                        && x.permissions == y.permissions
                }
                (None, None) => true,
                _ => false,
            };
            prop_assert!(same, "token `{}` differs", t.id);
        }
    }
    prop_assert_eq!(a.stats().tokens, b.stats().tokens);
    Ok(())
}

fn bump(counts: &Cell<[usize; 3]>, which: usize) {
    let mut now = counts.get();
    if let Some(count) = now.get_mut(which) {
        *count += 1;
    }
    counts.set(now);
}

fn run_case(spec: &Spec, steps: &[Step], counts: &Cell<[usize; 3]>) -> Result<(), TestCaseError> {
    let catalog = catalog();
    let mut doc = build_snapshot(spec);
    let mut compiled =
        compile(&doc, catalog.clone(), None).map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (n, step) in steps.iter().enumerate() {
        let next = mutate(&doc, step, n);
        let delta = AccountDelta::between(&doc, &next).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let replayed = delta
            .apply_to(&doc)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(
            replayed == next,
            "between then apply_to does not give the new document: {delta:#?}"
        );
        let full = compile(&next, catalog.clone(), Some(doc.version));
        let incremental = compile_incremental(&compiled, &doc, &delta, catalog.clone());
        let (full, incremental) = match (full, incremental) {
            (Ok(full), Ok(incremental)) => (full, incremental),
            (Err(full), Err(incremental)) => {
                bump(counts, 2);
                prop_assert_eq!(full.to_string(), incremental.to_string(), "{:?}", step);
                continue;
            }
            (full, incremental) => {
                return Err(TestCaseError::fail(format!(
                    "full compile {:?}, incremental {:?} after {step:?}: {delta:#?}",
                    errors_of(&full),
                    incremental.err().map(|e| e.to_string())
                )));
            }
        };
        bump(counts, usize::from(incremental.path != CompilePath::Fast));
        let account = &incremental.account;
        prop_assert_eq!(account.version(), full.version());
        let (a, b) = (account.stats(), full.stats());
        prop_assert_eq!(
            (
                a.users,
                a.service_accounts,
                a.user_groups,
                a.assignments,
                a.expanded_grants
            ),
            (
                b.users,
                b.service_accounts,
                b.user_groups,
                b.assignments,
                b.expanded_grants
            ),
            "{:?}",
            step
        );
        same_tokens(&next, account, &full)?;
        for query in grid(&next) {
            let (inc, whole) = (query.engine(account), query.engine(&full));
            let naive = query.naive(&next);
            prop_assert!(
                inc.allowed == whole.allowed
                    && inc.reason.code() == whole.reason.code()
                    && inc.allowed == naive,
                "incremental {inc:?}, full {whole:?}, naive {naive} for {query:#?} after {step:?}"
            );
        }
        doc = next;
        compiled = incremental.account;
    }
    Ok(())
}

#[test]
fn incremental_compile_agrees_with_full_compile_and_the_naive_model() {
    // 48 random change sequences per run (~20 s with the crate unoptimised, as CI builds it);
    // PROPTEST_CASES asks for more
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(48);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (spec_strategy(), prop::collection::vec(step_strategy(), 1..10));
    let counts = Cell::new([0; 3]);
    let result = runner.run(&strategy, |(spec, steps)| run_case(&spec, &steps, &counts));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let [fast, full, invalid] = counts.get();
    println!("{fast} steps took the fast path, {full} fell back, {invalid} were refused by both");
    assert!(
        fast >= 2 * cases as usize && full > 0 && invalid > 0,
        "fast {fast}, fallback {full}, invalid {invalid}"
    );
}
