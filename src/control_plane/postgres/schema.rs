//! An account's document as rows of the `entities` table, and back.
//!
//! Every entity of a snapshot is one row keyed `(account, kind, key)`: `key` is a JSON array of the
//! fields that identify the entity within its kind (its scope and identifier; a resource's type; an
//! API key's parent), `body` the entity in the snapshot's file form. Lists that grow without bound
//! inside an entity are child rows of their own, so adding one costs one row: an organization's
//! projects, a user group's members and an API key's tokens (`parent` = the owner's key, the
//! owner's body leaves them out). Reading sorts each kind by key, so a document read back is
//! deterministic whatever order it was written in.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::rbac::delta::{AccountDelta, Entity, EntityChange};
use crate::rbac::model::{
    AccountSnapshot, ApiKey, ApiToken, Organization, Resource, ResourceGroup, Role, RoleAssignment, Scope,
    ServiceAccount, User, UserGroup,
};

/// Where a row lives: its kind and its key within the kind.
pub type RowId = (String, String);

/// One row of the `entities` table (the account aside).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The kind (`role`, `api_token`, ...; the table's check constraint lists them).
    pub kind: &'static str,
    /// The identifying fields, a JSON array.
    pub key: String,
    /// The owning row's key, for child kinds.
    pub parent: Option<String>,
    /// The entity in the file form.
    pub body: Value,
}

/// What a change does to the table: rows to insert or overwrite, rows to delete.
#[derive(Debug, Default)]
pub struct Diff {
    /// Rows new or changed.
    pub upserts: Vec<Row>,
    /// Rows that are gone.
    pub deletes: Vec<RowId>,
    /// `{"kind", "key", "op"}` for each row touched, for the change log.
    pub changed: Vec<Value>,
}

