//! The edits behind `scopegate admin`: importing a snapshot file as one change, and bootstrapping
//! an account's first administrator. Each is an [`Edit`] of [`crate::control_plane::changes`], so
//! it runs through any [`AccountStore`] (PostgreSQL, memory) under the account's lock and is
//! compiled before it is committed.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::authn::{MintedToken, TokenError, TokenKind, mint};
use crate::control_plane::changes::{AccountStore, ChangeError, ChangeSummary, Committed, Edit};
use crate::rbac::SnapshotError;
use crate::rbac::model::{
    AccountSnapshot, ApiKey, ApiKeyParent, ApiToken, PrincipalRef, PrincipalType, RoleAssignment, Scope, User,
};

/// The managed role an account's bootstrap administrator is given (`rbac::catalog`).
pub const ACCOUNT_ADMIN_ROLE: &str = "_account_admin";
/// The managed resource group of that assignment: every account-level resource.
pub const ACCOUNT_LEVEL_RESOURCES: &str = "_all_account_level_resources";

/// Why an import or a bootstrap did not commit.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The file does not read or parse.
    #[error("{0}")]
    Read(#[from] SnapshotError),
    /// The store refused the change.
    #[error("`{file}`: {source}")]
    Refused {
        /// The file.
        file: String,
        /// Why.
        source: ChangeError,
    },
    /// The change was refused.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// The token cannot be minted for that account name.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// An edit replacing the whole document by `snapshot` (its `account` and `version` are the
/// store's: the revision moves on by one).
pub fn replace_with(snapshot: AccountSnapshot, summary: String) -> Edit {
    Box::new(move |document| {
        *document = snapshot;
        Ok(ChangeSummary(summary))
    })
}

/// Imports one snapshot file as one change of the account it names (created when missing). A file
/// that does not parse or compile is refused, naming it, and nothing of it is written.
pub async fn import_file(
    store: &dyn AccountStore,
    file: &Path,
    actor: &str,
) -> Result<Committed, AdminError> {
    let path = file.to_path_buf();
    let snapshot = tokio::task::spawn_blocking(move || AccountSnapshot::read(&path))
        .await
        .map_err(|e| ChangeError::Storage(e.to_string()))??;
    let account = snapshot.account.clone();
    let summary = format!("imported from {}", file.display());
    store
        .change(&account, actor, true, replace_with(snapshot, summary))
        .await
        .map_err(|source| AdminError::Refused {
            file: file.display().to_string(),
            source,
        })
}

/// The snapshot files of `path` (itself, or the `.yaml`/`.yml`/`.json` files of a folder), sorted.
pub fn snapshot_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(crate::accounts::scan::list_files(path)?
        .into_iter()
        .map(|(file, _)| file)
        .collect())
}

/// What a bootstrap did.
#[derive(Clone)]
pub struct Bootstrapped {
    /// The commit.
    pub committed: Committed,
    /// The new token (shown once; only its hash is stored).
    pub token: MintedToken,
}

/// The id of the bootstrap assignment and API key of `user`.
fn bootstrap_id(user: &str) -> String {
    format!("bootstrap_{user}")
}

/// Creates `account` and `user` if missing, gives the user `_account_admin` on
/// `_all_account_level_resources` at the account scope unless an enabled assignment of that already
/// exists, and adds a new personal token valid `days` days to the user's bootstrap API key. Running
/// it again adds a token and nothing else.
pub async fn bootstrap(
    store: &dyn AccountStore,
    account: &str,
    user: &str,
    days: u32,
    actor: &str,
) -> Result<Bootstrapped, AdminError> {
    let token = mint(account, TokenKind::Pat, None)?;
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let until = now + time::Duration::days(i64::from(days.max(1)));
    let format = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    let api_token = ApiToken {
        identifier: format!("bootstrap_{}", token.id),
        id: token.id.clone(),
        secret_hash: token.secret_hash.clone(),
        valid_from: format(now),
        valid_to: format(until),
        ..ApiToken::default()
    };
    let user = user.to_owned();
    let edit: Edit = Box::new(move |document| Ok(add_admin(document, &user, api_token)));
    let committed = store.change(account, actor, true, edit).await?;
    Ok(Bootstrapped { committed, token })
}

