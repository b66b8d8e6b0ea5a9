//! A [`Verdict`] on the wire: a `CheckResponse` exactly as `docs/wire.md` specifies (gRPC status,
//! the identity headers of an allow and the `x-scopegate-*` headers to remove, the status, body and
//! `www-authenticate` of a denial, and the dynamic metadata for Envoy's access log).

use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse,
    HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use envoy_types::pb::google::rpc::Status;

use crate::authz::render::{
    ACCOUNT_HEADER, DECISION_ID_HEADER, HEADER_PREFIX, PRINCIPAL_HEADER, denial_response,
};
use crate::authz::{Denial, Outcome, Verdict};

/// gRPC status codes used in `CheckResponse.status`.
mod code {
    pub const OK: i32 = 0;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// The verdict's answer (in dry-run mode an allow in place of a denial) on the wire. `incoming`
/// are the request's headers (for `headers_to_remove`).
pub fn verdict_response(verdict: &Verdict, incoming: &HashMap<String, String>) -> CheckResponse {
    to_response(&verdict.answer(), &verdict.decision_id, incoming)
}

/// [`verdict_response`] taking the verdict, so its strings (principal, account, permission,
/// decision id) move into the response instead of being copied.
pub fn into_response(verdict: Verdict, incoming: &HashMap<String, String>) -> CheckResponse {
    let Verdict {
        outcome,
        decision_id,
        dry_run,
        ..
    } = verdict;
    match outcome {
        Outcome::Allow {
            principal,
            account,
            permission,
            ..
        } => allowed(principal, account, permission, decision_id, incoming),
        Outcome::Deny(_) if dry_run => allowed(None, None, None, decision_id, incoming),
        Outcome::Deny(denial) => denied(&denial, decision_id),
    }
}

fn header(key: &str, value: String, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

fn string_value(value: String) -> Value {
    Value {
        kind: Some(Kind::StringValue(value)),
    }
}

fn status(code: i32) -> Option<Status> {
    Some(Status {
        code,
        ..Default::default()
    })
}

/// Maps an outcome to the wire. `incoming` are the request's headers (for `headers_to_remove`).
pub fn to_response(
    outcome: &Outcome,
    decision_id: &str,
    incoming: &HashMap<String, String>,
) -> CheckResponse {
    match outcome {
        Outcome::Allow {
            principal,
            account,
            permission,
            ..
        } => allowed(
            principal.clone(),
            account.clone(),
            permission.clone(),
            decision_id.to_owned(),
            incoming,
        ),
        Outcome::Deny(denial) => denied(denial, decision_id.to_owned()),
    }
}

/// An allow: the identity headers (overwriting what the client sent), every other `x-scopegate-*`
/// header the client sent to remove, and the dynamic metadata.
fn allowed(
    principal: Option<String>,
    account: Option<String>,
    permission: Option<String>,
    decision_id: String,
    incoming: &HashMap<String, String>,
) -> CheckResponse {
    let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd;
    let mut headers_to_remove: Vec<String> = incoming
        .keys()
        .filter(|k| {
            is_forged(k)
                && !(k.eq_ignore_ascii_case(DECISION_ID_HEADER)
                    || (principal.is_some() && k.eq_ignore_ascii_case(PRINCIPAL_HEADER))
                    || (account.is_some() && k.eq_ignore_ascii_case(ACCOUNT_HEADER)))
        })
        .cloned()
        .collect();
    headers_to_remove.sort();
    let mut fields = HashMap::with_capacity(3);
    let mut headers = Vec::with_capacity(3);
    if let Some(principal) = principal {
        fields.insert("principal".to_owned(), string_value(principal.clone()));
        headers.push(header(PRINCIPAL_HEADER, principal, overwrite));
    }
    if let Some(account) = account {
        headers.push(header(ACCOUNT_HEADER, account, overwrite));
    }
    headers.push(header(DECISION_ID_HEADER, decision_id.clone(), overwrite));
    fields.insert("decision_id".to_owned(), string_value(decision_id));
    if let Some(permission) = permission {
        fields.insert("permission".to_owned(), string_value(permission));
    }
    CheckResponse {
        status: status(code::OK),
        dynamic_metadata: Some(Struct { fields }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
    }
}

/// Whether `name` is one of scopegate's headers (`x-scopegate-*`, any case), without allocating.
fn is_forged(name: &str) -> bool {
    name.len() >= HEADER_PREFIX.len()
        && name.as_bytes()[..HEADER_PREFIX.len()].eq_ignore_ascii_case(HEADER_PREFIX.as_bytes())
}

fn denied(denial: &Denial, decision_id: String) -> CheckResponse {
    let rendered = denial_response(denial, &decision_id);
    let grpc = match denial {
        Denial::MissingCredentials | Denial::InvalidCredentials { .. } | Denial::UnknownSigningKey { .. } => {
            code::UNAUTHENTICATED
        }
        Denial::AccessDenied { .. } | Denial::NoRoute | Denial::TokenRestricted => code::PERMISSION_DENIED,
        Denial::InvalidRequest { .. } => code::INVALID_ARGUMENT,
        Denial::SnapshotUnavailable { .. }
        | Denial::AccountUnknown { .. }
        | Denial::RevisionBehind { .. }
        | Denial::VerificationBusy => code::UNAVAILABLE,
        Denial::OperatorError { .. } => code::INTERNAL,
    };
    let add = HeaderAppendAction::OverwriteIfExistsOrAdd;
    let mut headers = Vec::with_capacity(2);
    headers.push(header("content-type", "application/json".to_owned(), add));
    if let Some(value) = rendered.www_authenticate() {
        headers.push(header("www-authenticate", value.to_owned(), add));
    }
    // for Envoy's access log only (never sent to the client): why, as a stable code
    let mut fields = HashMap::with_capacity(2);
    fields.insert("decision_id".to_owned(), string_value(decision_id));
    fields.insert("reason".to_owned(), string_value(denial.reason().to_owned()));
    CheckResponse {
        status: status(grpc),
        dynamic_metadata: Some(Struct { fields }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(rendered.status),
            }),
            headers,
            body: rendered.body,
        })),
    }
}
