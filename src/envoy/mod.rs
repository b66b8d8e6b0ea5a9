//! The Envoy ext_authz gRPC service (`envoy.service.auth.v3.Authorization/Check`): maps a
//! `CheckRequest` to a [`Request`](crate::serve::Request), asks
//! [`authorize`](crate::serve::authorize()) and maps the [`Outcome`] to a `CheckResponse` exactly as
//! wire.md specifies. No policy logic lives here.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use envoy_types::pb::google::rpc::Status;

use std::time::Instant;

use crate::serve::authorize::{authorize_detailed, now_unix};
use crate::serve::observe::{Observed, detail_if_audited, finish};
use crate::serve::response::{denial_response, identity_headers};
use crate::serve::{Denial, Detail, Outcome, Request, State};

pub use crate::serve::response::{ACCOUNT_HEADER, DECISION_ID_HEADER, HEADER_PREFIX, PRINCIPAL_HEADER};

/// gRPC status codes used in `CheckResponse.status`.
mod code {
    pub const OK: i32 = 0;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// The tonic `Authorization` service.
#[derive(Debug, Clone)]
pub struct AuthzService {
    state: Arc<State>,
}

impl AuthzService {
    /// A service over shared state.
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            check_fetching(&self.state, &request.into_inner()).await,
        ))
    }
}

static EMPTY_HEADERS: std::sync::LazyLock<HashMap<String, String>> = std::sync::LazyLock::new(HashMap::new);

/// Answers one `CheckRequest` (the whole Check, without the transport), never waiting on the network.
pub fn check(state: &State, request: &CheckRequest) -> CheckResponse {
    let started = Instant::now();
    let span = check_span(request);
    let _entered = span.enter();
    let mut detail = detail_if_audited(state);
    let outcome = decide(state, request, detail.as_mut());
    respond(state, request, &outcome, started, detail, &span)
}

/// [`check`], but when the answer depends on something not yet fetched (a JWT's new signing key, an account not loaded yet),
/// fetches it and decides once more.
pub async fn check_fetching(state: &State, request: &CheckRequest) -> CheckResponse {
    let started = Instant::now();
    let span = check_span(request);
    let mut detail = detail_if_audited(state);
    let mut outcome = span.in_scope(|| decide(state, request, detail.as_mut()));
    if state.fetch_missing(&outcome).await {
        detail = detail_if_audited(state);
        outcome = span.in_scope(|| decide(state, request, detail.as_mut()));
    }
    span.in_scope(|| respond(state, request, &outcome, started, detail, &span))
}

fn check_span(request: &CheckRequest) -> tracing::Span {
    let headers = http_attributes(request).map_or(&*EMPTY_HEADERS, |h| &h.headers);
    let lookup = |name: &str| headers.get(name).map(String::as_str);
    crate::telemetry::check_span("grpc", &lookup)
}

fn http_attributes(request: &CheckRequest) -> Option<&HttpRequest> {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
}

/// Claims of Envoy's `jwt_authn` filter (`payload_in_metadata`) in the trusted namespace: the first
/// struct there that carries an `iss`.
fn verified_claims(
    state: &State,
    request: &CheckRequest,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let namespace = state.jwt()?.envoy_metadata()?;
    let metadata = request.attributes.as_ref()?.metadata_context.as_ref()?;
    let fields = &metadata.filter_metadata.get(namespace)?.fields;
    fields.values().find_map(|value| match &value.kind {
        Some(Kind::StructValue(payload)) if payload.fields.contains_key("iss") => {
            Some(struct_to_json(payload))
        }
        _ => None,
    })
}

fn struct_to_json(value: &Struct) -> serde_json::Map<String, serde_json::Value> {
    value
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

fn value_to_json(value: &Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, |n| {
            // whole numbers (exp, nbf) stay integers
            if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                serde_json::Value::from(n.as_f64().map_or(0, |f| f as i64))
            } else {
                serde_json::Value::Number(n)
            }
        }),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StructValue(s)) => serde_json::Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(value_to_json).collect()),
    }
}

