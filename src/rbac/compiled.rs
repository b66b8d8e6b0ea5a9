//! `CompiledAccount`: a validated snapshot turned into indexes for the hot path. Scopes, principals,
//! roles and resource groups are interned; grants are stored per principal and scope with user
//! groups already expanded. Built by `rbac::compile`, read by `rbac::decide`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::rbac::catalog::Catalog;
use crate::rbac::ids::{Level, PermissionSet, ResourceTypeId};
use crate::rbac::index::CompileIndex;
use crate::rbac::persistent::{ChunkedVec, ShardedMap};
pub use crate::rbac::secret_hash::{SecretHash, SecretHashError};

/// An interned scope of the account; `ScopeId::ACCOUNT` is the account itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeId(pub u32);

impl ScopeId {
    /// The account scope.
    pub const ACCOUNT: ScopeId = ScopeId(0);
}

/// One scope: its level, its parent and its children by identifier.
#[derive(Debug, Clone)]
pub struct ScopeNode {
    /// Its level.
    pub level: Level,
    /// Its parent (none for the account).
    pub parent: Option<ScopeId>,
    /// Its own identifier (the account, org or project identifier).
    pub identifier: Box<str>,
    /// Its children by identifier.
    pub children: HashMap<Box<str>, ScopeId>,
}

/// A principal that can hold grants and credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalId {
    /// A user, by index.
    User(u32),
    /// A service account, by index.
    ServiceAccount(u32),
}

/// A resource's attributes, sorted by name.
pub type Attributes = Vec<(Box<str>, Box<str>)>;

/// The recorded resources' attributes, by scope and type, then identifier.
pub type ResourceAttributes = HashMap<(ScopeId, ResourceTypeId), HashMap<Box<str>, Attributes>>;

/// A user of the account.
#[derive(Debug, Clone)]
pub struct UserNode {
    /// Its identifier.
    pub identifier: Box<str>,
    /// A disabled user authenticates to nothing.
    pub disabled: bool,
}

/// A service account and the scope it lives in.
#[derive(Debug, Clone)]
pub struct ServiceAccountNode {
    /// Its identifier.
    pub identifier: Box<str>,
    /// Where it lives.
    pub scope: ScopeId,
}

/// A user group (kept for naming the group a grant came through).
#[derive(Debug, Clone)]
pub struct GroupNode {
    /// Its identifier.
    pub identifier: Box<str>,
    /// Where it lives.
    pub scope: ScopeId,
}

/// A role, managed or custom, as a permission bitset.
#[derive(Debug, Clone)]
pub struct RoleNode {
    /// Its identifier.
    pub identifier: Box<str>,
    /// The scope of a custom role; none for a managed role.
    pub scope: Option<ScopeId>,
    /// What it grants.
    pub permissions: PermissionSet,
}

/// How one resource-group entry selects resources of a type.
#[derive(Debug, Clone)]
pub enum Selector {
    /// Every resource of the type.
    TypeWide,
    /// Only these identifiers.
    Identifiers(HashSet<Box<str>>),
    /// Only resources whose attribute has one of the values.
    Attribute {
        /// The attribute's name.
        name: Box<str>,
        /// Accepted values.
        values: Box<[Box<str>]>,
    },
}

/// A resource group resolved against the scope of the assignments that use it.
#[derive(Debug, Clone)]
pub struct ResourceGroupNode {
    /// Its identifier.
    pub identifier: Box<str>,
    /// Included scopes: base scope and whether descendants are included.
    pub scopes: Box<[(ScopeId, bool)]>,
    /// Whether it covers every resource of the covered scopes.
    pub include_all_resources: bool,
    /// Resource entries by type.
    pub selectors: Box<[(ResourceTypeId, Selector)]>,
}

/// An enabled role assignment as stored for one principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Index into `CompiledAccount::roles`.
    pub role: u32,
    /// Index into `CompiledAccount::resource_groups`.
    pub resource_group: u32,
    /// Index into `CompiledAccount::assignments`.
    pub assignment: u32,
    /// Index into `CompiledAccount::groups` when granted through a user group, else `u32::MAX`.
    pub via_group: u32,
}

