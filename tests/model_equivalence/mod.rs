//! Holds the compiled engine (`rbac::compile` + `rbac::decide`) against a deliberately naive model of
//! docs/model.md (`naive`, the one oracle, shared with the benches): random valid snapshots, random
//! checks, the two must agree on every decision (this file, the property test). `universe`,
//! `generate` and `query` build its snapshots and checks; `rules` holds the deterministic cases for
//! the tricky rules, each naming the docs/model.md rule it pins.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod generate;
mod incremental;
mod naive;
mod query;
mod rules;
mod universe;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scopegate::rbac::model::AccountSnapshot;
use scopegate::rbac::{Catalog, Reason, compile};

use generate::{CHECKS_PER_SNAPSHOT, Spec, build_snapshot, spec_strategy};
use naive::NaivePrincipal;
use query::build_query;

/// The embedded catalog, loaded once.
fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    Arc::clone(CATALOG.get_or_init(|| Arc::new(Catalog::embedded().expect("embedded catalog"))))
}

/// Outcome counters across the whole property run.
#[derive(Default)]
struct Counters {
    checks: AtomicUsize,
    allowed: AtomicUsize,
    granted: AtomicUsize,
    granted_in_child_scope: AtomicUsize,
    granted_through_group: AtomicUsize,
    granted_to_service_account: AtomicUsize,
}

fn dump(snapshot: &AccountSnapshot) -> String {
    serde_yaml_ng::to_string(snapshot).unwrap_or_else(|e| format!("<cannot serialize: {e}>"))
}

fn run_case(spec: &Spec, counters: &Counters) -> Result<(), TestCaseError> {
    let snapshot = build_snapshot(spec);
    let compiled = compile(&snapshot, catalog(), None).map_err(|e| {
        TestCaseError::fail(format!(
            "generated an invalid snapshot: {e}\n--- snapshot ---\n{}",
            dump(&snapshot)
        ))
    })?;
    for check in &spec.checks {
        let query = build_query(&snapshot, check);
        let engine = query.engine(&compiled);
        let naive = query.naive(&snapshot);
        if engine.allowed != naive {
            return Err(TestCaseError::fail(format!(
                "engine and naive model disagree: engine {} ({:?}), naive {}\n--- check ---\n{query:#?}\n--- snapshot ---\n{}",
                if engine.allowed { "ALLOW" } else { "DENY" },
                engine.reason,
                if naive { "ALLOW" } else { "DENY" },
                dump(&snapshot),
            )));
        }
        counters.checks.fetch_add(1, Ordering::Relaxed);
        if engine.allowed {
            counters.allowed.fetch_add(1, Ordering::Relaxed);
        }
        if let Reason::Granted { grant, matched_scope } = engine.reason {
            counters.granted.fetch_add(1, Ordering::Relaxed);
            if Some(matched_scope) != compiled.resolve_scope(query.org.as_deref(), query.project.as_deref()) {
                counters.granted_in_child_scope.fetch_add(1, Ordering::Relaxed);
            }
            if grant.via_group != u32::MAX {
                counters.granted_through_group.fetch_add(1, Ordering::Relaxed);
            }
            if matches!(query.principal, NaivePrincipal::ServiceAccount { .. }) {
                counters
                    .granted_to_service_account
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

#[test]
fn engine_agrees_with_the_naive_model() {
    let config = Config {
        cases: 4_000,
        // Writing regressions would create files next to this test; the failure message carries
        // the whole snapshot and check instead.
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let counters = Counters::default();
    if let Err(failure) = runner.run(&spec_strategy(), |spec| run_case(&spec, &counters)) {
        panic!("{failure}");
    }
    let checks = counters.checks.load(Ordering::Relaxed);
    let allowed = counters.allowed.load(Ordering::Relaxed);
    let granted = counters.granted.load(Ordering::Relaxed);
    let denied = checks - allowed;
    println!(
        "{checks} checks: {allowed} allowed ({granted} granted, {} in a child scope, {} through a group, {} to a \
         service account), {denied} denied",
        counters.granted_in_child_scope.load(Ordering::Relaxed),
        counters.granted_through_group.load(Ordering::Relaxed),
        counters.granted_to_service_account.load(Ordering::Relaxed),
    );
    assert!(checks >= 4_000 * CHECKS_PER_SNAPSHOT, "only {checks} checks ran");
    assert!(
        allowed * 10 >= checks,
        "allows are under 10%: {allowed} of {checks}"
    );
    assert!(
        denied * 10 >= checks,
        "denials are under 10%: {denied} of {checks}"
    );
    assert!(
        granted * 20 >= checks,
        "Granted is under 5%: {granted} of {checks}"
    );
    assert!(
        counters.granted_in_child_scope.load(Ordering::Relaxed) > 0,
        "never granted in a child scope"
    );
    assert!(
        counters.granted_through_group.load(Ordering::Relaxed) > 0,
        "never granted through a group"
    );
    assert!(
        counters.granted_to_service_account.load(Ordering::Relaxed) > 0,
        "never granted to an SA"
    );
}
