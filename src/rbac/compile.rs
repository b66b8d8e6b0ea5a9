//! Snapshot → `CompiledAccount`: validates a whole snapshot (model.md "Validation", every error at
//! once, each naming its entry) and builds the indexes `decide` reads. All or nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::{
    AssignmentNode, CompiledAccount, Grant, GroupNode, PrincipalId, ResourceGroupNode, RoleNode, ScopeGrants,
    ScopeId, ScopeNode, SecretHash, Selector, ServiceAccountNode, TokenNode, UserNode,
};
use crate::rbac::error::{SnapshotError, ValidationError};
use crate::rbac::ids::{Level, PermissionSet};
use crate::rbac::model::{self, AccountSnapshot, PrincipalType, ScopeFilter, ScopeLevel};

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

/// A custom resource group before it is resolved against an assignment.
struct CustomGroup {
    scope: ScopeId,
    /// Included scopes; `None` = the assignment's scope.
    scopes: Vec<(Option<ScopeId>, bool)>,
    include_all_resources: bool,
    selectors: Vec<(crate::rbac::ids::ResourceTypeId, Selector)>,
}

struct Builder {
    catalog: Arc<Catalog>,
    account: CompiledAccount,
    errors: Vec<ValidationError>,
    /// Members of each user group (user indexes), by group index.
    members: Vec<Vec<u32>>,
    group_index: HashMap<(ScopeId, String), u32>,
    custom_roles: HashMap<(ScopeId, String), u32>,
    custom_groups: Vec<CustomGroup>,
    custom_group_index: HashMap<(ScopeId, String), usize>,
    /// Resource-group instances already built, by (custom index or managed name, scope).
    group_instances: HashMap<(String, ScopeId), u32>,
    /// (principal slot, scope, grant) before sorting.
    raw_grants: Vec<(u32, ScopeId, Grant)>,
}

fn entry(kind: &str, identifier: &str, scope: &str) -> String {
    format!("{kind} `{identifier}` in `{scope}`")
}

