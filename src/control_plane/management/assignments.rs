//! Role assignments (`/authz/api/roleassignments`, `/multi`, `/{identifier}`, `/delete/batch`) of
//! the scope the query names. As in Harness, the permission depends on whom an assignment binds:
//! `core_user_manage` (a user), `core_usergroup_manage` (a user group) or
//! `core_serviceaccount_edit` (a service account) to create or delete it, and the matching
//! `_view` permission to see it. An unknown role, resource group or principal is a 400 from
//! compilation naming it; `/multi` and `/delete/batch` are one change each: all or nothing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Caller;
use super::cascade::{principal_type, principal_type_name};
use super::scope::{Target, check_identifier, level_of, parse_level};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer, random_id};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, PrincipalRef, PrincipalType, RoleAssignment};

/// A principal in a body: `AuthzPrincipal`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PrincipalBody {
    pub(super) identifier: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) scope_level: Option<String>,
}

/// A role assignment in a body: `AuthzRoleAssignment`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Body {
    #[serde(default)]
    pub(super) identifier: Option<String>,
    pub(super) role_identifier: String,
    pub(super) resource_group_identifier: String,
    pub(super) principal: PrincipalBody,
    #[serde(default)]
    pub(super) disabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Multi {
    role_assignments: Vec<Body>,
}

/// The permission that changes (`manage`) or reads assignments of a principal type.
fn permission(kind: i32, manage: bool) -> &'static str {
    match (PrincipalType::try_from(kind), manage) {
        (Ok(PrincipalType::User), true) => "core_user_manage",
        (Ok(PrincipalType::User), false) => "core_user_view",
        (Ok(PrincipalType::UserGroup), true) => "core_usergroup_manage",
        (Ok(PrincipalType::UserGroup), false) => "core_usergroup_view",
        (_, true) => "core_serviceaccount_edit",
        (_, false) => "core_serviceaccount_view",
    }
}

pub(super) fn principal_of(assignment: &RoleAssignment) -> (i32, &str) {
    assignment
        .principal
        .as_ref()
        .map_or((0, ""), |p| (p.r#type, p.identifier.as_str()))
}

pub(super) fn authorize(
    caller: &Caller,
    target: &Target,
    assignment: &RoleAssignment,
    manage: bool,
) -> Result<(), ApiError> {
    let (kind, identifier) = principal_of(assignment);
    caller.require(permission(kind, manage), target, Some(identifier))
}

pub(super) fn visible(caller: &Caller, target: &Target, assignment: &RoleAssignment) -> bool {
    let (kind, identifier) = principal_of(assignment);
    caller.may(permission(kind, false), target, Some(identifier))
}

pub(super) fn assignment_json(target: &Target, a: &RoleAssignment) -> Value {
    json!({
        "roleAssignment": authz_role_assignment(a),
        "scope": target.authz_scope(),
        "harnessManaged": false,
        "createdAt": null,
        "lastModifiedAt": null,
    })
}

/// `AuthzRoleAssignment`: the assignment itself.
pub(super) fn authz_role_assignment(a: &RoleAssignment) -> Value {
    let principal = a.principal.clone().unwrap_or_default();
    json!({
        "identifier": a.identifier,
        "roleIdentifier": a.role,
        "resourceGroupIdentifier": a.resource_group,
        "principal": {
            "identifier": principal.identifier,
            "type": principal_type_name(principal.r#type),
            "scopeLevel": level_of(principal.scope_level),
        },
        "disabled": a.disabled,
        "managed": false,
        "internal": false,
    })
}

/// `RoleAssignmentMetadata`: an assignment as a principal's aggregate lists it.
pub(super) fn assignment_metadata(target: &Target, a: &RoleAssignment) -> Value {
    json!({"identifier": a.identifier, "roleIdentifier": a.role, "roleName": a.role,
           "roleScopeLevel": target.level(),
           "resourceGroupIdentifier": a.resource_group, "resourceGroupName": a.resource_group,
           "managedRole": a.role.starts_with('_'), "managedRoleAssignment": false})
}

pub(super) fn to_document(target: &Target, body: Body) -> Result<RoleAssignment, ApiError> {
    let identifier = body
        .identifier
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| format!("role_assignment_{}", random_id(20)));
    check_identifier("role assignment", &identifier)?;
    let kind = principal_type(&body.principal.kind)?;
    Ok(RoleAssignment {
        identifier,
        scope: Some(target.scope()),
        principal: Some(PrincipalRef {
            r#type: kind as i32,
            identifier: body.principal.identifier,
            scope_level: parse_level(body.principal.scope_level.as_deref())?,
        }),
        role: body.role_identifier,
        resource_group: body.resource_group_identifier,
        disabled: body.disabled,
    })
}

pub(super) fn at_scope<'a>(
    doc: &'a AccountSnapshot,
    target: &'a Target,
) -> impl Iterator<Item = &'a RoleAssignment> {
    doc.role_assignments
        .iter()
        .filter(|a| target.holds(a.scope.as_ref()))
}

