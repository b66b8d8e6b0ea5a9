//! User groups and their members (`/ng/api/user-groups`, and the page of members
//! `/{identifier}/users`), in the scope the query names: `core_usergroup_view` to read,
//! `core_usergroup_manage` to change. A member is a user of the
//! account (an unknown one is a 400 from compilation). Deleting a group deletes its role
//! assignments in the same change.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;

use super::cascade::{matches_search, remove_assignments_of};
use super::principals::{Body, user_group};
use super::scope::{Target, check_identifier};
use super::users::{UserFilter, user_metadata};
use super::wire::{ApiError, Call, Reply, page};
use super::{Management, answer};
use crate::control_plane::changes::{ChangeSummary, EditError};
use crate::rbac::model::{AccountSnapshot, PrincipalType, UserGroup};

fn find<'a>(doc: &'a mut AccountSnapshot, at: &Target, id: &str) -> Result<&'a mut UserGroup, EditError> {
    doc.user_groups
        .iter_mut()
        .find(|g| g.identifier == id && at.holds(g.scope.as_ref()))
        .ok_or_else(|| EditError::NotFound(format!("user group `{}/{id}` not found", at.path())))
}

/// `POST /ng/api/user-groups` (create) and `PUT /ng/api/user-groups` (replace the members).
pub async fn upsert(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, _) = m.caller(&call, &target).await?;
        let body: Body = call.json()?;
        check_identifier("user group", &body.identifier)?;
        let create = call.method == "POST";
        caller.require(
            "core_usergroup_manage",
            &target,
            (!create).then_some(body.identifier.as_str()),
        )?;
        let (id, at) = (body.identifier.clone(), target.clone());
        let users = body.users.clone().unwrap_or_default();
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            at.exists_in(doc).map_err(|e| EditError::NotFound(e.message))?;
            if create {
                if find(doc, &at, &id).is_ok() {
                    return Err(EditError::Duplicate(format!(
                        "A user group with identifier `{id}` already exists in `{}`",
                        at.path()
                    )));
                }
                doc.user_groups.push(UserGroup {
                    identifier: id.clone(),
                    scope: Some(at.scope()),
                    users,
                });
                return Ok(ChangeSummary(format!("user group created: {}/{id}", at.path())));
            }
            find(doc, &at, &id)?.users = users;
            Ok(ChangeSummary(format!("user group updated: {}/{id}", at.path())))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        let group = UserGroup {
            identifier: body.identifier.clone(),
            scope: Some(target.scope()),
            users: body.users.clone().unwrap_or_default(),
        };
        Ok(Reply::written(user_group(&target, &group, Some(&body)), revision))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/user-groups`: a page of the groups the caller may view.
pub async fn list(State(m): State<Arc<Management>>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, document) = m.caller(&call, &target).await?;
        let search = call.param("searchTerm");
        let items = document
            .user_groups
            .iter()
            .filter(|g| target.holds(g.scope.as_ref()) && matches_search(&g.identifier, search))
            .filter(|g| caller.may("core_usergroup_view", &target, Some(&g.identifier)))
            .map(|g| user_group(&target, g, None))
            .collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}

/// `GET /ng/api/user-groups/{identifier}`.
pub async fn get(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, mut document) = m.caller(&call, &target).await?;
        caller.require("core_usergroup_view", &target, Some(&id))?;
        let group = find(&mut document, &target, &id).map_err(|e| ApiError::not_found(e.to_string()))?;
        Ok(Reply::read(user_group(&target, group, None)))
    }
    .await;
    answer(&call, result)
}

/// `DELETE /ng/api/user-groups/{identifier}`: with its role assignments; answers the group.
pub async fn delete(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, mut document) = m.caller(&call, &target).await?;
        caller.require("core_usergroup_manage", &target, Some(&id))?;
        let shown = find(&mut document, &target, &id)
            .map(|g| user_group(&target, g, None))
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        let (group, at) = (id.clone(), target.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            find(doc, &at, &group)?;
            doc.user_groups
                .retain(|g| !(g.identifier == group && at.holds(g.scope.as_ref())));
            let removed = remove_assignments_of(doc, PrincipalType::UserGroup, &group, &at.scope());
            Ok(ChangeSummary(format!(
                "user group deleted: {}/{group} ({removed} role assignments)",
                at.path()
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        Ok(Reply::written(shown, revision))
    }
    .await;
    answer(&call, result)
}

/// `GET`, `PUT` and `DELETE /ng/api/user-groups/{identifier}/member/{userIdentifier}`: whether the
/// user is a member, add it, remove it.
pub async fn member(
    State(m): State<Arc<Management>>,
    Path((id, user)): Path<(String, String)>,
    call: Call,
) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, mut document) = m.caller(&call, &target).await?;
        if call.method == "GET" {
            caller.require("core_usergroup_view", &target, Some(&id))?;
            let group = find(&mut document, &target, &id).map_err(|e| ApiError::not_found(e.to_string()))?;
            return Ok(Reply::read(json!(group.users.contains(&user))));
        }
        caller.require("core_usergroup_manage", &target, Some(&id))?;
        let add = call.method == "PUT";
        let (group, at, member) = (id.clone(), target.clone(), user.clone());
        let edit = Box::new(move |doc: &mut AccountSnapshot| {
            let found = find(doc, &at, &group)?;
            let present = found.users.contains(&member);
            match (add, present) {
                (true, true) => {
                    return Err(EditError::Duplicate(format!(
                        "user `{member}` is a member already"
                    )));
                }
                (true, false) => found.users.push(member.clone()),
                (false, false) => {
                    return Err(EditError::NotFound(format!("user `{member}` is not a member")));
                }
                (false, true) => found.users.retain(|u| *u != member),
            }
            let verb = if add { "added to" } else { "removed from" };
            Ok(ChangeSummary(format!(
                "user {member} {verb} user group {}/{group}",
                at.path()
            )))
        });
        let revision = m.commit(&call, &caller, &target, edit).await?;
        let (_, document) = m.caller(&call, &target).await?;
        let mut document = document;
        let group = find(&mut document, &target, &id).map_err(|e| ApiError::not_found(e.to_string()))?;
        Ok(Reply::written(user_group(&target, group, None), revision))
    }
    .await;
    answer(&call, result)
}

/// `POST /ng/api/user-groups/{identifier}/users`: a page of the group's members (`UserMetadataDTO`),
/// filtered by the optional `UserFilter` body.
pub async fn users(State(m): State<Arc<Management>>, Path(id): Path<String>, call: Call) -> Response {
    let result = async {
        let target = Target::from_query(&call)?;
        let (caller, mut document) = m.caller(&call, &target).await?;
        caller.require("core_usergroup_view", &target, Some(&id))?;
        let filter = UserFilter::of(&call)?;
        let members = find(&mut document, &target, &id)
            .map_err(|e| ApiError::not_found(e.to_string()))?
            .users
            .clone();
        let items = members
            .iter()
            .filter_map(|member| document.users.iter().find(|u| u.identifier == *member))
            .filter(|u| filter.matches(u))
            .map(user_metadata)
            .collect();
        Ok(Reply::read(page(items, &call)?))
    }
    .await;
    answer(&call, result)
}
