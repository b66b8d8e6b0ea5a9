//! How the control plane changes an account: the [`AccountStore`] contract the management API
//! writes through and the PostgreSQL store implements (an in-memory implementation, [`MemoryStore`],
//! serves tests and the folder-less demo).
//!
//! A change is one edit of the account's whole document, applied under the account's lock: the
//! store reads the current document, runs the edit, compiles the result against the catalog (the
//! same `compile` the sidecar runs) and commits it with the revision bumped by one, or commits
//! nothing. The revision is dense per account: every commit is exactly one more than the last.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::rbac::model::AccountSnapshot;
use crate::rbac::{Catalog, compile};

/// A boxed future of the store, so `Arc<dyn AccountStore>` works.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An edit of an account's document. It returns what it changed, for the audit record, or why the
/// change is refused (nothing is written then).
pub type Edit = Box<dyn FnOnce(&mut AccountSnapshot) -> Result<ChangeSummary, EditError> + Send>;

/// What an edit did, in a line the audit record carries (`"role_assignment created: ra1"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSummary(pub String);

/// Why an edit refused the change: a precise message for a Harness-shaped 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The entity the change names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The entity to create exists already (Harness answers 400 `DUPLICATE_FIELD`).
    #[error("{0}")]
    Duplicate(String),
    /// The request is malformed or names something invalid (400).
    #[error("{0}")]
    Invalid(String),
}

/// Why a change was not committed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The account does not exist and the change may not create it.
    #[error("account `{0}` does not exist")]
    NoAccount(String),
    /// The edit refused it.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The edited document does not compile: every error, one per line.
    #[error("the change would make the account invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The storage failed; the change was not committed.
    #[error("storage: {0}")]
    Storage(String),
}

/// A committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The account's revision before the change (0: the change created the account).
    pub before: u64,
    /// The revision the change produced (`before + 1`).
    pub after: u64,
    /// What the edit said it did.
    pub summary: ChangeSummary,
}

/// Where accounts live and how they change.
pub trait AccountStore: Send + Sync + 'static {
    /// The account's current document (its `version` is its revision), or `None`.
    fn read<'a>(&'a self, account: &'a str) -> StoreFuture<'a, Result<Option<AccountSnapshot>, ChangeError>>;

    /// Applies `edit` to the account's document under the account's lock, compiles the result and
    /// commits it as revision + 1, or commits nothing. `create` lets the change start from an empty
    /// account when there is none. `actor` names who changed it (for the change log).
    fn change<'a>(
        &'a self,
        account: &'a str,
        actor: &'a str,
        create: bool,
        edit: Edit,
    ) -> StoreFuture<'a, Result<Committed, ChangeError>>;
}

/// Runs `edit` on a copy of `current` (or an empty account) and compiles the result: the part of a
/// change every store shares. Returns the new document, with `version` = the new revision.
pub fn apply_edit(
    account: &str,
    current: Option<AccountSnapshot>,
    create: bool,
    edit: Edit,
    catalog: &Arc<Catalog>,
) -> Result<(AccountSnapshot, u64, ChangeSummary), ChangeError> {
    let (mut document, before) = match current {
        Some(document) => {
            let before = document.version;
            (document, before)
        }
        None if create => (
            AccountSnapshot {
                account: account.to_owned(),
                ..AccountSnapshot::default()
            },
            0,
        ),
        None => return Err(ChangeError::NoAccount(account.to_owned())),
    };
    let summary = edit(&mut document)?;
    document.account = account.to_owned();
    document.version = before + 1;
    if let Err(error) = compile(&document, Arc::clone(catalog), None) {
        return Err(ChangeError::Invalid(
            error.to_string().lines().map(str::to_owned).collect(),
        ));
    }
    Ok((document, before, summary))
}

/// Accounts in memory, for tests and single-process use: the same contract as the database.
#[derive(Debug)]
pub struct MemoryStore {
    catalog: Arc<Catalog>,
    accounts: Mutex<HashMap<String, AccountSnapshot>>,
}

impl MemoryStore {
    /// An empty store validating against `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn change_now(&self, account: &str, create: bool, edit: Edit) -> Result<Committed, ChangeError> {
        let mut accounts = self
            .accounts
            .lock()
            .map_err(|_| ChangeError::Storage("the store's lock is poisoned".to_owned()))?;
        let current = accounts.get(account).cloned();
        let (document, before, summary) = apply_edit(account, current, create, edit, &self.catalog)?;
        let after = document.version;
        accounts.insert(account.to_owned(), document);
        Ok(Committed {
            before,
            after,
            summary,
        })
    }
}

impl MemoryStore {
    /// Takes `snapshot` as its account's document unless the store holds that revision or a newer
    /// one (folder mode: the management API takes up a file the folder scanner published). Returns
    /// whether it was taken.
    pub fn seed(&self, snapshot: AccountSnapshot) -> bool {
        let Ok(mut accounts) = self.accounts.lock() else {
            return false;
        };
        if accounts
            .get(&snapshot.account)
            .is_some_and(|current| current.version >= snapshot.version)
        {
            return false;
        }
        accounts.insert(snapshot.account.clone(), snapshot);
        true
    }
}

impl AccountStore for MemoryStore {
    fn read<'a>(&'a self, account: &'a str) -> StoreFuture<'a, Result<Option<AccountSnapshot>, ChangeError>> {
        let result = self
            .accounts
            .lock()
            .map(|accounts| accounts.get(account).cloned())
            .map_err(|_| ChangeError::Storage("the store's lock is poisoned".to_owned()));
        Box::pin(std::future::ready(result))
    }

    fn change<'a>(
        &'a self,
        account: &'a str,
        _actor: &'a str,
        create: bool,
        edit: Edit,
    ) -> StoreFuture<'a, Result<Committed, ChangeError>> {
        Box::pin(std::future::ready(self.change_now(account, create, edit)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::rbac::model::Role;

    fn store() -> MemoryStore {
        MemoryStore::new(Arc::new(Catalog::embedded().unwrap()))
    }

    #[tokio::test]
    async fn a_change_bumps_the_revision_by_one_and_an_invalid_one_writes_nothing() {
        let store = store();
        let created = store
            .change(
                "acme",
                "test",
                true,
                Box::new(|_| Ok(ChangeSummary("created".into()))),
            )
            .await
            .unwrap();
        assert_eq!((created.before, created.after), (0, 1));
        let refused = store
            .change(
                "acme",
                "test",
                false,
                Box::new(|doc| {
                    doc.roles.push(Role {
                        identifier: "r".into(),
                        permissions: vec!["no_such_permission".into()],
                        ..Role::default()
                    });
                    Ok(ChangeSummary("role".into()))
                }),
            )
            .await;
        assert!(matches!(refused, Err(ChangeError::Invalid(_))), "{refused:?}");
        let now = store.read("acme").await.unwrap().unwrap();
        assert_eq!(now.version, 1);
        assert!(now.roles.is_empty());
        let missing = store
            .change(
                "other",
                "test",
                false,
                Box::new(|_| Ok(ChangeSummary(String::new()))),
            )
            .await;
        assert!(matches!(missing, Err(ChangeError::NoAccount(_))));
    }
}