/// `POST /authz/api/roleassignments` and `POST /authz/api/roleassignments/multi`.
pub async fn create(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        let multi = call.path.ends_with("/multi");
        let bodies = if multi {
            call.json::<Multi>()?.role_assignments
        } else {
            vec![call.json::<Body>()?]
        };
        let created = bodies
            .into_iter()
            .map(|b| to_document(&target, b))
            .collect::<Result<Vec<_>, _>>()?;
        for assignment in &created {
            authorize(&caller, &target, assignment, true)?;
        }
        let (at, added) = (target.clone(), created.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            let mut names = Vec::new();
            for new in added {
                let same_binding = |a: &RoleAssignment| {
                    a.principal == new.principal
                        && a.role == new.role
                        && a.resource_group == new.resource_group
                };
                if let Some(old) =
                    at_scope(doc, &at).find(|a| a.identifier == new.identifier || same_binding(a))
                {
                    return Err(EditError::Duplicate(format!(
                        "A role assignment `{}` with this identifier or binding already exists in `{}`",
                        old.identifier,
                        at.path()
                    )));
                }
                names.push(new.identifier.clone());
                doc.role_assignments.push(new);
            }
            Ok(ChangeSummary(format!(
                "role assignment created: {}",
                names.join(", ")
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        let shown: Vec<Value> = created.iter().map(|a| assignment_json(&target, a)).collect();
        let data = if multi {
            shown.into()
        } else {
            shown.into_iter().next().unwrap_or_default()
        };
        Ok(Reply::written(data, revision))
    }
    .await;
    answer(&call, result)
}

/// `GET /authz/api/roleassignments`: a page of the scope's assignments the caller may see.
pub async fn list(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let items = at_scope(&document, &target)
            .filter(|a| visible(&caller, &target, a))
            .map(|a| assignment_json(&target, a))
            .collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

fn find<'a>(
    document: &'a AccountSnapshot,
    target: &'a Target,
    id: &str,
) -> Result<&'a RoleAssignment, ApiError> {
    at_scope(document, target)
        .find(|a| a.identifier == id)
        .ok_or_else(|| {
            ApiError::not_found(format!("role assignment `{id}` not found in `{}`", target.path()))
        })
}

/// `GET /authz/api/roleassignments/{identifier}`.
pub async fn get(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let found = find(&document, &target, &id)?;
        authorize(&caller, &target, found, false)?;
        Ok(Reply::read(assignment_json(&target, found)))
    }
    .await;
    answer(&call, result)
}

fn remove(ids: Vec<String>, at: Target) -> crate::control_plane::changes::Edit {
    Box::new(move |doc: &mut AccountSnapshot| {
        for id in &ids {
            if !at_scope(doc, &at).any(|a| &a.identifier == id) {
                return Err(EditError::NotFound(format!(
                    "role assignment `{id}` not found in `{}`",
                    at.path()
                )));
            }
        }
        doc.role_assignments
            .retain(|a| !(at.holds(a.scope.as_ref()) && ids.contains(&a.identifier)));
        Ok(ChangeSummary(format!(
            "role assignment deleted: {}",
            ids.join(", ")
        )))
    })
}

/// `DELETE /authz/api/roleassignments/{identifier}`: answers the deleted assignment.
pub async fn delete(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let found = find(&document, &target, &id)?;
        authorize(&caller, &target, found, true)?;
        let shown = assignment_json(&target, found);
        let revision = m
            .commit(&call, &caller, &target, remove(vec![id], target.clone()))
            .await?;
        Ok(Reply::written(shown, revision))
    }
    .await;
    answer(&call, result)
}

/// `POST /authz/api/roleassignments/delete/batch`: a list of identifiers; those not found or not
/// permitted are reported in `roleAssignmentErrorResponseDTOList`, the others deleted in one change.
pub async fn delete_batch(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let ids: Vec<String> = call.json()?;
        let (mut deleted, mut failed) = (Vec::new(), Vec::new());
        for id in ids {
            let refused = find(&document, &target, &id).and_then(|a| authorize(&caller, &target, a, true));
            match refused {
                Ok(()) if !deleted.contains(&id) => deleted.push(id),
                Ok(()) => {}
                Err(error) => failed.push(json!({"roleAssignmentId": id, "errorMessage": error.message})),
            }
        }
        let data = json!({
            "successfullyDeleted": deleted.len(),
            "failedToDelete": failed.len(),
            "roleAssignmentErrorResponseDTOList": failed,
        });
        if deleted.is_empty() {
            return Ok(Reply::read(data));
        }
        let revision = m
            .commit(&call, &caller, &target, remove(deleted, target.clone()))
            .await?;
        Ok(Reply::written(data, revision))
    }
    .await;
    answer(&call, result)
}
