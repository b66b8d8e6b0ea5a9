//! Harness's management API on the control plane's HTTP listener (`docs/management-api.md`):
//! organizations, projects, users, service accounts, API keys and tokens, roles, role assignments,
//! user groups and resource groups, at the paths, with the query parameters, bodies and answers that
//! Harness's official clients send and read, so operators manage scopegate's access control with
//! the same tools as Harness's.
//!
//! Every write is one [`AccountStore::change`] of the account's whole document: the edit checks
//! what it names (a duplicate identifier is a 400 `DUPLICATE_FIELD`, a missing entity a 404
//! `RESOURCE_NOT_FOUND`), the store compiles the result (a change that makes the account invalid
//! is a 400 listing every error) and commits it as one new revision, or nothing. The answer carries
//! `x-scopegate-revision`. The new document then reaches the sidecars' Watch streams through
//! [`Store::publish`] (in folder mode, here; with a database, its follower does it), and the change
//! is written to the change log ([`audit`]).
//!
//! Callers authenticate with an API token of the account ([`caller`]) and need Harness's
//! permission at the target scope, decided by scopegate's own engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;

use self::audit::{ChangeLog, ChangeRecord};
use self::caller::{Caller, authenticate};
use self::scope::Target;
use self::wire::{ApiError, BODY_LIMIT, Call, Reply};
use super::Store;
use super::changes::{AccountStore, ChangeError, Edit, EditError, MemoryStore};
use crate::rbac::model::AccountSnapshot;
use crate::rbac::{Catalog, CompiledAccount, compile};

mod api_keys;
mod assignment_queries;
mod assignments;
pub mod audit;
pub mod caller;
mod cascade;
mod org_project;
mod principals;
mod resource_groups;
mod roles;
mod routes;
pub mod scope;
mod serve;
mod status;
mod tokens;
mod user_groups;
mod users;
pub mod wire;

pub use serve::serve_on;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

/// How committed documents reach the Watch streams.
#[derive(Debug, Clone)]
pub enum Publishing {
    /// The management API publishes each committed document itself, and, before each call,
    /// takes into `mirror` any newer version the folder scanner published (folder mode: the
    /// in-memory store is seeded from the folder, and its writes are lost on restart).
    Here {
        /// The in-memory store the management API writes to.
        mirror: Arc<MemoryStore>,
    },
    /// Something else follows the store and publishes (the database follower).
    Elsewhere,
}

/// The management API's state.
#[derive(Debug)]
pub struct Management {
    accounts: Arc<dyn AccountStore>,
    catalog: Arc<Catalog>,
    served: Arc<Store>,
    publishing: Publishing,
    compiled: Mutex<HashMap<String, Arc<CompiledAccount>>>,
    changes: ChangeLog,
}

impl std::fmt::Debug for dyn AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountStore")
    }
}

