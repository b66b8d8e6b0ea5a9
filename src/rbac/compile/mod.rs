//! Snapshot → `CompiledAccount`: validates a whole snapshot (docs/model.md "Validation", every error
//! at once, each naming its entry) and builds the indexes `decide` reads. All or nothing.
//!
//! One file per snapshot section, each adding `Builder` methods: `scopes` (organizations and
//! projects), `principals` (users, user groups, service accounts), `roles`, `resources` (resource
//! groups and resources), `assignments` and `credentials` (API keys and their tokens). This file
//! holds the entry point, the builder's state, the checks every declared entry passes
//! ([`Builder::declare`]) and the final indexing of grants.

mod assignments;
mod credentials;
mod principals;
mod resources;
mod roles;
mod scopes;

use std::collections::HashMap;
use std::sync::Arc;

use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::{CompiledAccount, Grant, PrincipalGrants, ScopeGrants, ScopeId, ScopeNode};
use crate::rbac::error::{SnapshotError, ValidationError};
use crate::rbac::ids::Level;
use crate::rbac::index::CompileIndex;
use crate::rbac::model::{self, AccountSnapshot};
use crate::rbac::persistent::{ChunkedVec, ShardedMap};

pub(crate) use assignments::custom_instance;
pub(crate) use credentials::{token_id_well_formed, token_node};
pub(crate) use scopes::ancestor_at_level;

/// Validates `snapshot` against `catalog` and compiles it. `current_version` is the version in
/// force for this account, if any: an older snapshot is rejected.
pub fn compile(
    snapshot: &AccountSnapshot,
    catalog: Arc<Catalog>,
    current_version: Option<u64>,
) -> Result<CompiledAccount, SnapshotError> {
    let mut builder = Builder::new(snapshot, catalog);
    if let Some(current) = current_version.filter(|c| snapshot.version < *c) {
        builder.errors.push(ValidationError::VersionBackwards {
            account: snapshot.account.clone(),
            version: snapshot.version,
            current,
        });
    }
    builder.scopes(snapshot);
    builder.users(snapshot);
    builder.groups(snapshot);
    builder.service_accounts(snapshot);
    builder.roles(snapshot);
    builder.resource_groups(snapshot);
    builder.resources(snapshot);
    builder.assignments(snapshot);
    builder.api_keys(snapshot);
    builder.finish()
}

/// The account being built, the errors found so far and the indexes only compilation needs.
struct Builder {
    catalog: Arc<Catalog>,
    account: CompiledAccount,
    errors: Vec<ValidationError>,
    /// (principal slot, scope, grant) before sorting.
    raw_grants: Vec<(u32, ScopeId, Grant)>,
}

/// One entry a section declares, as [`Builder::declare`] checks it.
struct Declaration<'a> {
    /// What the entry is, as errors name it: `user group`, `role`, `resource PIPELINE`, ...
    kind: &'a str,
    /// Its identifier.
    identifier: &'a str,
    /// The scope it is declared in (none = the account).
    scope: Option<&'a model::Scope>,
    /// The identifier names a principal on the wire (`x-scopegate-principal`,
    /// `x-scopegate-account`), so it must also be visible ASCII.
    on_the_wire: bool,
    /// Why the identifier is reserved, when a managed entry of the catalog holds it. Recorded as an
    /// error; the entry is still checked further.
    reserved: Option<&'static str>,
}

impl<'a> Declaration<'a> {
    /// An entry named `identifier` of `kind` in `scope`, neither on the wire nor reserved.
    fn new(kind: &'a str, identifier: &'a str, scope: Option<&'a model::Scope>) -> Self {
        Self {
            kind,
            identifier,
            scope,
            on_the_wire: false,
            reserved: None,
        }
    }

    /// The identifier names a principal on the wire.
    fn on_the_wire(self) -> Self {
        Self {
            on_the_wire: true,
            ..self
        }
    }

    /// The identifier is reserved for `why`, when `reserved` is true.
    fn reserved(self, reserved: bool, why: &'static str) -> Self {
        Self {
            reserved: reserved.then_some(why),
            ..self
        }
    }
}

/// Whether an identifier is non-empty, without `/` or whitespace (every entry's first check).
pub(crate) fn identifier_well_formed(identifier: &str) -> bool {
    !identifier.is_empty() && !identifier.contains('/') && !identifier.chars().any(char::is_whitespace)
}

/// How errors name an entry: ``kind `identifier` in `scope` ``.
fn entry(kind: &str, identifier: &str, scope: &str) -> String {
    format!("{kind} `{identifier}` in `{scope}`")
}

impl Builder {
    fn new(snapshot: &AccountSnapshot, catalog: Arc<Catalog>) -> Self {
        let account = CompiledAccount {
            catalog: Arc::clone(&catalog),
            account: snapshot.account.as_str().into(),
            version: snapshot.version,
            scopes: Arc::new(vec![ScopeNode {
                level: Level::Account,
                parent: None,
                identifier: snapshot.account.as_str().into(),
                children: HashMap::new(),
            }]),
            users: ChunkedVec::new(),
            user_index: Arc::default(),
            service_accounts: Arc::default(),
            service_account_index: Arc::default(),
            groups: ChunkedVec::new(),
            roles: Arc::default(),
            resource_groups: ChunkedVec::new(),
            assignments: ChunkedVec::new(),
            principal_grants: ChunkedVec::new(),
            resources: Arc::default(),
            tokens: ShardedMap::new(),
            index: CompileIndex::default(),
        };
        let mut builder = Self {
            catalog,
            account,
            errors: Vec::new(),
            raw_grants: Vec::new(),
        };
        builder.account.index.scopes.push(Arc::default());
        builder
    }