/// The grants of one principal made at one scope: a range of `PrincipalGrants::grants`.
#[derive(Debug, Clone, Copy)]
pub struct ScopeGrants {
    /// Where the assignments were made.
    pub scope: ScopeId,
    /// First grant.
    pub start: u32,
    /// One past the last grant.
    pub end: u32,
}

/// The grants of one principal, by the scope they were made at (sorted), then by assignment.
#[derive(Debug, Clone, Default)]
pub struct PrincipalGrants {
    /// One range of `grants` per scope.
    pub scopes: Box<[ScopeGrants]>,
    /// The grants.
    pub grants: Box<[Grant]>,
}

/// An assignment's identifier and scope, for reasons.
#[derive(Debug, Clone)]
pub struct AssignmentNode {
    /// Its identifier.
    pub identifier: Box<str>,
    /// Its scope.
    pub scope: ScopeId,
}

/// An API token of the account, looked up by its `<token-id>` segment.
#[derive(Debug, Clone)]
pub struct TokenNode {
    /// The API key's identifier.
    pub api_key: Box<str>,
    /// The token's identifier.
    pub identifier: Box<str>,
    /// Whose permissions it holds.
    pub principal: PrincipalId,
    /// The stored hash of its secret.
    pub secret_hash: SecretHash,
    /// Valid from (Unix seconds, inclusive).
    pub valid_from: i64,
    /// Valid until (Unix seconds, exclusive).
    pub valid_to: i64,
    /// Grace deadline after a rotation (Unix seconds, exclusive).
    pub rotated_expire_at: Option<i64>,
    /// The token's permission subset, if it has one.
    pub permissions: Option<PermissionSet>,
}

/// A validated account snapshot, indexed for `decide`.
#[derive(Debug, Clone)]
pub struct CompiledAccount {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) account: Box<str>,
    pub(crate) version: u64,
    pub(crate) scopes: Arc<Vec<ScopeNode>>,
    pub(crate) users: ChunkedVec<UserNode>,
    pub(crate) user_index: Arc<HashMap<Box<str>, u32>>,
    pub(crate) service_accounts: Arc<Vec<ServiceAccountNode>>,
    pub(crate) service_account_index: Arc<HashMap<Box<str>, Vec<u32>>>,
    pub(crate) groups: ChunkedVec<GroupNode>,
    pub(crate) roles: Arc<Vec<RoleNode>>,
    pub(crate) resource_groups: ChunkedVec<ResourceGroupNode>,
    pub(crate) assignments: ChunkedVec<AssignmentNode>,
    /// Per principal slot (users first, then service accounts): its grants, if it has any.
    pub(crate) principal_grants: ChunkedVec<Option<Arc<PrincipalGrants>>>,
    pub(crate) resources: Arc<ResourceAttributes>,
    pub(crate) tokens: ShardedMap<Box<str>, TokenNode>,
    /// What an incremental compile needs beyond the above.
    pub(crate) index: CompileIndex,
}