impl Management {
    /// The management API over `accounts`, validating against `catalog`, publishing to `served`
    /// as `publishing` says, writing change records to `changes`.
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        catalog: Arc<Catalog>,
        served: Arc<Store>,
        publishing: Publishing,
        changes: ChangeLog,
    ) -> Self {
        Self {
            accounts,
            catalog,
            served,
            publishing,
            compiled: Mutex::new(HashMap::new()),
            changes,
        }
    }

    /// Folder mode: an in-memory store mirroring what `served` serves, published here.
    pub fn over_folder(catalog: Arc<Catalog>, served: Arc<Store>, changes: ChangeLog) -> Self {
        let mirror = Arc::new(MemoryStore::new(Arc::clone(&catalog)));
        let accounts: Arc<dyn AccountStore> = mirror.clone();
        Self::new(accounts, catalog, served, Publishing::Here { mirror }, changes)
    }

    /// The account's current document.
    pub async fn document(&self, account: &str) -> Result<Option<AccountSnapshot>, ApiError> {
        if let Publishing::Here { mirror } = &self.publishing
            && let Some(published) = self.served.current(account)
        {
            mirror.seed((*published).clone());
        }
        self.accounts.read(account).await.map_err(store_error)
    }

    fn compiled(&self, document: &AccountSnapshot) -> Option<Arc<CompiledAccount>> {
        let mut cache = self.compiled.lock().ok()?;
        if let Some(found) = cache.get(&document.account)
            && found.version() == document.version
        {
            return Some(Arc::clone(found));
        }
        let compiled = Arc::new(compile(document, Arc::clone(&self.catalog), None).ok()?);
        cache.insert(document.account.clone(), Arc::clone(&compiled));
        Some(compiled)
    }

    /// Authenticates the call in `target`'s account; returns the caller and the current document.
    pub async fn caller(&self, call: &Call, target: &Target) -> Result<(Caller, AccountSnapshot), ApiError> {
        let document = self.document(&target.account).await?;
        let compiled = document.as_ref().and_then(|d| self.compiled(d));
        let caller = authenticate(call, compiled, crate::clock::now_unix()).await?;
        let document = document.ok_or_else(caller::invalid_credentials)?;
        Ok((caller, document))
    }

    /// Commits `edit` to `target`'s account for `caller`: publishes and records it. Returns the
    /// revision it produced.
    pub async fn commit(
        &self,
        call: &Call,
        caller: &Caller,
        target: &Target,
        edit: Edit,
    ) -> Result<u64, ApiError> {
        let principal = caller.label();
        let result = self
            .accounts
            .change(&target.account, &principal, false, edit)
            .await;
        let mut record = ChangeRecord {
            time: audit::now_rfc3339(),
            decision_id: call.correlation_id.clone(),
            request_id: call.header("x-request-id").map(str::to_owned),
            frontend: "management",
            method: call.method.clone(),
            path: call.path.clone(),
            account: target.account.clone(),
            principal,
            token_id: caller.token_id.clone(),
            result: "committed",
            reason: "committed".to_owned(),
            change: String::new(),
            before_revision: None,
            after_revision: None,
        };
        match result {
            Ok(committed) => {
                record.change = committed.summary.0;
                record.before_revision = Some(committed.before);
                record.after_revision = Some(committed.after);
                self.changes.record(&record);
                if matches!(self.publishing, Publishing::Here { .. }) {
                    self.publish(&target.account).await;
                }
                tracing::info!(
                    account = %target.account, revision = committed.after, change = %record.change,
                    "management change committed"
                );
                Ok(committed.after)
            }
            Err(error) => {
                let error = change_error(error);
                record.result = "refused";
                record.reason = error.code.to_owned();
                record.change = error.message.clone();
                self.changes.record(&record);
                Err(error)
            }
        }
    }

    async fn publish(&self, account: &str) {
        match self.accounts.read(account).await {
            Ok(Some(document)) => {
                // publishing diffs and encodes the version: off the async workers
                let served = Arc::clone(&self.served);
                let published = tokio::task::spawn_blocking(move || served.publish(document)).await;
                if let Ok(Err(refusal)) = published {
                    // a newer version is served already (a concurrent change published it)
                    tracing::debug!(%refusal, "management change not published");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, account, "cannot read a committed change to publish it"),
        }
    }
}

fn store_error(error: ChangeError) -> ApiError {
    tracing::warn!(%error, "management API: the account store failed");
    ApiError::new(500, "UNEXPECTED", "the account store failed; nothing was changed")
}

/// The Harness answer of a refused change.
pub fn change_error(error: ChangeError) -> ApiError {
    match error {
        ChangeError::NoAccount(account) => ApiError::not_found(format!("account `{account}` not found")),
        ChangeError::Edit(EditError::NotFound(message)) => ApiError::not_found(message),
        ChangeError::Edit(EditError::Duplicate(message)) => ApiError::duplicate(message),
        ChangeError::Edit(EditError::Invalid(message)) => ApiError::invalid(message),
        ChangeError::Invalid(errors) => {
            let list: Vec<serde_json::Value> = errors
                .iter()
                .map(|e| serde_json::json!({ "fieldId": "account", "error": e }))
                .collect();
            ApiError::invalid(format!(
                "the change would make the account invalid: {}",
                errors.join("; ")
            ))
            .with("errors", list.into())
        }
        error @ ChangeError::Storage(_) => store_error(error),
    }
}

/// The response of a handler's result.
pub fn answer(call: &Call, result: Result<Reply, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.response(&call.correlation_id),
        Err(error) => error.response(&call.correlation_id),
    }
}

/// The answer to a path the management API does not serve.
async fn not_found(call: Call) -> Response {
    let message = format!("no management endpoint `{} {}`", call.method, call.path);
    ApiError::new(404, "RESOURCE_NOT_FOUND", message).response(&call.correlation_id)
}

/// The management API's routes over `management`.
pub fn router(management: Arc<Management>) -> Router {
    routes::routes()
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(management)
}

/// A random identifier of `len` letters and digits.
pub fn random_id(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
