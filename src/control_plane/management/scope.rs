//! Scopes as the management API names them: `accountIdentifier`/`orgIdentifier`/
//! `projectIdentifier` query parameters (the NG API), the `Harness-Account` header and the path's
//! `{org}`/`{project}` (the v1 API), and their forms in the account document and in answers.

use serde_json::{Value, json};

use super::wire::{ApiError, Call};
use crate::rbac::model::{AccountSnapshot, Scope, ScopeLevel};

/// Where a call acts: the account, and the org and project inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The account.
    pub account: String,
    /// The org, if any.
    pub org: Option<String>,
    /// The project, if any (then `org` is set).
    pub project: Option<String>,
}

impl Target {
    /// The NG form: `accountIdentifier` (required), `orgIdentifier`, `projectIdentifier`.
    pub fn from_query(call: &Call) -> Result<Self, ApiError> {
        let account = call
            .param("accountIdentifier")
            .or_else(|| call.header("harness-account"))
            .ok_or_else(|| ApiError::invalid("query parameter `accountIdentifier` is required"))?;
        Self::new(
            account,
            call.param("orgIdentifier"),
            call.param("projectIdentifier"),
        )
    }

    /// The v1 form: the account from the `Harness-Account` header (else `accountIdentifier`), the
    /// org and project from the path.
    pub fn from_path(call: &Call, org: Option<&str>, project: Option<&str>) -> Result<Self, ApiError> {
        let account = call
            .header("harness-account")
            .or_else(|| call.param("accountIdentifier"))
            .ok_or_else(|| ApiError::invalid("the `Harness-Account` header is required"))?;
        Self::new(account, org, project)
    }

    /// A target; a project without an org is a 400.
    pub fn new(account: &str, org: Option<&str>, project: Option<&str>) -> Result<Self, ApiError> {
        if project.is_some() && org.is_none() {
            return Err(ApiError::invalid(
                "`projectIdentifier` needs `orgIdentifier`: a project lives in an organization",
            ));
        }
        Ok(Self {
            account: account.to_owned(),
            org: org.map(str::to_owned),
            project: project.map(str::to_owned),
        })
    }

    /// The account itself.
    pub fn account_only(&self) -> Self {
        Self {
            account: self.account.clone(),
            org: None,
            project: None,
        }
    }

    /// The document's scope.
    pub fn scope(&self) -> Scope {
        Scope::new(self.org.as_deref(), self.project.as_deref())
    }

    /// Whether a document scope is this one (absent = the account).
    pub fn holds(&self, scope: Option<&Scope>) -> bool {
        let scope = scope.cloned().unwrap_or_default();
        scope == self.scope()
    }

    /// Harness's lower-case level name.
    pub fn level(&self) -> &'static str {
        level_name(&self.scope())
    }

    /// `acme`, `acme/eng`, `acme/eng/payments`.
    pub fn path(&self) -> String {
        let mut path = self.account.clone();
        for part in [&self.org, &self.project].into_iter().flatten() {
            path.push('/');
            path.push_str(part);
        }
        path
    }

    /// `AuthzScope`: `accountIdentifier`, `orgIdentifier`, `projectIdentifier`.
    pub fn authz_scope(&self) -> Value {
        json!({
            "accountIdentifier": self.account,
            "orgIdentifier": self.org,
            "projectIdentifier": self.project,
        })
    }

    /// A 404 when the org or project does not exist in `document`.
    pub fn exists_in(&self, document: &AccountSnapshot) -> Result<(), ApiError> {
        let Some(org) = &self.org else {
            return Ok(());
        };
        let Some(found) = document.organizations.iter().find(|o| &o.identifier == org) else {
            return Err(ApiError::not_found(format!(
                "organization `{org}` not found in account `{}`",
                self.account
            )));
        };
        match &self.project {
            Some(project) if !found.projects.contains(project) => Err(ApiError::not_found(format!(
                "project `{project}` not found in organization `{org}`"
            ))),
            _ => Ok(()),
        }
    }
}

/// Harness's lower-case level of a document scope.
pub fn level_name(scope: &Scope) -> &'static str {
    match (scope.org.is_empty(), scope.project.is_empty()) {
        (true, _) => "account",
        (false, true) => "organization",
        (false, false) => "project",
    }
}

/// A principal's `scopeLevel` (`account`, `organization`, `project`, any case) as the document's
/// enum; `None` = unset.
pub fn parse_level(level: Option<&str>) -> Result<i32, ApiError> {
    match level.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(0),
        Some("account") => Ok(ScopeLevel::Account as i32),
        Some("organization" | "org") => Ok(ScopeLevel::Organization as i32),
        Some("project") => Ok(ScopeLevel::Project as i32),
        Some(_) => Err(ApiError::invalid(
            "principal `scopeLevel` must be account, organization or project",
        )),
    }
}

/// The document enum of a level, in Harness's lower case (`null` when unset).
pub fn level_of(level: i32) -> Value {
    match ScopeLevel::try_from(level) {
        Ok(ScopeLevel::Account) => "account".into(),
        Ok(ScopeLevel::Organization) => "organization".into(),
        Ok(ScopeLevel::Project) => "project".into(),
        _ => Value::Null,
    }
}

/// Whether an identifier is one Harness accepts: letters, digits, `_` and `-` (and `$` in none of
/// them), starting with a letter or `_`, at most 128 characters.
pub fn check_identifier(what: &str, identifier: &str) -> Result<(), ApiError> {
    let valid = !identifier.is_empty()
        && identifier.len() <= 128
        && identifier
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        let shown: String = identifier.chars().take(64).collect();
        Err(ApiError::invalid(format!(
            "{what} identifier `{shown}` is invalid: letters, digits, `_` or `-`, starting with a letter or `_`, at most 128 characters"
        )))
    }
}
