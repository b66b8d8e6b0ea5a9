//! Users at a scope (`/ng/api/user`): Harness's `addUsers` (`POST /users`), `getAggregatedUsers`
//! (`POST /aggregate`), `getAggregatedUser` (`GET /aggregate/{userId}`) and `removeUser`
//! (`DELETE /{userId}`), at the scope the query names.
//!
//! A user is account-wide in the document (`users`: identifier, e-mail). Harness adds one to a
//! scope by sending an invitation by e-mail; scopegate sends no mail, so `addUsers` adds the user
//! directly (a scopegate extension of the contract): an e-mail no user of the account has becomes a
//! new user whose identifier is that e-mail, in lower case. The account holds every user; an org or
//! project holds those a role assignment there (or below) names or a user group living there (or
//! below) has as a member ([`user_belongs`]), so at an org or project a user is added with
//! `roleBindings` or `userGroups`, and removing it there removes those; removing it from the
//! account removes the user, its memberships, its role assignments and its API keys, in one change.
//!
//! `core_user_view` to read, `core_user_invite` to add (and, as when made directly, `core_user_manage`
//! for the role assignments the bindings create and `core_usergroup_manage` on each group joined),
//! `core_user_manage` on the user to remove it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::assignments::{assignment_metadata, at_scope};
use super::cascade::{matches_search, remove_user, user_belongs};
use super::scope::{Target, check_identifier};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer, random_id};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, PrincipalRef, PrincipalType, RoleAssignment, Scope, User};

/// The longest e-mail address accepted (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBinding {
    role_identifier: String,
    resource_group_identifier: String,
}

/// `AddUsersDTO` (`userSettings` is not kept).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddUsers {
    emails: Vec<String>,
    #[serde(default)]
    role_bindings: Option<Vec<RoleBinding>>,
    #[serde(default)]
    user_groups: Option<Vec<String>>,
}

/// `ACLAggregateFilter`: users holding, at the scope, an assignment of one of these roles and one
/// of these resource groups (an absent or empty list matches any).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregateFilter {
    #[serde(default)]
    role_identifiers: Option<Vec<String>>,
    #[serde(default)]
    resource_group_identifiers: Option<Vec<String>>,
}

/// `UserFilter`: by `searchTerm` (identifier or e-mail, case-insensitive), `identifiers`, `emails`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserFilter {
    #[serde(default)]
    search_term: Option<String>,
    #[serde(default)]
    identifiers: Option<Vec<String>>,
    #[serde(default)]
    emails: Option<Vec<String>>,
}

impl UserFilter {
    /// The call's filter: its body, or none when the body is empty.
    pub(super) fn of(call: &Call) -> Result<Self, ApiError> {
        if call.body.is_empty() {
            return Ok(Self::default());
        }
        call.json()
    }

    /// Whether `user` passes the filter.
    pub(super) fn matches(&self, user: &User) -> bool {
        let search = self.search_term.as_deref().filter(|t| !t.is_empty());
        (matches_search(&user.identifier, search) || matches_search(&user.email, search))
            && self
                .identifiers
                .as_ref()
                .is_none_or(|ids| ids.is_empty() || ids.contains(&user.identifier))
            && self.emails.as_ref().is_none_or(|emails| {
                emails.is_empty() || emails.iter().any(|e| e.eq_ignore_ascii_case(&user.email))
            })
    }
}

/// `UserMetadataDTO`: scopegate keeps no name, lock or second factor.
pub(super) fn user_metadata(user: &User) -> Value {
    json!({
        "uuid": user.identifier,
        "name": user.identifier,
        "email": user.email,
        "disabled": user.disabled,
        "locked": false,
        "externallyManaged": false,
        "twoFactorAuthenticationEnabled": false,
    })
}

fn aggregate(target: &Target, user: &User, direct: &[&RoleAssignment]) -> Value {
    let assignments: Vec<Value> = direct.iter().map(|a| assignment_metadata(target, a)).collect();
    json!({"user": user_metadata(user), "roleAssignmentMetadata": assignments})
}

/// The role assignments at the target naming a user directly, by user.
fn direct_assignments<'a>(
    doc: &'a AccountSnapshot,
    target: &'a Target,
) -> HashMap<&'a str, Vec<&'a RoleAssignment>> {
    let mut by_user: HashMap<&str, Vec<&RoleAssignment>> = HashMap::new();
    for assignment in at_scope(doc, target) {
        if let Some(p) = &assignment.principal
            && p.r#type == PrincipalType::User as i32
        {
            by_user.entry(p.identifier.as_str()).or_default().push(assignment);
        }
    }
    by_user
}

