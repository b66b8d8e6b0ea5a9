//! The `organizations` section: the account's scope tree (organizations and their projects), and
//! the scope lookups the other sections use (a scope's level, its ancestor at a level).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Builder, Declaration};
use crate::rbac::compiled::{CompiledAccount, ScopeId, ScopeNode};
use crate::rbac::ids::Level;
use crate::rbac::model::{self, AccountSnapshot, ScopeLevel};

impl Builder {
    pub(super) fn scopes(&mut self, snapshot: &AccountSnapshot) {
        let account = self.account.account.to_string();
        if !self.wire_identifier_ok(&account, || "snapshot".to_owned()) {
            return;
        }
        for org in &snapshot.organizations {
            let declared = Declaration::new("organization", &org.identifier, None).on_the_wire();
            let Some((_, account_scope)) = self.declare(declared, |builder, account_scope| {
                builder
                    .account
                    .child_scope(account_scope, &org.identifier)
                    .is_some()
            }) else {
                continue;
            };
            let org_id = self.push_scope(account_scope, Level::Organization, &org.identifier);
            let org_scope = model::Scope::new(Some(&org.identifier), None);
            for project in &org.projects {
                let declared = Declaration::new("project", project, Some(&org_scope)).on_the_wire();
                let declared = self.declare(declared, |builder, org_id| {
                    builder.account.child_scope(org_id, project).is_some()
                });
                if declared.is_some() {
                    self.push_scope(org_id, Level::Project, project);
                }
            }
        }
    }

    fn push_scope(&mut self, parent: ScopeId, level: Level, identifier: &str) -> ScopeId {
        let scopes = Arc::make_mut(&mut self.account.scopes);
        let id = ScopeId(scopes.len() as u32);
        scopes.push(ScopeNode {
            level,
            parent: Some(parent),
            identifier: identifier.into(),
            children: HashMap::new(),
        });
        if let Some(node) = scopes.get_mut(parent.0 as usize) {
            node.children.insert(identifier.into(), id);
        }
        self.account.index.scopes.push(Arc::default());
        id
    }

    /// The level of `scope`.
    pub(super) fn level(&self, scope: ScopeId) -> Level {
        // INVARIANT: every `ScopeId` a builder holds is `ScopeId::ACCOUNT` (pushed by `Builder::new`)
        // or came from `push_scope` or `resolve_scope` over the same `scopes`, which only grow.
        self.account.scopes[scope.0 as usize].level
    }

    /// The ancestor of `scope` at `level`, when `level` is set; `scope` itself otherwise.
    pub(super) fn scope_at_level(&mut self, scope: ScopeId, level: i32, described: &str) -> Option<ScopeId> {
        let wanted = match ScopeLevel::try_from(level) {
            Ok(ScopeLevel::Unspecified) => return Some(scope),
            Ok(ScopeLevel::Account) => Level::Account,
            Ok(ScopeLevel::Organization) => Level::Organization,
            Ok(ScopeLevel::Project) => Level::Project,
            Err(_) => {
                self.malformed(described.to_owned(), "unknown `scope_level`");
                return None;
            }
        };
        let mut current = Some(scope);
        while let Some(id) = current {
            let Some(node) = self.account.scope(id) else {
                break;
            };
            if node.level == wanted {
                return Some(id);
            }
            current = node.parent;
        }
        self.malformed(
            described.to_owned(),
            format!("`scope_level` {} is below the assignment's scope", wanted.name()),
        );
        None
    }
}

/// The ancestor-or-self of `scope` a `scope_level` names (itself when unspecified), or none when
/// the level is unknown or below `scope` (what [`Builder::scope_at_level`] reports as an error).
pub(crate) fn ancestor_at_level(account: &CompiledAccount, scope: ScopeId, level: i32) -> Option<ScopeId> {
    let wanted = match ScopeLevel::try_from(level).ok()? {
        ScopeLevel::Unspecified => return Some(scope),
        ScopeLevel::Account => Level::Account,
        ScopeLevel::Organization => Level::Organization,
        ScopeLevel::Project => Level::Project,
    };
    let mut current = Some(scope);
    while let Some(id) = current {
        let node = account.scope(id)?;
        if node.level == wanted {
            return Some(id);
        }
        current = node.parent;
    }
    None
}