fn key(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

fn scoped(scope: Option<&Scope>, rest: &[&str]) -> String {
    let (org, project) = scope.map_or(("", ""), |s| (s.org.as_str(), s.project.as_str()));
    let mut parts = vec![org, project];
    parts.extend_from_slice(rest);
    key(&parts)
}

fn body<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Collects rows, refusing two entities of one kind with the same key.
struct Rows {
    rows: Vec<Row>,
    seen: BTreeSet<(String, String)>,
    duplicates: Vec<String>,
}

impl Rows {
    fn push(&mut self, kind: &'static str, key: String, parent: Option<String>, body: Value, child: bool) {
        if !self.seen.insert((kind.to_owned(), key.clone())) {
            // a child listed twice (a member, a project) is the same fact twice: kept once
            if !child {
                self.duplicates
                    .push(format!("two {kind} entries with the key {key}"));
            }
            return;
        }
        self.rows.push(Row {
            kind,
            key,
            parent,
            body,
        });
    }
}

/// The rows of `document`, or why it cannot be stored (two entities with one key).
pub fn to_rows(document: &AccountSnapshot) -> Result<Vec<Row>, Vec<String>> {
    let mut rows = Rows {
        rows: Vec::new(),
        seen: BTreeSet::new(),
        duplicates: Vec::new(),
    };
    for org in &document.organizations {
        let org_key = key(&[&org.identifier]);
        for project in &org.projects {
            let row_key = key(&[&org.identifier, project]);
            rows.push(
                "project",
                row_key,
                Some(org_key.clone()),
                Value::from(project.as_str()),
                true,
            );
        }
        let bare = Organization {
            projects: Vec::new(),
            ..org.clone()
        };
        rows.push("organization", org_key, None, body(&bare), false);
    }
    for user in &document.users {
        rows.push("user", key(&[&user.identifier]), None, body(user), false);
    }
    for group in &document.user_groups {
        let group_key = scoped(group.scope.as_ref(), &[&group.identifier]);
        for user in &group.users {
            let member_key = scoped(group.scope.as_ref(), &[&group.identifier, user]);
            rows.push(
                "user_group_member",
                member_key,
                Some(group_key.clone()),
                Value::from(user.as_str()),
                true,
            );
        }
        let bare = UserGroup {
            users: Vec::new(),
            ..group.clone()
        };
        rows.push("user_group", group_key, None, body(&bare), false);
    }
    for account in &document.service_accounts {
        let row_key = scoped(account.scope.as_ref(), &[&account.identifier]);
        rows.push("service_account", row_key, None, body(account), false);
    }
    for role in &document.roles {
        rows.push(
            "role",
            scoped(role.scope.as_ref(), &[&role.identifier]),
            None,
            body(role),
            false,
        );
    }
    for group in &document.resource_groups {
        let row_key = scoped(group.scope.as_ref(), &[&group.identifier]);
        rows.push("resource_group", row_key, None, body(group), false);
    }
    for resource in &document.resources {
        let row_key = scoped(
            resource.scope.as_ref(),
            &[&resource.resource_type, &resource.identifier],
        );
        rows.push("resource", row_key, None, body(resource), false);
    }
    for assignment in &document.role_assignments {
        let row_key = scoped(assignment.scope.as_ref(), &[&assignment.identifier]);
        rows.push("role_assignment", row_key, None, body(assignment), false);
    }
    for api_key in &document.api_keys {
        let parent = api_key.parent.clone().unwrap_or_default();
        let parent_type = parent.r#type.to_string();
        let key_parts = [parent_type.as_str(), &parent.identifier, &api_key.identifier];
        let key_key = scoped(parent.scope.as_ref(), &key_parts);
        for token in &api_key.tokens {
            let mut parts = key_parts.to_vec();
            parts.push(&token.identifier);
            let token_key = scoped(parent.scope.as_ref(), &parts);
            rows.push("api_token", token_key, Some(key_key.clone()), body(token), false);
        }
        let bare = ApiKey {
            tokens: Vec::new(),
            ..api_key.clone()
        };
        rows.push("api_key", key_key, None, body(&bare), false);
    }
    if rows.duplicates.is_empty() {
        Ok(rows.rows)
    } else {
        Err(rows.duplicates)
    }
}

/// A row as read from the table.
#[derive(Debug, Clone)]
pub struct StoredRow {
    /// The owning row's key.
    pub parent: Option<String>,
    /// The body.
    pub body: Value,
}

/// The rows of one account, by kind and key (sorted: the document's order).
pub type StoredRows = BTreeMap<RowId, StoredRow>;

/// Why stored rows do not make a document.
#[derive(Debug, thiserror::Error)]
#[error("account `{account}`: the {kind} row {key} does not read: {message}")]
pub struct RowError {
    account: String,
    kind: String,
    key: String,
    message: String,
}

fn parse<T: DeserializeOwned>(account: &str, id: &RowId, row: &StoredRow) -> Result<T, RowError> {
    serde_json::from_value(row.body.clone()).map_err(|e| RowError {
        account: account.to_owned(),
        kind: id.0.clone(),
        key: id.1.clone(),
        message: e.to_string(),
    })
}

/// Builds the document of `account` at `revision` from its rows.
pub fn from_rows(account: &str, revision: u64, rows: &StoredRows) -> Result<AccountSnapshot, RowError> {
    let mut document = AccountSnapshot {
        account: account.to_owned(),
        version: revision,
        ..AccountSnapshot::default()
    };
    // children first, gathered by their owner's key
    let mut children: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    let mut tokens: BTreeMap<&str, Vec<ApiToken>> = BTreeMap::new();
    for (id, row) in rows {
        let owner = row.parent.as_deref().unwrap_or_default();
        match id.0.as_str() {
            "project" | "user_group_member" => {
                let name: String = parse(account, id, row)?;
                children.entry((id.0.as_str(), owner)).or_default().push(name);
            }
            "api_token" => tokens.entry(owner).or_default().push(parse(account, id, row)?),
            _ => {}
        }
    }
    for (id, row) in rows {
        let own = id.1.as_str();
        match id.0.as_str() {
            "organization" => {
                let mut org: Organization = parse(account, id, row)?;
                org.projects = children.remove(&("project", own)).unwrap_or_default();
                document.organizations.push(org);
            }
            "user" => document.users.push(parse::<User>(account, id, row)?),
            "user_group" => {
                let mut group: UserGroup = parse(account, id, row)?;
                group.users = children.remove(&("user_group_member", own)).unwrap_or_default();
                document.user_groups.push(group);
            }
            "service_account" => document
                .service_accounts
                .push(parse::<ServiceAccount>(account, id, row)?),
            "role" => document.roles.push(parse::<Role>(account, id, row)?),
            "resource_group" => document
                .resource_groups
                .push(parse::<ResourceGroup>(account, id, row)?),
            "resource" => document.resources.push(parse::<Resource>(account, id, row)?),
            "role_assignment" => document
                .role_assignments
                .push(parse::<RoleAssignment>(account, id, row)?),
            "api_key" => {
                let mut api_key: ApiKey = parse(account, id, row)?;
                api_key.tokens = tokens.remove(own).unwrap_or_default();
                document.api_keys.push(api_key);
            }
            _ => {}
        }
    }
    Ok(document)
}

/// `entity` as a read of its rows gives it back: child lists (an organization's projects, a
/// group's members, a key's tokens) in the order rows are read. A delta logged with entities in
/// this form replays to what a whole read of the same revision holds.
pub fn as_read_back(account: &str, entity: Entity) -> Option<Entity> {
    let empty = AccountSnapshot {
        account: account.to_owned(),
        ..AccountSnapshot::default()
    };
    let mut alone = empty.clone();
    let insert = AccountDelta {
        changes: vec![EntityChange::Upsert(entity)],
        ..AccountDelta::default()
    };
    insert.apply_in_place(&mut alone).ok()?;
    let stored: StoredRows = to_rows(&alone)
        .ok()?
        .into_iter()
        .map(|row| {
            let body = StoredRow {
                parent: row.parent,
                body: row.body,
            };
            ((row.kind.to_owned(), row.key), body)
        })
        .collect();
    let read = from_rows(account, 0, &stored).ok()?;
    match AccountDelta::between(&empty, &read).ok()?.changes.pop() {
        Some(EntityChange::Upsert(entity)) => Some(entity),
        _ => None,
    }
}

/// What turns `stored` into `rows`: only the rows that differ are written.
pub fn diff(stored: &StoredRows, rows: Vec<Row>) -> Diff {
    let mut result = Diff::default();
    let mut kept: BTreeSet<RowId> = BTreeSet::new();
    for row in rows {
        let id = (row.kind.to_owned(), row.key.clone());
        let op = match stored.get(&id) {
            Some(old) if old.body == row.body && old.parent == row.parent => None,
            Some(_) => Some("update"),
            None => Some("insert"),
        };
        kept.insert(id);
        if let Some(op) = op {
            result
                .changed
                .push(serde_json::json!({"kind": row.kind, "key": row.key, "op": op}));
            result.upserts.push(row);
        }
    }
    for id in stored.keys() {
        if !kept.contains(id) {
            result
                .changed
                .push(serde_json::json!({"kind": id.0, "key": id.1, "op": "delete"}));
            result.deletes.push(id.clone());
        }
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::accounts::DEMO_SNAPSHOT_YAML;
    use crate::rbac::model::FileFormat;

    fn stored(rows: &[Row]) -> StoredRows {
        rows.iter()
            .map(|r| {
                (
                    (r.kind.to_owned(), r.key.clone()),
                    StoredRow {
                        parent: r.parent.clone(),
                        body: r.body.clone(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_demo_round_trips_and_an_unchanged_document_writes_nothing() {
        let demo = AccountSnapshot::parse(DEMO_SNAPSHOT_YAML, FileFormat::Yaml).unwrap();
        let rows = to_rows(&demo).unwrap();
        let back = from_rows("acme", demo.version, &stored(&rows)).unwrap();
        // same entities, in key order
        assert_eq!(back.role_assignments.len(), demo.role_assignments.len());
        assert_eq!(back.api_keys.iter().map(|k| k.tokens.len()).sum::<usize>(), 5);
        assert_eq!(to_rows(&back).unwrap().len(), rows.len());
        let again = diff(&stored(&rows), to_rows(&back).unwrap());
        assert!(again.upserts.is_empty() && again.deletes.is_empty(), "{again:?}");

        let mut edited = back.clone();
        edited.users.retain(|u| u.identifier != "dave");
        edited.user_groups[0].users.push("zed".into());
        let changes = diff(&stored(&rows), to_rows(&edited).unwrap());
        assert_eq!(
            changes.deletes,
            vec![("user".to_owned(), "[\"dave\"]".to_owned())]
        );
        assert_eq!(changes.upserts.len(), 1);
        assert_eq!(changes.upserts[0].kind, "user_group_member");
    }

    #[test]
    fn two_entities_with_one_key_are_refused() {
        let mut demo = AccountSnapshot::parse(DEMO_SNAPSHOT_YAML, FileFormat::Yaml).unwrap();
        demo.users.push(demo.users[0].clone());
        let errors = to_rows(&demo).unwrap_err();
        assert_eq!(
            errors,
            vec!["two user entries with the key [\"alice\"]".to_owned()]
        );
    }
}
