//! Edits of the account document shared by the handlers: removing everything that lives in a
//! deleted org or project, removing a deleted principal's role assignments, removing a user from a
//! scope with what names it there, principal types and the times Harness's bodies carry (epoch
//! milliseconds) against the document's RFC 3339.

use crate::rbac::model::{AccountSnapshot, PrincipalType, RoleAssignment, Scope};

use super::wire::ApiError;

/// Whether `scope` (absent = the account) is `org`, or `org/project` when a project is given, or
/// inside it.
fn inside(scope: Option<&Scope>, org: &str, project: Option<&str>) -> bool {
    let Some(scope) = scope else {
        return false;
    };
    scope.org == org && project.is_none_or(|p| scope.project == p)
}

/// Whether `scope` is `home` or below it (absent = the account, which holds everything).
pub fn within(scope: Option<&Scope>, home: &Scope) -> bool {
    if home.org.is_empty() {
        return true;
    }
    inside(
        scope,
        &home.org,
        (!home.project.is_empty()).then_some(home.project.as_str()),
    )
}

/// Removes every entity living in `org` (and its projects), or in `org/project`; returns how many.
pub fn remove_scope(document: &mut AccountSnapshot, org: &str, project: Option<&str>) -> usize {
    let before = count(document);
    document
        .user_groups
        .retain(|g| !inside(g.scope.as_ref(), org, project));
    document
        .service_accounts
        .retain(|s| !inside(s.scope.as_ref(), org, project));
    document.roles.retain(|r| !inside(r.scope.as_ref(), org, project));
    document
        .resource_groups
        .retain(|g| !inside(g.scope.as_ref(), org, project));
    document
        .resources
        .retain(|r| !inside(r.scope.as_ref(), org, project));
    document
        .role_assignments
        .retain(|a| !inside(a.scope.as_ref(), org, project));
    document.api_keys.retain(|k| {
        !k.parent
            .as_ref()
            .is_some_and(|p| inside(p.scope.as_ref(), org, project))
    });
    before - count(document)
}

fn count(d: &AccountSnapshot) -> usize {
    d.user_groups.len()
        + d.service_accounts.len()
        + d.roles.len()
        + d.resource_groups.len()
        + d.resources.len()
        + d.role_assignments.len()
        + d.api_keys.len()
}

/// Removes the role assignments of the principal `kind`/`identifier` living at `home`: those at
/// `home` or below it naming it. Returns how many.
pub fn remove_assignments_of(
    document: &mut AccountSnapshot,
    kind: PrincipalType,
    identifier: &str,
    home: &Scope,
) -> usize {
    let before = document.role_assignments.len();
    document.role_assignments.retain(|a| {
        let names = a
            .principal
            .as_ref()
            .is_some_and(|p| p.r#type == kind as i32 && p.identifier == identifier);
        !(names && within(a.scope.as_ref(), home))
    });
    before - document.role_assignments.len()
}

fn names_user(assignment: &RoleAssignment, identifier: &str) -> bool {
    assignment
        .principal
        .as_ref()
        .is_some_and(|p| p.r#type == PrincipalType::User as i32 && p.identifier == identifier)
}

/// Whether the user `identifier` belongs to `home`: the account holds every user of the document;
/// an org or project holds those that a role assignment there (or below) names, or that a user
/// group living there (or below) has as a member.
pub fn user_belongs(document: &AccountSnapshot, identifier: &str, home: &Scope) -> bool {
    if home.org.is_empty() {
        return document.users.iter().any(|u| u.identifier == identifier);
    }
    document
        .role_assignments
        .iter()
        .any(|a| within(a.scope.as_ref(), home) && names_user(a, identifier))
        || document
            .user_groups
            .iter()
            .any(|g| within(g.scope.as_ref(), home) && g.users.iter().any(|u| u == identifier))
}

/// What removing a user from a scope took with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserRemoval {
    /// Role assignments naming the user.
    pub assignments: usize,
    /// User groups the user was a member of.
    pub memberships: usize,
    /// The user's API keys (with their tokens): only when removed from the account.
    pub api_keys: usize,
}

/// Removes the user `identifier` from `home`: its role assignments and group memberships at `home`
/// or below; from the account also the user itself and its API keys, so nothing names it after.
pub fn remove_user(document: &mut AccountSnapshot, identifier: &str, home: &Scope) -> UserRemoval {
    let assignments = remove_assignments_of(document, PrincipalType::User, identifier, home);
    let mut memberships = 0;
    for group in document
        .user_groups
        .iter_mut()
        .filter(|g| within(g.scope.as_ref(), home))
    {
        let before = group.users.len();
        group.users.retain(|u| u != identifier);
        memberships += before - group.users.len();
    }
    let mut api_keys = 0;
    if home.org.is_empty() {
        document.users.retain(|u| u.identifier != identifier);
        let before = document.api_keys.len();
        document.api_keys.retain(|k| {
            !k.parent
                .as_ref()
                .is_some_and(|p| p.r#type == PrincipalType::User as i32 && p.identifier == identifier)
        });
        api_keys = before - document.api_keys.len();
    }
    UserRemoval {
        assignments,
        memberships,
        api_keys,
    }
}

/// A principal type as Harness spells it.
pub fn principal_type(name: &str) -> Result<PrincipalType, ApiError> {
    match name {
        "USER" => Ok(PrincipalType::User),
        "USER_GROUP" => Ok(PrincipalType::UserGroup),
        "SERVICE_ACCOUNT" => Ok(PrincipalType::ServiceAccount),
        _ => Err(ApiError::invalid(
            "principal `type` must be USER, USER_GROUP or SERVICE_ACCOUNT",
        )),
    }
}

/// The name Harness gives a principal type.
pub fn principal_type_name(kind: i32) -> &'static str {
    match PrincipalType::try_from(kind) {
        Ok(PrincipalType::User) => "USER",
        Ok(PrincipalType::UserGroup) => "USER_GROUP",
        Ok(PrincipalType::ServiceAccount) => "SERVICE_ACCOUNT",
        _ => "UNKNOWN",
    }
}

/// The `createdAt` / `lastModifiedAt` of an aggregate whose model requires them (Harness's client
/// refuses `null` there): scopegate keeps no such times, so the epoch.
pub const UNKNOWN_TIME: i64 = 0;

/// Epoch milliseconds as RFC 3339 (UTC); a 400 when out of range.
pub fn millis_to_rfc3339(field: &str, millis: i64) -> Result<String, ApiError> {
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| ApiError::invalid(format!("`{field}` is not a valid time in milliseconds")))
}

/// RFC 3339 as epoch milliseconds (`None` when it does not parse).
pub fn rfc3339_to_millis(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
}

/// Whether `identifier` contains `term` (case-insensitive); no term matches everything.
pub fn matches_search(identifier: &str, term: Option<&str>) -> bool {
    term.is_none_or(|t| identifier.to_ascii_lowercase().contains(&t.to_ascii_lowercase()))
}
