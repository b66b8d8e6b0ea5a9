//! API keys: an upsert (a token issued, rotated or revoked) replaces the key's tokens with its new
//! ones, checked as `compile` checks them; a delete drops them. A key identity the snapshot repeats
//! falls back, since a change could not say which of the keys it means.

use crate::rbac::compile::{identifier_well_formed, token_id_well_formed, token_node};
use crate::rbac::compiled::{CompiledAccount, PrincipalId};
use crate::rbac::delta::{ApiKeyIdentity, ScopePath};
use crate::rbac::index::KeyTokens;
use crate::rbac::model::{ApiKey, PrincipalType};

use super::{Fallback, resolve};

const INVALID: Fallback = "the api key is invalid or its parent is unknown";
const REPEATED: Fallback = "the snapshot has more than one api key with this parent and identifier";

pub(super) fn upsert(account: &mut CompiledAccount, key: &ApiKey) -> Result<(), Fallback> {
    let identity = ApiKeyIdentity::of(key);
    if account.index.api_keys.get(&identity).is_some_and(|k| k.keys > 1) {
        return Err(REPEATED);
    }
    if !identifier_well_formed(&key.identifier) {
        return Err(INVALID);
    }
    let principal = parent(account, key).ok_or(INVALID)?;
    remove_tokens(account, &identity);
    let catalog = std::sync::Arc::clone(&account.catalog);
    let mut errors = Vec::new();
    let mut token_ids = Vec::with_capacity(key.tokens.len());
    for token in &key.tokens {
        if !token_id_well_formed(&token.id) || account.tokens.contains_key(token.id.as_str()) {
            return Err(INVALID);
        }
        let node = token_node(&catalog, token, principal, &key.identifier, "", &mut errors).ok_or(INVALID)?;
        account.tokens.insert(token.id.as_str().into(), node);
        token_ids.push(token.id.as_str().into());
    }
    account
        .index
        .api_keys
        .insert(identity, KeyTokens { keys: 1, token_ids });
    Ok(())
}

pub(super) fn delete(account: &mut CompiledAccount, identity: &ApiKeyIdentity) -> Result<(), Fallback> {
    match account.index.api_keys.get(identity) {
        None => Err("the api key to delete is not in the account"),
        Some(k) if k.keys > 1 => Err(REPEATED),
        Some(_) => {
            remove_tokens(account, identity);
            account.index.api_keys.remove(identity);
            Ok(())
        }
    }
}

fn remove_tokens(account: &mut CompiledAccount, identity: &ApiKeyIdentity) {
    let Some(old) = account.index.api_keys.get(identity).cloned() else {
        return;
    };
    for id in &old.token_ids {
        account.tokens.remove(id);
    }
}

/// The key's parent, resolved as `compile`'s `api_key_parent` does.
fn parent(account: &CompiledAccount, key: &ApiKey) -> Option<PrincipalId> {
    let parent = key.parent.as_ref()?;
    match PrincipalType::try_from(parent.r#type).ok()? {
        PrincipalType::User => account.user(&parent.identifier),
        PrincipalType::ServiceAccount => {
            let scope = resolve(account, &ScopePath::of(parent.scope.as_ref()))?;
            account.service_account_in(&parent.identifier, scope)
        }
        _ => None,
    }
}
