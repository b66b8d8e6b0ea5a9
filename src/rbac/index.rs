//! What compilation knows beyond what `decide` reads, kept in the `CompiledAccount` so that an
//! incremental compile (`rbac::incremental`) can resolve and undo single entities: per scope, the
//! names of its assignments, user groups, custom roles, custom resource groups and resource-group
//! instances; per user group, its members and the assignments made to it; per assignment, whom it
//! grants to; per API key, its tokens. All copy-on-write (`rbac::persistent`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::rbac::compiled::{Grant, ScopeId, Selector};
use crate::rbac::delta::ApiKeyIdentity;
use crate::rbac::ids::ResourceTypeId;
use crate::rbac::persistent::{ChunkedVec, ShardedMap};

/// A custom resource group before an assignment resolves it against its scope.
#[derive(Debug, Clone)]
pub(crate) struct CustomGroup {
    pub(crate) scope: ScopeId,
    /// Included scopes; `None` = the assignment's scope.
    pub(crate) scopes: Vec<(Option<ScopeId>, bool)>,
    pub(crate) include_all_resources: bool,
    pub(crate) selectors: Vec<(ResourceTypeId, Selector)>,
}

/// The names declared in one scope, each to its index in the compiled account.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeIndex {
    /// Role assignments → `CompiledAccount::assignments`.
    pub(crate) assignments: HashMap<Box<str>, u32>,
    /// User groups → `CompiledAccount::groups`.
    pub(crate) groups: HashMap<Box<str>, u32>,
    /// Custom roles → `CompiledAccount::roles`.
    pub(crate) roles: HashMap<Box<str>, u32>,
    /// Custom resource groups → `CompileIndex::custom_groups`.
    pub(crate) custom_groups: HashMap<Box<str>, u32>,
    /// Resource-group instances built for assignments of this scope → `CompiledAccount::resource_groups`.
    pub(crate) instances: HashMap<Box<str>, u32>,
}

/// A user group's members and the assignments made to it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupState {
    /// Member user indexes, sorted, without repeats.
    pub(crate) members: Box<[u32]>,
    /// Assignment indexes whose principal is this group (enabled or not).
    pub(crate) assignments: Vec<u32>,
}

/// Whom an assignment grants to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grantee {
    /// One principal slot (a user, or a service account after the users).
    Slot(u32),
    /// The members of a user group, by group index.
    Group(u32),
}

/// A compiled assignment: whom it grants to and, when enabled, the grant; `None` after a delete.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AssignmentState {
    pub(crate) grantee: Option<Grantee>,
    /// Where it was made.
    pub(crate) scope: ScopeId,
    /// The grant, for an enabled assignment.
    pub(crate) grant: Option<Grant>,
}

/// The tokens of one API key (by its identity), and how many keys of the snapshot share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTokens {
    /// Keys with this identity; more than one is allowed but defeats the fast path.
    pub(crate) keys: u32,
    /// The `<token-id>`s compiled for it.
    pub(crate) token_ids: Vec<Box<str>>,
}

/// The incremental index of a compiled account.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompileIndex {
    /// By `ScopeId`.
    pub(crate) scopes: ChunkedVec<Arc<ScopeIndex>>,
    /// Custom resource groups, in snapshot order.
    pub(crate) custom_groups: Arc<Vec<CustomGroup>>,
    /// By group index.
    pub(crate) groups: ChunkedVec<Arc<GroupState>>,
    /// By assignment index.
    pub(crate) assignments: ChunkedVec<AssignmentState>,
    /// By API-key identity.
    pub(crate) api_keys: ShardedMap<ApiKeyIdentity, KeyTokens>,
}

impl CompileIndex {
    /// The names declared in `scope`.
    #[inline]
    pub(crate) fn scope(&self, scope: ScopeId) -> Option<&ScopeIndex> {
        self.scopes.get(scope.0 as usize).map(|s| &**s)
    }

    /// The same, for writing (copied if shared).
    pub(crate) fn scope_mut(&mut self, scope: ScopeId) -> Option<&mut ScopeIndex> {
        self.scopes.get_mut(scope.0 as usize).map(Arc::make_mut)
    }

    /// The index of a name in `scope`, through `field`.
    pub(crate) fn lookup(
        &self,
        scope: ScopeId,
        field: fn(&ScopeIndex) -> &HashMap<Box<str>, u32>,
        name: &str,
    ) -> Option<u32> {
        self.scope(scope).and_then(|s| field(s).get(name).copied())
    }

    /// A user group's state.
    pub(crate) fn group(&self, group: u32) -> Option<&GroupState> {
        self.groups.get(group as usize).map(|g| &**g)
    }

    /// The same, for writing (copied if shared).
    pub(crate) fn group_mut(&mut self, group: u32) -> Option<&mut GroupState> {
        self.groups.get_mut(group as usize).map(Arc::make_mut)
    }
}
