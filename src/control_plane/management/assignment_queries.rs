//! Questions about role assignments that change nothing (`RoleAssignmentsApi` of Harness's client):
//! `POST /authz/api/roleassignments/filter` (a page of the scope's assignments matching a
//! `RoleAssignmentFilter`), `POST /authz/api/roleassignments/aggregate` (the same matches with the
//! roles and resource groups they use, as Harness answers it: not paged) and `POST
//! /authz/api/roleassignments/validate` (whether an assignment's principal, role and resource group
//! would be accepted, decided by compiling the account with it, as a write would).
//!
//! Each assignment is shown only to a caller holding the `_view` permission of its principal's
//! type ([`super::assignments`]); the aggregate's roles need `core_role_view`, its resource groups
//! `core_resourcegroup_view`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::assignments::{
    Body, PrincipalBody, assignment_json, at_scope, authorize, authz_role_assignment, to_document, visible,
};
use super::cascade::principal_type;
use super::roles::shown_role;
use super::scope::{Target, parse_level};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer, random_id};
use crate::rbac::compile;
use crate::rbac::error::{SnapshotError, ValidationError};
use crate::rbac::model::{AccountSnapshot, PrincipalType, RoleAssignment, ScopeLevel};

/// `AuthzRoleReference`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleReference {
    identifier: String,
    #[serde(default)]
    scope_level: Option<String>,
}

/// `RoleAssignmentFilter`: every list given must match (an absent or empty one matches all).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterBody {
    #[serde(default)]
    resource_group_filter: Option<Vec<String>>,
    #[serde(default)]
    role_filter: Option<Vec<String>>,
    #[serde(default)]
    principal_type_filter: Option<Vec<String>>,
    #[serde(default)]
    principal_filter: Option<Vec<PrincipalBody>>,
    #[serde(default)]
    principal_scope_level_filter: Option<Vec<String>>,
    #[serde(default)]
    harness_managed_filter: Option<Vec<bool>>,
    #[serde(default)]
    disabled_filter: Option<Vec<bool>>,
    #[serde(default)]
    role_reference_filter: Option<Vec<RoleReference>>,
}

/// A filter read and checked: principal types and scope levels as the document's enums.
#[derive(Debug, Default)]
struct Filter {
    resource_groups: Vec<String>,
    roles: Vec<String>,
    types: Vec<i32>,
    principals: Vec<(i32, String, i32)>,
    levels: Vec<i32>,
    managed: Vec<bool>,
    disabled: Vec<bool>,
    references: Vec<(String, i32)>,
}

fn in_field<T>(field: &str, result: Result<T, ApiError>) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::invalid(format!("`{field}`: {}", e.message)))
}

/// The body as `T`, or `T::default()` when the body is empty.
fn body_or_default<T: DeserializeOwned + Default>(call: &Call) -> Result<T, ApiError> {
    if call.body.is_empty() {
        return Ok(T::default());
    }
    call.json()
}

impl Filter {
    fn of(call: &Call) -> Result<Self, ApiError> {
        let body: FilterBody = body_or_default(call)?;
        let level = |field: &str, level: Option<&str>| in_field(field, parse_level(level));
        let mut filter = Self {
            resource_groups: body.resource_group_filter.unwrap_or_default(),
            roles: body.role_filter.unwrap_or_default(),
            managed: body.harness_managed_filter.unwrap_or_default(),
            disabled: body.disabled_filter.unwrap_or_default(),
            ..Self::default()
        };
        for kind in body.principal_type_filter.unwrap_or_default() {
            let parsed = in_field("principalTypeFilter", principal_type(&kind))?;
            filter.types.push(parsed as i32);
        }
        for principal in body.principal_filter.unwrap_or_default() {
            let kind = in_field("principalFilter", principal_type(&principal.kind))?;
            let at = level("principalFilter", principal.scope_level.as_deref())?;
            filter.principals.push((kind as i32, principal.identifier, at));
        }
        for name in body.principal_scope_level_filter.unwrap_or_default() {
            filter
                .levels
                .push(level("principalScopeLevelFilter", Some(&name))?);
        }
        for reference in body.role_reference_filter.unwrap_or_default() {
            let at = level("roleReferenceFilter", reference.scope_level.as_deref())?;
            filter.references.push((reference.identifier, at));
        }
        Ok(filter)
    }

