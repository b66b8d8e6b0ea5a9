//! Snapshot harness: an account snapshot as YAML and as JSON (`AccountSnapshot::parse`, what
//! `AccountSnapshot::read` does after reading the file), compiled against the embedded catalog,
//! then a few decisions on what compiled. Never a panic; a parsed snapshot survives a JSON round
//! trip unchanged (the control plane ships snapshots as JSON).
//! Shared by `fuzz_targets/snapshot.rs` and `tests/fuzz_replay.rs`.

use std::sync::{Arc, OnceLock};

use scopegate::rbac::model::{AccountSnapshot, FileFormat};
use scopegate::rbac::{Catalog, Check, CompiledAccount, Principal, compile, decide};

static CATALOG: OnceLock<Option<Arc<Catalog>>> = OnceLock::new();

/// Decisions asked of a compiled account, at most this many users and scopes each.
const SAMPLE: usize = 8;
const PERMISSIONS: [&str; 3] = ["core_pipeline_view", "core_pipeline_execute", "core_user_view"];

/// One input: the snapshot text, tried as YAML and as JSON.
pub fn run(data: &[u8]) {
    let Some(catalog) = CATALOG.get_or_init(|| Catalog::embedded().ok().map(Arc::new)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [FileFormat::Yaml, FileFormat::Json] {
        let Ok(snapshot) = AccountSnapshot::parse(text, format) else {
            continue;
        };
        if let Ok(json) = serde_json::to_string(&snapshot) {
            let again = AccountSnapshot::parse(&json, FileFormat::Json);
            assert!(
                matches!(&again, Ok(s) if *s == snapshot),
                "a snapshot does not survive a JSON round trip: {again:?}"
            );
        }
        let compiled = compile(&snapshot, Arc::clone(catalog), None);
        if let Ok(account) = &compiled {
            assert_eq!(account.account(), snapshot.account);
            decide_some(account, &snapshot);
            // recompiling at the version in force is accepted, and an older one is refused
            assert!(compile(&snapshot, Arc::clone(catalog), Some(snapshot.version)).is_ok());
            if let Some(newer) = snapshot.version.checked_add(1) {
                assert!(compile(&snapshot, Arc::clone(catalog), Some(newer)).is_err());
            }
        }
    }
}

fn decide_some(account: &CompiledAccount, snapshot: &AccountSnapshot) {
    let catalog = account.catalog();
    let mut scopes = vec![account.resolve_scope(None, None)];
    for org in snapshot.organizations.iter().take(SAMPLE) {
        scopes.push(account.resolve_scope(Some(&org.identifier), None));
        for project in org.projects.iter().take(SAMPLE) {
            scopes.push(account.resolve_scope(Some(&org.identifier), Some(project)));
        }
    }
    let principals = snapshot
        .users
        .iter()
        .take(SAMPLE)
        .filter_map(|u| account.user(&u.identifier))
        .chain(
            snapshot
                .service_accounts
                .iter()
                .take(SAMPLE)
                .flat_map(|s| account.service_accounts_named(&s.identifier)),
        );
    for principal in principals.take(SAMPLE) {
        let _ = account.principal_label(principal);
        for scope in scopes.iter().flatten().take(SAMPLE) {
            for name in PERMISSIONS {
                let Some(permission) = catalog.permission_id(name) else {
                    continue;
                };
                let Some(resource_type) = catalog.permission(permission).map(|p| p.resource_type) else {
                    continue;
                };
                let principal = Principal {
                    id: principal,
                    token_permissions: None,
                };
                for resource_id in [None, Some("deploy_prod")] {
                    let check = Check {
                        scope: *scope,
                        permission,
                        resource_type,
                        resource_id,
                    };
                    let _ = decide(account, &principal, &check);
                }
            }
        }
    }
}