fn decide(state: &State, request: &CheckRequest, detail: Option<&mut Detail>) -> Outcome {
    let http = http_attributes(request);
    let headers = http.map_or(&*EMPTY_HEADERS, |h| &h.headers);
    let claims = verified_claims(state, request);
    match http {
        None => Outcome::Deny(Denial::InvalidRequest {
            reason: "no_http_attributes",
        }),
        Some(http) => {
            let lookup = |name: &str| headers.get(name).map(String::as_str);
            let permission_override = request
                .attributes
                .as_ref()
                .and_then(|a| a.context_extensions.get("permission"))
                .map(String::as_str)
                .filter(|p| !p.is_empty());
            authorize_detailed(
                state,
                &Request {
                    method: &http.method,
                    path: &http.path,
                    headers: &lookup,
                    permission_override,
                    verified_claims: claims.as_ref(),
                },
                now_unix(),
                detail,
            )
        }
    }
}

fn respond(
    state: &State,
    request: &CheckRequest,
    outcome: &Outcome,
    started: Instant,
    detail: Option<Detail>,
    span: &tracing::Span,
) -> CheckResponse {
    let decision_id = state.next_decision_id();
    let http = http_attributes(request);
    let headers = http.map_or(&*EMPTY_HEADERS, |h| &h.headers);
    let request_id = http
        .map(|h| h.id.as_str())
        .filter(|id| !id.is_empty())
        .or_else(|| headers.get("x-request-id").map(String::as_str));
    let observed = Observed {
        frontend: "grpc",
        method: http.map_or("", |h| h.method.as_str()),
        target: http.map_or("", |h| h.path.as_str()),
        request_id,
        started,
    };
    let answer = finish(state, &observed, outcome, detail, &decision_id, span);
    to_response(&answer, &decision_id, headers)
}

fn header(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

fn string_value(value: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(value.to_owned())),
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
            permission,
            ..
        } => {
            let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd;
            let set = identity_headers(outcome, decision_id);
            let headers = set
                .iter()
                .map(|(name, value)| header(name, value, overwrite))
                .collect();
            let mut headers_to_remove: Vec<String> = incoming
                .keys()
                .filter(|k| k.to_ascii_lowercase().starts_with(HEADER_PREFIX))
                .filter(|k| !set.iter().any(|(s, _)| k.eq_ignore_ascii_case(s)))
                .cloned()
                .collect();
            headers_to_remove.sort();
            let mut fields = HashMap::new();
            fields.insert("decision_id".to_owned(), string_value(decision_id));
            if let Some(principal) = principal {
                fields.insert("principal".to_owned(), string_value(principal));
            }
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
        Outcome::Deny(denial) => denied(denial, decision_id),
    }
}

fn denied(denial: &Denial, decision_id: &str) -> CheckResponse {
    let rendered = denial_response(denial, decision_id);
    let grpc = match denial {
        Denial::MissingCredentials | Denial::InvalidCredentials { .. } | Denial::UnknownSigningKey { .. } => {
            code::UNAUTHENTICATED
        }
        Denial::AccessDenied { .. } | Denial::NoRoute | Denial::TokenRestricted => code::PERMISSION_DENIED,
        Denial::InvalidRequest { .. } => code::INVALID_ARGUMENT,
        Denial::SnapshotUnavailable { .. } | Denial::VerificationBusy => code::UNAVAILABLE,
    };
    let add = HeaderAppendAction::OverwriteIfExistsOrAdd;
    let mut headers = vec![header("content-type", "application/json", add)];
    if let Some(value) = rendered.www_authenticate() {
        headers.push(header("www-authenticate", value, add));
    }
    // for Envoy's access log only (never sent to the client): why, as a stable code
    let mut fields = HashMap::new();
    fields.insert("decision_id".to_owned(), string_value(decision_id));
    fields.insert("reason".to_owned(), string_value(denial.reason()));
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