    fn matches(&self, target: &Target, a: &RoleAssignment) -> bool {
        let principal = a.principal.clone().unwrap_or_default();
        let here = level_of_target(target);
        // where the principal lives: a user in the account, a group or service account at its
        // `scope_level`, else at the assignment's own scope
        let home = match (principal.scope_level, PrincipalType::try_from(principal.r#type)) {
            (0, Ok(PrincipalType::User)) => ScopeLevel::Account as i32,
            (0, _) => here,
            (level, _) => level,
        };
        let any = |list: &[String], value: &String| list.is_empty() || list.contains(value);
        any(&self.resource_groups, &a.resource_group)
            && any(&self.roles, &a.role)
            && (self.types.is_empty() || self.types.contains(&principal.r#type))
            && (self.principals.is_empty()
                || self.principals.iter().any(|(kind, id, at)| {
                    *kind == principal.r#type && *id == principal.identifier && (*at == 0 || *at == home)
                }))
            && (self.levels.is_empty() || self.levels.contains(&home))
            // scopegate's assignments are never Harness-managed
            && (self.managed.is_empty() || self.managed.contains(&false))
            && (self.disabled.is_empty() || self.disabled.contains(&a.disabled))
            && (self.references.is_empty()
                || self
                    .references
                    .iter()
                    .any(|(id, at)| *id == a.role && (*at == 0 || *at == here)))
    }
}

fn level_of_target(target: &Target) -> i32 {
    match (&target.org, &target.project) {
        (None, _) => ScopeLevel::Account as i32,
        (Some(_), None) => ScopeLevel::Organization as i32,
        _ => ScopeLevel::Project as i32,
    }
}

/// The scope's assignments the filter matches and the caller may see.
async fn matching(
    m: &Management,
    call: &Call,
) -> Result<
    (
        Target,
        AccountSnapshot,
        Vec<RoleAssignment>,
        super::caller::Caller,
    ),
    ApiError,
> {
    let target = Target::from_query(call)?;
    let (caller, document) = m.caller(call, &target).await?;
    let filter = Filter::of(call)?;
    target.exists_in(&document)?;
    let found = at_scope(&document, &target)
        .filter(|a| filter.matches(&target, a) && visible(&caller, &target, a))
        .cloned()
        .collect();
    Ok((target, document, found, caller))
}

/// `POST /authz/api/roleassignments/filter`: a page of `RoleAssignmentResponse`.
pub async fn filter(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let (target, _, found, _) = matching(&m, &call).await?;
        let items = found.iter().map(|a| assignment_json(&target, a)).collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// `POST /authz/api/roleassignments/aggregate`: `RoleAssignmentAggregateResponse`: the matching
/// assignments, the scope, and the roles and resource groups they use.
pub async fn aggregate(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let (target, document, found, caller) = matching(&m, &call).await?;
        let (mut roles, mut groups): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for a in &found {
            if !roles.contains(&a.role.as_str()) {
                roles.push(&a.role);
            }
            if !groups.contains(&a.resource_group.as_str()) {
                groups.push(&a.resource_group);
            }
        }
        let catalog = caller.compiled.catalog();
        let shown_roles: Vec<Value> = roles
            .into_iter()
            .filter(|id| caller.may("core_role_view", &target, Some(id)))
            .filter_map(|id| shown_role(&document, catalog, &target, id))
            .collect();
        let shown_groups: Vec<Value> = groups
            .into_iter()
            .filter(|id| caller.may("core_resourcegroup_view", &target, Some(id)))
            .map(|id| json!({"identifier": id, "name": id}))
            .collect();
        let assignments: Vec<Value> = found.iter().map(authz_role_assignment).collect();
        Ok(Reply::read(json!({
            "roleAssignments": assignments,
            "scope": target.authz_scope(),
            "roles": shown_roles,
            "resourceGroups": shown_groups,
        })))
    }
    .await;
    answer(&call, result)
}

/// `RoleAssignmentValidationRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidationRequest {
    role_assignment: Body,
    #[serde(default)]
    validate_principal: bool,
    #[serde(default)]
    validate_role: bool,
    #[serde(default)]
    validate_resource_group: bool,
}

/// What a compilation error of the trial assignment is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Principal,
    Role,
    ResourceGroup,
}

fn part_of(error: &ValidationError) -> Part {
    match error {
        ValidationError::UnknownRole { .. } => Part::Role,
        ValidationError::ManagedLevel { kind, .. } if *kind == "role" => Part::Role,
        ValidationError::UnknownResourceGroup { .. } | ValidationError::ManagedLevel { .. } => {
            Part::ResourceGroup
        }
        _ => Part::Principal,
    }
}

/// `AuthzValidationResult`: a part not asked about is valid.
fn result(asked: bool, problems: &[(Part, String)], part: Part) -> Value {
    let found: Vec<&str> = problems
        .iter()
        .filter(|(p, _)| asked && *p == part)
        .map(|(_, message)| message.as_str())
        .collect();
    let valid = found.is_empty();
    let message = (!valid).then(|| found.join("; "));
    json!({"valid": valid, "isValid": valid, "errorMessage": message})
}

/// `POST /authz/api/roleassignments/validate`: `RoleAssignmentValidationResponse`.
pub async fn validate(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result_of = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let request: ValidationRequest = call.json()?;
        let mut trial = to_document(&target, request.role_assignment)?;
        authorize(&caller, &target, &trial, false)?;
        target.exists_in(&document)?;
        // a fresh identifier: only the principal, role and resource group are in question
        trial.identifier = format!("validation_{}", random_id(20));
        let marker = format!("`{}`", trial.identifier);
        let catalog = Arc::clone(&m.catalog);
        let mut candidate = document;
        candidate.role_assignments.push(trial);
        // compiling the account takes a while for a large one: off the async workers
        let compiled = tokio::task::spawn_blocking(move || compile(&candidate, catalog, None).map(|_| ()))
            .await
            .map_err(|_| ApiError::new(500, "UNEXPECTED", "the validation did not finish"))?;
        let problems: Vec<(Part, String)> = match compiled {
            Ok(()) => Vec::new(),
            Err(SnapshotError::Invalid { errors, .. }) => errors
                .iter()
                .map(|e| (e, e.to_string()))
                .filter(|(_, text)| text.contains(&marker))
                .map(|(e, text)| {
                    let message = text.split_once(": ").map_or(text.as_str(), |(_, m)| m);
                    (part_of(e), message.to_owned())
                })
                .collect(),
            Err(other) => return Err(ApiError::invalid(other.to_string())),
        };
        Ok(Reply::read(json!({
            "principalValidationResult": result(request.validate_principal, &problems, Part::Principal),
            "roleValidationResult": result(request.validate_role, &problems, Part::Role),
            "resourceGroupValidationResult":
                result(request.validate_resource_group, &problems, Part::ResourceGroup),
        })))
    }
    .await;
    answer(&call, result_of)
}