impl Builder {
    fn new(snapshot: &AccountSnapshot, catalog: Arc<Catalog>) -> Self {
        let account = CompiledAccount {
            catalog: Arc::clone(&catalog),
            account: snapshot.account.as_str().into(),
            version: snapshot.version,
            scopes: vec![ScopeNode {
                level: Level::Account,
                parent: None,
                identifier: snapshot.account.as_str().into(),
                children: HashMap::new(),
            }],
            users: Vec::new(),
            user_index: HashMap::new(),
            service_accounts: Vec::new(),
            service_account_index: HashMap::new(),
            groups: Vec::new(),
            roles: Vec::new(),
            resource_groups: Vec::new(),
            assignments: Vec::new(),
            principal_scopes: Vec::new(),
            scope_grants: Vec::new(),
            grants: Vec::new(),
            resources: HashMap::new(),
            tokens: HashMap::new(),
        };
        Self {
            catalog,
            account,
            errors: Vec::new(),
            members: Vec::new(),
            group_index: HashMap::new(),
            custom_roles: HashMap::new(),
            custom_groups: Vec::new(),
            custom_group_index: HashMap::new(),
            group_instances: HashMap::new(),
            raw_grants: Vec::new(),
        }
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
        let ok = !identifier.is_empty()
            && !identifier.contains('/')
            && !identifier.chars().any(char::is_whitespace);
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

    fn scopes(&mut self, snapshot: &AccountSnapshot) {
        let account = self.account.account.to_string();
        if !self.wire_identifier_ok(&account, || "snapshot".to_owned()) {
            return;
        }
        for org in &snapshot.organizations {
            let org_entry = || entry("organization", &org.identifier, &account);
            if !self.wire_identifier_ok(&org.identifier, org_entry) {
                continue;
            }
            if self.account.scopes[0]
                .children
                .contains_key(org.identifier.as_str())
            {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: org_entry() });
                continue;
            }
            let org_id = self.push_scope(ScopeId::ACCOUNT, Level::Organization, &org.identifier);
            let org_path = format!("{account}/{}", org.identifier);
            for project in &org.projects {
                let project_entry = || entry("project", project, &org_path);
                if !self.wire_identifier_ok(project, project_entry) {
                    continue;
                }
                if self.account.child_scope(org_id, project).is_some() {
                    self.errors.push(ValidationError::DuplicateIdentifier {
                        entry: project_entry(),
                    });
                    continue;
                }
                self.push_scope(org_id, Level::Project, project);
            }
        }
    }

    fn push_scope(&mut self, parent: ScopeId, level: Level, identifier: &str) -> ScopeId {
        let id = ScopeId(self.account.scopes.len() as u32);
        self.account.scopes.push(ScopeNode {
            level,
            parent: Some(parent),
            identifier: identifier.into(),
            children: HashMap::new(),
        });
        if let Some(node) = self.account.scopes.get_mut(parent.0 as usize) {
            node.children.insert(identifier.into(), id);
        }
        id
    }

    fn users(&mut self, snapshot: &AccountSnapshot) {
        let account = self.account.account.to_string();
        for user in &snapshot.users {
            let user_entry = || entry("user", &user.identifier, &account);
            if !self.wire_identifier_ok(&user.identifier, user_entry) {
                continue;
            }
            if self.account.user_index.contains_key(user.identifier.as_str()) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: user_entry() });
                continue;
            }
            let index = self.account.users.len() as u32;
            self.account
                .user_index
                .insert(user.identifier.as_str().into(), index);
            self.account.users.push(UserNode {
                identifier: user.identifier.as_str().into(),
                disabled: user.disabled,
            });
        }
    }

    fn groups(&mut self, snapshot: &AccountSnapshot) {
        for group in &snapshot.user_groups {
            let group_entry = || {
                entry(
                    "user group",
                    &group.identifier,
                    &self.raw_path(group.scope.as_ref()),
                )
            };
            let described = group_entry();
            if !self.identifier_ok(&group.identifier, || described.clone()) {
                continue;
            }
            let Some(scope) = self.scope_of(group.scope.as_ref(), || described.clone()) else {
                continue;
            };
            let key = (scope, group.identifier.clone());
            if self.group_index.contains_key(&key) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let mut members = Vec::with_capacity(group.users.len());
            for user in &group.users {
                match self.account.user_index.get(user.as_str()) {
                    Some(index) => members.push(*index),
                    None => self.errors.push(ValidationError::UnknownPrincipal {
                        entry: described.clone(),
                        kind: "user",
                        name: user.clone(),
                    }),
                }
            }
            members.sort_unstable();
            members.dedup();
            self.group_index.insert(key, self.account.groups.len() as u32);
            self.account.groups.push(GroupNode {
                identifier: group.identifier.as_str().into(),
                scope,
            });
            self.members.push(members);
        }
    }

    fn service_accounts(&mut self, snapshot: &AccountSnapshot) {
        for sa in &snapshot.service_accounts {
            let described = entry(
                "service account",
                &sa.identifier,
                &self.raw_path(sa.scope.as_ref()),
            );
            if !self.wire_identifier_ok(&sa.identifier, || described.clone()) {
                continue;
            }
            let Some(scope) = self.scope_of(sa.scope.as_ref(), || described.clone()) else {
                continue;
            };
            if self.account.service_account_in(&sa.identifier, scope).is_some() {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let index = self.account.service_accounts.len() as u32;
            self.account
                .service_account_index
                .entry(sa.identifier.as_str().into())
                .or_default()
                .push(index);
            self.account.service_accounts.push(ServiceAccountNode {
                identifier: sa.identifier.as_str().into(),
                scope,
            });
        }
    }

    fn roles(&mut self, snapshot: &AccountSnapshot) {
        for role in self.catalog.managed_roles() {
            self.account.roles.push(RoleNode {
                identifier: role.name.into(),
                scope: None,
                permissions: role.permissions.clone(),
            });
        }
        for role in &snapshot.roles {
            let described = entry("role", &role.identifier, &self.raw_path(role.scope.as_ref()));
            if !self.identifier_ok(&role.identifier, || described.clone()) {
                continue;
            }
            if self.catalog.managed_role(&role.identifier).is_some() {
                self.malformed(described.clone(), "the identifier of a managed role is reserved");
            }
            let Some(scope) = self.scope_of(role.scope.as_ref(), || described.clone()) else {
                continue;
            };
            let key = (scope, role.identifier.clone());
            if self.custom_roles.contains_key(&key) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let level = self.account.scopes[scope.0 as usize].level;
            let permissions = self.permission_set(&role.permissions, &described, Some(level));
            self.custom_roles.insert(key, self.account.roles.len() as u32);
            self.account.roles.push(RoleNode {
                identifier: role.identifier.as_str().into(),
                scope: Some(scope),
                permissions,
            });
        }
    }

    /// Interns a list of permission IDs, recording unknown ones and, with `level`, ones not allowed there.
    fn permission_set(&mut self, ids: &[String], described: &str, level: Option<Level>) -> PermissionSet {
        let mut set = self.catalog.empty_set();
        for id in ids {
            let Some(perm) = self.catalog.permission_id(id) else {
                self.errors.push(ValidationError::UnknownPermission {
                    entry: described.to_owned(),
                    permission: id.clone(),
                });
                continue;
            };
            let allowed = self
                .catalog
                .permission(perm)
                .is_some_and(|p| level.is_none_or(|l| p.levels.contains(l)));
            if let (false, Some(level)) = (allowed, level) {
                self.errors.push(ValidationError::PermissionNotAllowedAtLevel {
                    entry: described.to_owned(),
                    permission: id.clone(),
                    level: level.name(),
                });
                continue;
            }
            set.insert(perm);
        }
        set
    }

    fn resource_groups(&mut self, snapshot: &AccountSnapshot) {
        for group in &snapshot.resource_groups {
            let described = entry(
                "resource group",
                &group.identifier,
                &self.raw_path(group.scope.as_ref()),
            );
            if !self.identifier_ok(&group.identifier, || described.clone()) {
                continue;
            }
            if Catalog::managed_resource_group(&group.identifier).is_some() {
                self.malformed(
                    described.clone(),
                    "the identifier of a managed resource group is reserved",
                );
            }
            let Some(scope) = self.scope_of(group.scope.as_ref(), || described.clone()) else {
                continue;
            };
            let key = (scope, group.identifier.clone());
            if self.custom_group_index.contains_key(&key) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let mut scopes = Vec::new();
            for included in &group.included_scopes {
                let including = match ScopeFilter::try_from(included.filter) {
                    Ok(ScopeFilter::IncludingChildScopes) => true,
                    Ok(ScopeFilter::ExcludingChildScopes) => false,
                    _ => {
                        self.malformed(described.clone(), "an included scope needs `filter`");
                        continue;
                    }
                };
                let base = match &included.scope {
                    None => None,
                    Some(s) => match self.scope_of(Some(s), || described.clone()) {
                        Some(base) if self.account.is_ancestor_or_self(scope, base) => Some(base),
                        Some(base) => {
                            let path = self.path(base);
                            self.malformed(
                                described.clone(),
                                format!("included scope `{path}` is not the group's scope or below it"),
                            );
                            continue;
                        }
                        None => continue,
                    },
                };
                scopes.push((base, including));
            }
            let filter = group.resource_filter.clone().unwrap_or_default();
            let mut selectors = Vec::new();
            for selector in &filter.resources {
                let Some(resource_type) = self.catalog.resource_type_id(&selector.resource_type) else {
                    self.errors.push(ValidationError::UnknownResourceType {
                        entry: described.clone(),
                        resource_type: selector.resource_type.clone(),
                    });
                    continue;
                };
                let kind = match (&selector.attribute_filter, selector.identifiers.is_empty()) {
                    (Some(_), false) => {
                        self.malformed(
                            described.clone(),
                            format!(
                                "resource type `{}` has both identifiers and an attribute filter",
                                selector.resource_type
                            ),
                        );
                        continue;
                    }
                    (Some(attribute), true) => {
                        if attribute.attribute_name.is_empty() {
                            self.malformed(described.clone(), "an attribute filter needs `attribute_name`");
                            continue;
                        }
                        Selector::Attribute {
                            name: attribute.attribute_name.as_str().into(),
                            values: attribute
                                .attribute_values
                                .iter()
                                .map(|v| v.as_str().into())
                                .collect(),
                        }
                    }
                    (None, false) => Selector::Identifiers(
                        selector.identifiers.iter().map(|v| v.as_str().into()).collect(),
                    ),
                    (None, true) => Selector::TypeWide,
                };
                selectors.push((resource_type, kind));
            }
            self.custom_group_index.insert(key, self.custom_groups.len());
            self.custom_groups.push(CustomGroup {
                scope,
                scopes,
                include_all_resources: filter.include_all_resources,
                selectors,
            });
        }
    }

    fn resources(&mut self, snapshot: &AccountSnapshot) {
        for resource in &snapshot.resources {
            let described = entry(
                &format!("resource {}", resource.resource_type),
                &resource.identifier,
                &self.raw_path(resource.scope.as_ref()),
            );
            if !self.identifier_ok(&resource.identifier, || described.clone()) {
                continue;
            }
            let Some(scope) = self.scope_of(resource.scope.as_ref(), || described.clone()) else {
                continue;
            };
            let Some(resource_type) = self.catalog.resource_type_id(&resource.resource_type) else {
                self.errors.push(ValidationError::UnknownResourceType {
                    entry: described,
                    resource_type: resource.resource_type.clone(),
                });
                continue;
            };
            let by_id = self.account.resources.entry((scope, resource_type)).or_default();
            if by_id.contains_key(resource.identifier.as_str()) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let mut attributes: Vec<(Box<str>, Box<str>)> = resource
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect();
            attributes.sort();
            by_id.insert(resource.identifier.as_str().into(), attributes);
        }
    }

    fn assignments(&mut self, snapshot: &AccountSnapshot) {
        let mut seen = HashSet::new();
        for assignment in &snapshot.role_assignments {
            let described = entry(
                "role assignment",
                &assignment.identifier,
                &self.raw_path(assignment.scope.as_ref()),
            );
            if !self.identifier_ok(&assignment.identifier, || described.clone()) {
                continue;
            }
            let Some(scope) = self.scope_of(assignment.scope.as_ref(), || described.clone()) else {
                continue;
            };
            if !seen.insert((scope, assignment.identifier.clone())) {
                self.errors
                    .push(ValidationError::DuplicateIdentifier { entry: described });
                continue;
            }
            let principals = self.assignment_principals(assignment, scope, &described);
            let role = self.assignment_role(&assignment.role, scope, &described);
            let group = self.assignment_group(&assignment.resource_group, scope, &described);
            let (Some((slots, via_group)), Some(role), Some(resource_group)) = (principals, role, group)
            else {
                continue;
            };
            let index = self.account.assignments.len() as u32;
            self.account.assignments.push(AssignmentNode {
                identifier: assignment.identifier.as_str().into(),
                scope,
            });
            if assignment.disabled {
                continue;
            }
            let grant = Grant {
                role,
                resource_group,
                assignment: index,
                via_group,
            };
            for slot in slots {
                self.raw_grants.push((slot, scope, grant));
            }
        }
    }

    /// The ancestor of `scope` at `level`, when `level` is set; `scope` itself otherwise.
    fn scope_at_level(&mut self, scope: ScopeId, level: i32, described: &str) -> Option<ScopeId> {
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
            let node = &self.account.scopes[id.0 as usize];
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

    /// The principal slots an assignment grants to, and the group it grants through.
    fn assignment_principals(
        &mut self,
        assignment: &model::RoleAssignment,
        scope: ScopeId,
        described: &str,
    ) -> Option<(Vec<u32>, u32)> {
        let Some(principal) = &assignment.principal else {
            self.malformed(described.to_owned(), "missing `principal`");
            return None;
        };
        let users = self.account.users.len() as u32;
        match PrincipalType::try_from(principal.r#type) {
            Ok(PrincipalType::User) => {
                if principal.scope_level != 0 {
                    self.malformed(
                        described.to_owned(),
                        "a user is account-wide: `scope_level` does not apply",
                    );
                    return None;
                }
                match self.account.user_index.get(principal.identifier.as_str()) {
                    Some(user) => Some((vec![*user], u32::MAX)),
                    None => {
                        self.errors.push(ValidationError::UnknownPrincipal {
                            entry: described.to_owned(),
                            kind: "user",
                            name: principal.identifier.clone(),
                        });
                        None
                    }
                }
            }
            Ok(PrincipalType::UserGroup) => {
                let home = self.scope_at_level(scope, principal.scope_level, described)?;
                match self.group_index.get(&(home, principal.identifier.clone())) {
                    Some(group) => Some((self.members[*group as usize].clone(), *group)),
                    None => {
                        let name = format!("{}/{}", self.path(home), principal.identifier);
                        self.errors.push(ValidationError::UnknownPrincipal {
                            entry: described.to_owned(),
                            kind: "user group",
                            name,
                        });
                        None
                    }
                }
            }
            Ok(PrincipalType::ServiceAccount) => {
                let home = self.scope_at_level(scope, principal.scope_level, described)?;
                match self.account.service_account_in(&principal.identifier, home) {
                    Some(PrincipalId::ServiceAccount(sa)) => Some((vec![users + sa], u32::MAX)),
                    _ => {
                        let name = format!("{}/{}", self.path(home), principal.identifier);
                        self.errors.push(ValidationError::UnknownPrincipal {
                            entry: described.to_owned(),
                            kind: "service account",
                            name,
                        });
                        None
                    }
                }
            }
            _ => {
                self.malformed(
                    described.to_owned(),
                    "principal needs `type`: USER, USER_GROUP or SERVICE_ACCOUNT",
                );
                None
            }
        }
    }

    fn assignment_role(&mut self, role: &str, scope: ScopeId, described: &str) -> Option<u32> {
        if let Some(index) = self.custom_roles.get(&(scope, role.to_owned())) {
            return Some(*index);
        }
        let level = self.account.scopes[scope.0 as usize].level;
        match self.catalog.managed_roles().iter().position(|r| r.name == role) {
            Some(index) if self.catalog.managed_roles()[index].levels.contains(level) => Some(index as u32),
            Some(_) => {
                self.errors.push(ValidationError::ManagedLevel {
                    entry: described.to_owned(),
                    kind: "role",
                    name: role.to_owned(),
                    level: level.name(),
                });
                None
            }
            None => {
                self.errors.push(ValidationError::UnknownRole {
                    entry: described.to_owned(),
                    role: role.to_owned(),
                });
                None
            }
        }
    }

    fn assignment_group(&mut self, name: &str, scope: ScopeId, described: &str) -> Option<u32> {
        let instance_key = (name.to_owned(), scope);
        if let Some(index) = self.group_instances.get(&instance_key) {
            return Some(*index);
        }
        let node = if let Some(custom) = self.custom_group_index.get(&(scope, name.to_owned())) {
            let custom = &self.custom_groups[*custom];
            ResourceGroupNode {
                identifier: name.into(),
                scopes: custom
                    .scopes
                    .iter()
                    .map(|(base, including)| (base.unwrap_or(custom.scope), *including))
                    .collect(),
                include_all_resources: custom.include_all_resources,
                selectors: custom.selectors.clone().into_boxed_slice(),
            }
        } else {
            let level = self.account.scopes[scope.0 as usize].level;
            match Catalog::managed_resource_group(name) {
                Some(managed) if managed.levels.contains(level) => ResourceGroupNode {
                    identifier: name.into(),
                    scopes: Box::new([(scope, managed.including_child_scopes)]),
                    include_all_resources: true,
                    selectors: Box::new([]),
                },
                Some(_) => {
                    self.errors.push(ValidationError::ManagedLevel {
                        entry: described.to_owned(),
                        kind: "resource group",
                        name: name.to_owned(),
                        level: level.name(),
                    });
                    return None;
                }
                None => {
                    self.errors.push(ValidationError::UnknownResourceGroup {
                        entry: described.to_owned(),
                        group: name.to_owned(),
                    });
                    return None;
                }
            }
        };
        let index = self.account.resource_groups.len() as u32;
        self.account.resource_groups.push(node);
        self.group_instances.insert(instance_key, index);
        Some(index)
    }

    fn api_keys(&mut self, snapshot: &AccountSnapshot) {
        let account = self.account.account.to_string();
        for key in &snapshot.api_keys {
            let described = entry("api key", &key.identifier, &account);
            if !self.identifier_ok(&key.identifier, || described.clone()) {
                continue;
            }
            let Some(principal) = self.api_key_parent(key, &described) else {
                continue;
            };
            for token in &key.tokens {
                let token_entry = format!("token `{}` of api key `{}`", token.identifier, key.identifier);
                self.token(token, principal, &key.identifier, token_entry);
            }
        }
    }

    fn api_key_parent(&mut self, key: &model::ApiKey, described: &str) -> Option<PrincipalId> {
        let Some(parent) = &key.parent else {
            self.malformed(described.to_owned(), "missing `parent`");
            return None;
        };
        match PrincipalType::try_from(parent.r#type) {
            Ok(PrincipalType::User) => {
                let found = self.account.user(&parent.identifier);
                if found.is_none() {
                    self.errors.push(ValidationError::UnknownPrincipal {
                        entry: described.to_owned(),
                        kind: "user",
                        name: parent.identifier.clone(),
                    });
                }
                found
            }
            Ok(PrincipalType::ServiceAccount) => {
                let scope = self.scope_of(parent.scope.as_ref(), || described.to_owned())?;
                let found = self.account.service_account_in(&parent.identifier, scope);
                if found.is_none() {
                    self.errors.push(ValidationError::UnknownPrincipal {
                        entry: described.to_owned(),
                        kind: "service account",
                        name: format!("{}/{}", self.path(scope), parent.identifier),
                    });
                }
                found
            }
            _ => {
                self.malformed(
                    described.to_owned(),
                    "parent `type` must be USER or SERVICE_ACCOUNT",
                );
                None
            }
        }
    }

    fn token(&mut self, token: &model::ApiToken, principal: PrincipalId, api_key: &str, described: String) {
        let before = self.errors.len();
        if token.id.is_empty()
            || !token
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.malformed(
                described.clone(),
                "`id` must be non-empty ASCII letters, digits, `_` or `-`",
            );
        } else if self.account.tokens.contains_key(token.id.as_str()) {
            self.malformed(
                described.clone(),
                format!("token id `{}` is used more than once", token.id),
            );
        }
        let secret_hash = match SecretHash::parse(&token.secret_hash) {
            Ok(hash) => Some(hash),
            Err(message) => {
                self.malformed(described.clone(), message);
                None
            }
        };
        let mut timestamp = |field: &str, value: &str| match OffsetDateTime::parse(value, &Rfc3339) {
            Ok(at) => Some(at.unix_timestamp()),
            Err(_) => {
                self.errors.push(ValidationError::Malformed {
                    entry: described.clone(),
                    message: format!("`{field}` is not an RFC 3339 timestamp: `{value}`"),
                });
                None
            }
        };
        let valid_from = timestamp("valid_from", &token.valid_from);
        let valid_to = timestamp("valid_to", &token.valid_to);
        let rotated = token
            .rotated_expire_at
            .as_deref()
            .map(|at| timestamp("rotated_expire_at", at));
        if let (Some(from), Some(to)) = (valid_from, valid_to)
            && from >= to
        {
            self.malformed(described.clone(), "`valid_from` must be before `valid_to`");
        }
        let permissions = (!token.permissions.is_empty())
            .then(|| self.permission_set(&token.permissions, &described, None));
        if self.errors.len() != before {
            return;
        }
        let (Some(secret_hash), Some(valid_from), Some(valid_to)) = (secret_hash, valid_from, valid_to)
        else {
            return;
        };
        self.account.tokens.insert(
            token.id.as_str().into(),
            TokenNode {
                api_key: api_key.into(),
                identifier: token.identifier.as_str().into(),
                principal,
                secret_hash,
                valid_from,
                valid_to,
                rotated_expire_at: rotated.flatten(),
                permissions,
            },
        );
    }

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
        let account = &mut self.account;
        account.grants = Vec::with_capacity(raw.len());
        account.principal_scopes = vec![(0, 0); slots];
        let mut index = 0;
        while index < raw.len() {
            let slot = raw[index].0;
            let scopes_start = account.scope_grants.len() as u32;
            while index < raw.len() && raw[index].0 == slot {
                let scope = raw[index].1;
                let start = account.grants.len() as u32;
                while index < raw.len() && raw[index].0 == slot && raw[index].1 == scope {
                    account.grants.push(raw[index].2);
                    index += 1;
                }
                account.scope_grants.push(ScopeGrants {
                    scope,
                    start,
                    end: account.grants.len() as u32,
                });
            }
            if let Some(entry) = account.principal_scopes.get_mut(slot as usize) {
                *entry = (scopes_start, account.scope_grants.len() as u32);
            }
        }
        Ok(self.account)
    }
}

impl SecretHash {
    /// Parses `sha256:<64 hex>` or a bcrypt hash; the error says what is wrong without echoing it.
    pub fn parse(text: &str) -> Result<SecretHash, String> {
        if let Some(hex_digest) = text.strip_prefix("sha256:") {
            let mut digest = [0u8; 32];
            return hex::decode_to_slice(hex_digest, &mut digest)
                .map(|()| SecretHash::Sha256(digest))
                .map_err(|_| "`secret_hash` must be `sha256:` followed by 64 hex digits".to_owned());
        }
        let is_bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) && text.len() == 60;
        if is_bcrypt {
            return Ok(SecretHash::Bcrypt(text.into()));
        }
        Err("`secret_hash` must be `sha256:<hex>` or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`)".to_owned())
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