impl CompiledAccount {
    /// The catalog it was compiled against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The shared catalog handle.
    pub fn catalog_arc(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The account identifier.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The snapshot version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A scope node.
    #[inline]
    pub fn scope(&self, id: ScopeId) -> Option<&ScopeNode> {
        self.scopes.get(id.0 as usize)
    }

    /// Resolves `org` / `org + project` to a scope (none = the account).
    pub fn resolve_scope(&self, org: Option<&str>, project: Option<&str>) -> Option<ScopeId> {
        let account = self.scope(ScopeId::ACCOUNT)?;
        match (org, project) {
            (None, None) => Some(ScopeId::ACCOUNT),
            (Some(org), None) => account.children.get(org).copied(),
            (Some(org), Some(project)) => {
                let org = *account.children.get(org)?;
                self.scope(org)?.children.get(project).copied()
            }
            (None, Some(_)) => None,
        }
    }

    /// The child of `scope` with `identifier` (an org of the account or a project of an org).
    #[inline]
    pub fn child_scope(&self, scope: ScopeId, identifier: &str) -> Option<ScopeId> {
        self.scope(scope)?.children.get(identifier).copied()
    }

    /// Whether `ancestor` is `scope` or one of its ancestors (`ancestor ⊑ scope`).
    #[inline]
    pub fn is_ancestor_or_self(&self, ancestor: ScopeId, scope: ScopeId) -> bool {
        let mut current = Some(scope);
        while let Some(id) = current {
            if id == ancestor {
                return true;
            }
            current = self.scope(id).and_then(|node| node.parent);
        }
        false
    }

    /// The path of a scope: `acme`, `acme/eng` or `acme/eng/payments`.
    pub fn scope_path(&self, id: ScopeId) -> String {
        let mut parts = Vec::with_capacity(3);
        let mut current = Some(id);
        while let Some(id) = current {
            match self.scope(id) {
                Some(node) => {
                    parts.push(&*node.identifier);
                    current = node.parent;
                }
                None => break,
            }
        }
        parts.reverse();
        parts.join("/")
    }

    /// The org and project identifiers of a scope (for response bodies).
    pub fn scope_parts(&self, id: ScopeId) -> (Option<&str>, Option<&str>) {
        let Some(node) = self.scope(id) else {
            return (None, None);
        };
        match node.level {
            Level::Account => (None, None),
            Level::Organization => (Some(&node.identifier), None),
            Level::Project => {
                let org = node.parent.and_then(|p| self.scope(p)).map(|o| &*o.identifier);
                (org, Some(&node.identifier))
            }
        }
    }

    /// A user by identifier.
    pub fn user(&self, identifier: &str) -> Option<PrincipalId> {
        self.user_index.get(identifier).map(|i| PrincipalId::User(*i))
    }

    /// The service accounts with this identifier (one per scope at most).
    pub fn service_accounts_named(&self, identifier: &str) -> Vec<PrincipalId> {
        self.service_account_index
            .get(identifier)
            .map(|ids| ids.iter().map(|i| PrincipalId::ServiceAccount(*i)).collect())
            .unwrap_or_default()
    }

    /// The service account with this identifier living in `scope`.
    pub fn service_account_in(&self, identifier: &str, scope: ScopeId) -> Option<PrincipalId> {
        self.service_account_index.get(identifier)?.iter().find_map(|i| {
            let node = self.service_accounts.get(*i as usize)?;
            (node.scope == scope).then_some(PrincipalId::ServiceAccount(*i))
        })
    }

    /// A service account by its identifier when unique in the account, else by `org[/project]/id`.
    pub fn service_account_by_name(&self, name: &str) -> Option<PrincipalId> {
        match name.rsplit_once('/') {
            Some((path, id)) => {
                let mut parts = path.split('/');
                let org = parts.next();
                let project = parts.next();
                if parts.next().is_some() {
                    return None;
                }
                let scope = self.resolve_scope(org, project)?;
                self.service_account_in(id, scope)
            }
            None => match self.service_accounts_named(name).as_slice() {
                [only] => Some(*only),
                _ => None,
            },
        }
    }

    /// Whether the principal is a disabled user.
    #[inline]
    pub fn is_disabled(&self, principal: PrincipalId) -> bool {
        match principal {
            PrincipalId::User(i) => self.users.get(i as usize).is_none_or(|u| u.disabled),
            PrincipalId::ServiceAccount(i) => (i as usize) >= self.service_accounts.len(),
        }
    }

    /// The principal's name, unambiguous within the account: `USER:alice`; a service account by
    /// its identifier at account level (`SERVICE_ACCOUNT:ci_bot`), else with its scope below the
    /// account (`SERVICE_ACCOUNT:eng/ci_bot`, `SERVICE_ACCOUNT:eng/payments/ci_bot`): two service
    /// accounts of one identifier in different scopes never share a name. The same forms are what
    /// [`service_account_by_name`](Self::service_account_by_name) reads.
    pub fn principal_label(&self, principal: PrincipalId) -> String {
        match principal {
            PrincipalId::User(i) => {
                let name = self.users.get(i as usize).map_or("?", |u| &u.identifier);
                format!("USER:{name}")
            }
            PrincipalId::ServiceAccount(i) => match self.service_accounts.get(i as usize) {
                Some(sa) => match self.scope_parts(sa.scope) {
                    (Some(org), Some(project)) => {
                        format!("SERVICE_ACCOUNT:{org}/{project}/{}", sa.identifier)
                    }
                    (Some(org), None) => format!("SERVICE_ACCOUNT:{org}/{}", sa.identifier),
                    _ => format!("SERVICE_ACCOUNT:{}", sa.identifier),
                },
                None => "SERVICE_ACCOUNT:?".to_owned(),
            },
        }
    }

    /// The principal's type (`USER`, `SERVICE_ACCOUNT`) and bare identifier, as Harness's API names
    /// it beside its scope.
    pub fn principal_identifier(&self, principal: PrincipalId) -> (&'static str, &str) {
        match principal {
            PrincipalId::User(i) => ("USER", self.users.get(i as usize).map_or("?", |u| &u.identifier)),
            PrincipalId::ServiceAccount(i) => (
                "SERVICE_ACCOUNT",
                self.service_accounts
                    .get(i as usize)
                    .map_or("?", |s| &s.identifier),
            ),
        }
    }

    /// An API token by its `<token-id>` segment.
    #[inline]
    pub fn token(&self, token_id: &str) -> Option<&TokenNode> {
        self.tokens.get(token_id)
    }

    /// The attributes recorded for a resource.
    pub(crate) fn resource_attributes(
        &self,
        scope: ScopeId,
        resource_type: ResourceTypeId,
        identifier: &str,
    ) -> Option<&[(Box<str>, Box<str>)]> {
        self.resources
            .get(&(scope, resource_type))?
            .get(identifier)
            .map(Vec::as_slice)
    }

    /// The grants of `principal` made at `scope`.
    #[inline]
    pub(crate) fn grants_at(&self, principal: PrincipalId, scope: ScopeId) -> &[Grant] {
        let slot = match principal {
            PrincipalId::User(i) => i as usize,
            PrincipalId::ServiceAccount(i) => self.users.len() + i as usize,
        };
        let Some(Some(grants)) = self.principal_grants.get(slot) else {
            return &[];
        };
        // Entries of one principal are sorted by scope (see `compile::finish`).
        grants
            .scopes
            .binary_search_by_key(&scope, |e| e.scope)
            .ok()
            .and_then(|i| grants.scopes.get(i))
            .and_then(|e| grants.grants.get(e.start as usize..e.end as usize))
            .unwrap_or(&[])
    }

    /// Counts of what was compiled, for reports.
    pub fn stats(&self) -> AccountStats {
        AccountStats {
            scopes: self.scopes.len(),
            users: self.users.len(),
            service_accounts: self.service_accounts.len(),
            user_groups: self.index.scopes.iter().map(|s| s.groups.len()).sum(),
            roles: self.roles.len(),
            resource_groups: self.resource_groups.len(),
            assignments: self
                .index
                .assignments
                .iter()
                .filter(|a| a.grantee.is_some())
                .count(),
            expanded_grants: self
                .principal_grants
                .iter()
                .flatten()
                .map(|g| g.grants.len())
                .sum(),
            tokens: self.tokens.len(),
        }
    }
}

/// Sizes of a compiled account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountStats {
    /// Scopes (account, orgs, projects).
    pub scopes: usize,
    /// Users.
    pub users: usize,
    /// Service accounts.
    pub service_accounts: usize,
    /// User groups.
    pub user_groups: usize,
    /// Roles, managed and custom.
    pub roles: usize,
    /// Resource-group instances (managed groups once per scope that uses them).
    pub resource_groups: usize,
    /// Role assignments, enabled or not.
    pub assignments: usize,
    /// Grants after user groups were expanded.
    pub expanded_grants: usize,
    /// API tokens.
    pub tokens: usize,
}