/// The users `home` holds ([`user_belongs`] for all of them at once).
fn users_in<'a>(doc: &'a AccountSnapshot, home: &Scope) -> BTreeSet<&'a str> {
    doc.users
        .iter()
        .map(|u| u.identifier.as_str())
        .filter(|u| home.org.is_empty() || user_belongs(doc, u, home))
        .collect()
}

/// An e-mail as a user identifier: lower case, visible ASCII, one `@` with text on both sides.
fn check_email(email: &str) -> Result<String, ApiError> {
    let lower = email.trim().to_ascii_lowercase();
    let valid = lower.len() <= MAX_EMAIL
        && lower.bytes().all(|b| b.is_ascii_graphic())
        && lower
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        return Ok(lower);
    }
    let shown: String = email.chars().take(64).collect();
    Err(ApiError::invalid(format!(
        "`emails`: `{shown}` is not an e-mail address a user can have here: visible ASCII, one `@` with text on both sides, at most {MAX_EMAIL} characters"
    )))
}

fn not_in_scope(target: &Target, user: &str) -> String {
    if target.org.is_none() {
        format!("user `{user}` not found in account `{}`", target.account)
    } else {
        format!("user `{user}` is not in `{}`", target.path())
    }
}

/// `POST /ng/api/user/users`: adds users to the scope at once (no invitation); answers
/// `addUserResponseMap`: per e-mail `USER_ADDED_SUCCESSFULLY`, or `USER_ALREADY_ADDED` when the
/// scope held the user already (its bindings and groups are still applied).
pub async fn add(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        let body: AddUsers = call.json()?;
        let mut emails: Vec<String> = Vec::new();
        for email in &body.emails {
            let email = check_email(email)?;
            if !emails.contains(&email) {
                emails.push(email);
            }
        }
        if emails.is_empty() {
            return Err(ApiError::invalid("`emails` must name at least one user"));
        }
        let bindings = body.role_bindings.unwrap_or_default();
        let groups = body.user_groups.unwrap_or_default();
        for binding in &bindings {
            if binding.role_identifier.is_empty() || binding.resource_group_identifier.is_empty() {
                return Err(ApiError::invalid(
                    "`roleBindings`: each needs `roleIdentifier` and `resourceGroupIdentifier`",
                ));
            }
        }
        for group in &groups {
            check_identifier("user group", group)?;
        }
        if target.org.is_some() && bindings.is_empty() && groups.is_empty() {
            return Err(ApiError::invalid(format!(
                "a user is in `{}` through a role assignment or a user group there: give `roleBindings` or `userGroups`",
                target.path()
            )));
        }
        caller.require("core_user_invite", &target, None)?;
        if !bindings.is_empty() {
            caller.require("core_user_manage", &target, None)?;
        }
        for group in &groups {
            caller.require("core_usergroup_manage", &target, Some(group))?;
        }
        let outcome: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::default();
        let (at, reported, added) = (target.clone(), Arc::clone(&outcome), emails.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            let home = at.scope();
            let (mut created, mut assigned, mut joined) = (0, 0, 0);
            let mut results = Vec::new();
            for email in &added {
                let existing = doc
                    .users
                    .iter()
                    .find(|u| u.identifier == *email || u.email.eq_ignore_ascii_case(email))
                    .map(|u| u.identifier.clone());
                let already = existing
                    .as_deref()
                    .is_some_and(|id| user_belongs(doc, id, &home));
                let identifier = existing.unwrap_or_else(|| {
                    created += 1;
                    doc.users.push(User {
                        identifier: email.clone(),
                        email: email.clone(),
                        disabled: false,
                    });
                    email.clone()
                });
                let principal = Some(PrincipalRef {
                    r#type: PrincipalType::User as i32,
                    identifier: identifier.clone(),
                    scope_level: 0,
                });
                for binding in &bindings {
                    let bound = at_scope(doc, &at).any(|a| {
                        a.principal == principal
                            && a.role == binding.role_identifier
                            && a.resource_group == binding.resource_group_identifier
                    });
                    if !bound {
                        doc.role_assignments.push(RoleAssignment {
                            identifier: format!("role_assignment_{}", random_id(20)),
                            scope: Some(home.clone()),
                            principal: principal.clone(),
                            role: binding.role_identifier.clone(),
                            resource_group: binding.resource_group_identifier.clone(),
                            disabled: false,
                        });
                        assigned += 1;
                    }
                }
                for name in &groups {
                    let group = doc
                        .user_groups
                        .iter_mut()
                        .find(|g| g.identifier == *name && at.holds(g.scope.as_ref()))
                        .ok_or_else(|| {
                            EditError::NotFound(format!("user group `{}/{name}` not found", at.path()))
                        })?;
                    if !group.users.contains(&identifier) {
                        group.users.push(identifier.clone());
                        joined += 1;
                    }
                }
                let answer = if already {
                    "USER_ALREADY_ADDED"
                } else {
                    "USER_ADDED_SUCCESSFULLY"
                };
                results.push((email.clone(), answer));
            }
            if let Ok(mut slot) = reported.lock() {
                *slot = results;
            }
            Ok(ChangeSummary(format!(
                "users added to {}: {} ({created} new, {assigned} role assignments, {joined} group memberships)",
                at.path(),
                added.join(", ")
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        let answers: Map<String, Value> = outcome
            .lock()
            .map(|o| o.iter().map(|(e, a)| (e.clone(), Value::from(*a))).collect())
            .unwrap_or_default();
        Ok(Reply::written(json!({"addUserResponseMap": answers}), revision))
    }
    .await;
    answer(&call, result)
}

/// `POST /ng/api/user/aggregate`: a page of the scope's users the caller may view, with their role
/// assignments there; `searchTerm` (query) matches identifiers and e-mails, the optional body is an
/// `ACLAggregateFilter`.
pub async fn list(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let filter: AggregateFilter = if call.body.is_empty() {
            AggregateFilter::default()
        } else {
            call.json()?
        };
        let search = call.param("searchTerm");
        let roles = filter.role_identifiers.unwrap_or_default();
        let groups = filter.resource_group_identifiers.unwrap_or_default();
        let filtered = !roles.is_empty() || !groups.is_empty();
        let members = users_in(&document, &target.scope());
        let direct = direct_assignments(&document, &target);
        let none = Vec::new();
        let items = document
            .users
            .iter()
            .filter(|u| members.contains(u.identifier.as_str()))
            .filter(|u| matches_search(&u.identifier, search) || matches_search(&u.email, search))
            .map(|u| (u, direct.get(u.identifier.as_str()).unwrap_or(&none)))
            .filter(|(_, held)| {
                !filtered
                    || held.iter().any(|a| {
                        (roles.is_empty() || roles.contains(&a.role))
                            && (groups.is_empty() || groups.contains(&a.resource_group))
                    })
            })
            .filter(|(u, _)| caller.may("core_user_view", &target, Some(&u.identifier)))
            .map(|(u, held)| aggregate(&target, u, held))
            .collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/user/aggregate/{userId}`: one user of the scope, with its role assignments there.
pub async fn get(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        caller.require("core_user_view", &target, Some(&id))?;
        let user = document
            .users
            .iter()
            .find(|u| u.identifier == id)
            .filter(|u| user_belongs(&document, &u.identifier, &target.scope()))
            .ok_or_else(|| ApiError::not_found(not_in_scope(&target, &id)))?;
        let direct = direct_assignments(&document, &target);
        let held = direct.get(id.as_str()).map_or(&[][..], Vec::as_slice);
        Ok(Reply::read(aggregate(&target, user, held)))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /ng/api/user/{userId}`: removes the user from the scope with what names it there (from
/// the account: the user itself, and its API keys); answers `true`.
pub async fn remove(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        caller.require("core_user_manage", &target, Some(&id))?;
        let (user, at) = (id.clone(), target.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            let home = at.scope();
            let known = doc.users.iter().any(|u| u.identifier == user);
            if !known || !user_belongs(doc, &user, &home) {
                return Err(EditError::NotFound(not_in_scope(&at, &user)));
            }
            let removed = remove_user(doc, &user, &home);
            Ok(ChangeSummary(format!(
                "user removed from {}: {user} ({} role assignments, {} group memberships, {} api keys)",
                at.path(),
                removed.assignments,
                removed.memberships,
                removed.api_keys
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(json!(true), revision))
    }
    .await;
    answer(&call, result)
}