fn is_account_scope(scope: Option<&Scope>) -> bool {
    scope.is_none_or(|s| s.org.is_empty() && s.project.is_empty())
}

/// The bootstrap edit: the user, the assignment and the token (see [`bootstrap`]).
fn add_admin(document: &mut AccountSnapshot, user: &str, token: ApiToken) -> ChangeSummary {
    let mut did = Vec::new();
    if !document.users.iter().any(|u| u.identifier == user) {
        document.users.push(User {
            identifier: user.to_owned(),
            ..User::default()
        });
        did.push(format!("user created: {user}"));
    }
    let is_admin = document.role_assignments.iter().any(|ra| {
        !ra.disabled
            && is_account_scope(ra.scope.as_ref())
            && ra.role == ACCOUNT_ADMIN_ROLE
            && ra.resource_group == ACCOUNT_LEVEL_RESOURCES
            && ra
                .principal
                .as_ref()
                .is_some_and(|p| p.r#type == PrincipalType::User as i32 && p.identifier == user)
    });
    let id = bootstrap_id(user);
    if !is_admin {
        // an older, different assignment with the bootstrap id is replaced
        document
            .role_assignments
            .retain(|ra| !(ra.identifier == id && is_account_scope(ra.scope.as_ref())));
        document.role_assignments.push(RoleAssignment {
            identifier: id.clone(),
            scope: Some(Scope::account()),
            principal: Some(PrincipalRef {
                r#type: PrincipalType::User as i32,
                identifier: user.to_owned(),
                ..PrincipalRef::default()
            }),
            role: ACCOUNT_ADMIN_ROLE.to_owned(),
            resource_group: ACCOUNT_LEVEL_RESOURCES.to_owned(),
            disabled: false,
        });
        did.push(format!("role_assignment created: {id}"));
    }
    let owned_by_user = |key: &ApiKey| {
        key.identifier == id
            && key
                .parent
                .as_ref()
                .is_some_and(|p| p.r#type == PrincipalType::User as i32 && p.identifier == user)
    };
    did.push(format!("token created: {}", token.identifier));
    match document.api_keys.iter_mut().find(|key| owned_by_user(key)) {
        Some(key) => key.tokens.push(token),
        None => document.api_keys.push(ApiKey {
            identifier: id,
            parent: Some(ApiKeyParent {
                r#type: PrincipalType::User as i32,
                identifier: user.to_owned(),
                scope: None,
            }),
            tokens: vec![token],
        }),
    }
    ChangeSummary(format!("bootstrap: {}", did.join(", ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::control_plane::changes::MemoryStore;
    use crate::rbac::Catalog;

    #[tokio::test]
    async fn bootstrap_twice_keeps_one_admin_assignment_and_adds_a_token() {
        let store = MemoryStore::new(Arc::new(Catalog::embedded().unwrap()));
        let first = bootstrap(&store, "acme", "root", 30, "test").await.unwrap();
        assert_eq!((first.committed.before, first.committed.after), (0, 1));
        assert!(first.token.token.starts_with("pat.acme."));
        let second = bootstrap(&store, "acme", "root", 30, "test").await.unwrap();
        assert_eq!(second.committed.after, 2);
        let document = store.read("acme").await.unwrap().unwrap();
        assert_eq!(document.users.len(), 1);
        assert_eq!(document.role_assignments.len(), 1);
        assert_eq!(document.api_keys.len(), 1);
        assert_eq!(document.api_keys[0].tokens.len(), 2);
        assert!(!format!("{document:?}").contains(&first.token.token));
    }
}