    /// The checks every declared entry passes, in this order: a well-formed identifier (else the
    /// entry is skipped), not a reserved one (recorded, not skipped), a scope that exists (else
    /// skipped) and no earlier entry with the same identifier there (`taken`; else skipped).
    /// Returns how errors name the entry and its scope.
    fn declare(
        &mut self,
        declaration: Declaration<'_>,
        taken: impl FnOnce(&Self, ScopeId) -> bool,
    ) -> Option<(String, ScopeId)> {
        let described = entry(
            declaration.kind,
            declaration.identifier,
            &self.raw_path(declaration.scope),
        );
        let well_formed = if declaration.on_the_wire {
            self.wire_identifier_ok(declaration.identifier, || described.clone())
        } else {
            self.identifier_ok(declaration.identifier, || described.clone())
        };
        if !well_formed {
            return None;
        }
        if let Some(why) = declaration.reserved {
            self.malformed(described.clone(), why);
        }
        let scope = self.scope_of(declaration.scope, || described.clone())?;
        if taken(self, scope) {
            self.errors
                .push(ValidationError::DuplicateIdentifier { entry: described });
            return None;
        }
        Some((described, scope))
    }

    fn malformed(&mut self, entry: String, message: impl Into<String>) {
        self.errors.push(ValidationError::Malformed {
            entry,
            message: message.into(),
        });
    }

    fn path(&self, scope: ScopeId) -> String {
        self.account.scope_path(scope)
    }

    /// The display path of a snapshot scope, resolvable or not.
    fn raw_path(&self, scope: Option<&model::Scope>) -> String {
        let mut path = self.account.account.to_string();
        if let Some(scope) = scope {
            for part in [&scope.org, &scope.project] {
                if !part.is_empty() {
                    path.push('/');
                    path.push_str(part);
                }
            }
        }
        path
    }

    /// Resolves a snapshot scope, recording an error against `entry` when it does not exist.
    fn scope_of(&mut self, scope: Option<&model::Scope>, entry: impl FnOnce() -> String) -> Option<ScopeId> {
        fn non_empty(value: &str) -> Option<&str> {
            (!value.is_empty()).then_some(value)
        }
        let (org, project) = scope.map_or((None, None), |s| (non_empty(&s.org), non_empty(&s.project)));
        let resolved = self.account.resolve_scope(org, project);
        if resolved.is_none() {
            let scope = self.raw_path(scope);
            self.errors.push(ValidationError::UnknownScope {
                entry: entry(),
                scope,
            });
        }
        resolved
    }

    fn identifier_ok(&mut self, identifier: &str, describe: impl FnOnce() -> String) -> bool {
        let ok = identifier_well_formed(identifier);
        if !ok {
            self.malformed(describe(), "identifier must be non-empty, without `/` or spaces");
        }
        ok
    }

    /// [`identifier_ok`](Self::identifier_ok) for identifiers that name a principal on the wire
    /// (`x-scopegate-principal`, `x-scopegate-account`): accounts, organizations, projects, users and
    /// service accounts must also be visible ASCII, or the header could not carry them.
    fn wire_identifier_ok(&mut self, identifier: &str, describe: impl Fn() -> String) -> bool {
        if !self.identifier_ok(identifier, &describe) {
            return false;
        }
        let ok = identifier.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            self.malformed(
                describe(),
                "identifier must be visible ASCII: it names the principal in response headers",
            );
        }
        ok
    }

    /// The account, or every error found; the grants sorted by principal slot and scope, one
    /// grant per (slot, scope, assignment).
    fn finish(mut self) -> Result<CompiledAccount, SnapshotError> {
        if !self.errors.is_empty() {
            return Err(SnapshotError::Invalid {
                account: self.account.account.to_string(),
                errors: self.errors,
            });
        }
        let slots = self.account.users.len() + self.account.service_accounts.len();
        let mut raw = std::mem::take(&mut self.raw_grants);
        raw.sort_unstable_by_key(|(slot, scope, grant)| (*slot, *scope, grant.assignment, grant.via_group));
        raw.dedup_by_key(|(slot, scope, grant)| (*slot, *scope, grant.assignment));
        let mut by_slot: Vec<Option<Arc<PrincipalGrants>>> = vec![None; slots];
        for run in raw.chunk_by(|a, b| a.0 == b.0) {
            let Some((slot, _, _)) = run.first() else {
                continue;
            };
            let grants = principal_grants(run.iter().map(|(_, scope, grant)| (*scope, *grant)));
            if let Some(entry) = by_slot.get_mut(*slot as usize) {
                *entry = Some(Arc::new(grants));
            }
        }
        self.account.principal_grants = by_slot.into_iter().collect();
        Ok(self.account)
    }
}

/// One principal's grants from `(scope, grant)` pairs sorted by scope.
pub(crate) fn principal_grants(sorted: impl Iterator<Item = (ScopeId, Grant)>) -> PrincipalGrants {
    let mut scopes: Vec<ScopeGrants> = Vec::new();
    let mut grants = Vec::new();
    for (scope, grant) in sorted {
        let index = grants.len() as u32;
        grants.push(grant);
        match scopes.last_mut() {
            Some(last) if last.scope == scope => last.end = index + 1,
            _ => scopes.push(ScopeGrants {
                scope,
                start: index,
                end: index + 1,
            }),
        }
    }
    PrincipalGrants {
        scopes: scopes.into_boxed_slice(),
        grants: grants.into_boxed_slice(),
    }
}

#[cfg(test)]
mod tests;
