//! The `api_keys` section: each key's parent principal, and its tokens (id, secret hash, validity
//! window, optional permission subset) indexed by token id for `authn::api_key`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::roles::permission_set;
use super::{Builder, Declaration};
use crate::rbac::catalog::Catalog;
use crate::rbac::compiled::{PrincipalId, SecretHash, TokenNode};
use crate::rbac::delta::ApiKeyIdentity;
use crate::rbac::error::ValidationError;
use crate::rbac::model::{self, AccountSnapshot, PrincipalType};

impl Builder {
    pub(super) fn api_keys(&mut self, snapshot: &AccountSnapshot) {
        for key in &snapshot.api_keys {
            // API keys are account-wide and their identifiers need not be unique: tokens are
            // looked up by their own id, checked in `token`.
            let declared = Declaration::new("api key", &key.identifier, None);
            let Some((described, _)) = self.declare(declared, |_, _| false) else {
                continue;
            };
            let Some(principal) = self.api_key_parent(key, &described) else {
                continue;
            };
            let mut token_ids = Vec::with_capacity(key.tokens.len());
            for token in &key.tokens {
                let token_entry = format!("token `{}` of api key `{}`", token.identifier, key.identifier);
                if self.token(token, principal, &key.identifier, token_entry) {
                    token_ids.push(token.id.as_str().into());
                }
            }
            let identity = ApiKeyIdentity::of(key);
            let mut entry = self
                .account
                .index
                .api_keys
                .get(&identity)
                .cloned()
                .unwrap_or_default();
            entry.keys += 1;
            entry.token_ids.extend(token_ids);
            self.account.index.api_keys.insert(identity, entry);
        }
    }

    fn api_key_parent(&mut self, key: &model::ApiKey, described: &str) -> Option<PrincipalId> {
        let Some(parent) = &key.parent else {
            self.malformed(described.to_owned(), "missing `parent`");
            return None;
        };
        match PrincipalType::try_from(parent.r#type) {
            Ok(PrincipalType::User) => {
                let found = self.account.user(&parent.identifier);
                if found.is_none() {
                    self.errors.push(ValidationError::UnknownPrincipal {
                        entry: described.to_owned(),
                        kind: "user",
                        name: parent.identifier.clone(),
                    });
                }
                found
            }
            Ok(PrincipalType::ServiceAccount) => {
                let scope = self.scope_of(parent.scope.as_ref(), || described.to_owned())?;
                let found = self.account.service_account_in(&parent.identifier, scope);
                if found.is_none() {
                    self.errors.push(ValidationError::UnknownPrincipal {
                        entry: described.to_owned(),
                        kind: "service account",
                        name: format!("{}/{}", self.path(scope), parent.identifier),
                    });
                }
                found
            }
            _ => {
                self.malformed(
                    described.to_owned(),
                    "parent `type` must be USER or SERVICE_ACCOUNT",
                );
                None
            }
        }
    }

    fn token(
        &mut self,
        token: &model::ApiToken,
        principal: PrincipalId,
        api_key: &str,
        described: String,
    ) -> bool {
        let before = self.errors.len();
        if !token_id_well_formed(&token.id) {
            self.malformed(
                described.clone(),
                "`id` must be non-empty ASCII letters, digits, `_` or `-`",
            );
        } else if self.account.tokens.contains_key(token.id.as_str()) {
            self.malformed(
                described.clone(),
                format!("token id `{}` is used more than once", token.id),
            );
        }
        let node = token_node(
            &self.catalog,
            token,
            principal,
            api_key,
            &described,
            &mut self.errors,
        );
        match node {
            Some(node) if self.errors.len() == before => {
                self.account.tokens.insert(token.id.as_str().into(), node);
                true
            }
            _ => false,
        }
    }
}

/// Whether a `<token-id>` is non-empty ASCII letters, digits, `_` or `-`.
pub(crate) fn token_id_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A token's compiled form (secret hash, validity window, permission subset), recording what is
/// wrong with its fields into `errors`; none when anything is. The id is [`Builder::token`]'s.
pub(crate) fn token_node(
    catalog: &Catalog,
    token: &model::ApiToken,
    principal: PrincipalId,
    api_key: &str,
    described: &str,
    errors: &mut Vec<ValidationError>,
) -> Option<TokenNode> {
    let before = errors.len();
    let secret_hash = match SecretHash::parse(&token.secret_hash) {
        Ok(hash) => Some(hash),
        Err(error) => {
            errors.push(ValidationError::Malformed {
                entry: described.to_owned(),
                message: error.to_string(),
            });
            None
        }
    };
    let mut timestamp = |field: &str, value: &str| match OffsetDateTime::parse(value, &Rfc3339) {
        Ok(at) => Some(at.unix_timestamp()),
        Err(_) => {
            errors.push(ValidationError::Malformed {
                entry: described.to_owned(),
                message: format!("`{field}` is not an RFC 3339 timestamp: `{value}`"),
            });
            None
        }
    };
    let valid_from = timestamp("valid_from", &token.valid_from);
    let valid_to = timestamp("valid_to", &token.valid_to);
    let rotated = token
        .rotated_expire_at
        .as_deref()
        .map(|at| timestamp("rotated_expire_at", at));
    if let (Some(from), Some(to)) = (valid_from, valid_to)
        && from >= to
    {
        errors.push(ValidationError::Malformed {
            entry: described.to_owned(),
            message: "`valid_from` must be before `valid_to`".to_owned(),
        });
    }
    let permissions = (!token.permissions.is_empty())
        .then(|| permission_set(catalog, &token.permissions, described, None, errors));
    if errors.len() != before {
        return None;
    }
    Some(TokenNode {
        api_key: api_key.into(),
        identifier: token.identifier.as_str().into(),
        principal,
        secret_hash: secret_hash?,
        valid_from: valid_from?,
        valid_to: valid_to?,
        rotated_expire_at: rotated.flatten(),
        permissions,
    })
}
