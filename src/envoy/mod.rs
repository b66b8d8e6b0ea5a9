//! The Envoy ext_authz gRPC service (`envoy.service.auth.v3.Authorization/Check`): reads a
//! `CheckRequest` once into a [`Request`], asks [`Authorizer::check`] and maps the [`Verdict`] to a
//! `CheckResponse` ([`response`]) as `docs/wire.md` specifies. No policy lives here.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

use crate::authz::request::{MIN_REVISION_EXTENSION, MIN_REVISION_HEADER, parse_min_revision};
use crate::authz::{Authorizer, Request};

pub mod response;

pub use crate::authz::render::{ACCOUNT_HEADER, DECISION_ID_HEADER, HEADER_PREFIX, PRINCIPAL_HEADER};
pub use response::{into_response, to_response, verdict_response};

/// The tonic `Authorization` service.
#[derive(Debug, Clone)]
pub struct AuthzService {
    authorizer: Arc<Authorizer>,
}

impl AuthzService {
    /// A service over the shared request policy.
    pub fn new(authorizer: Arc<Authorizer>) -> Self {
        Self { authorizer }
    }
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            check(&self.authorizer, &request.into_inner()).await,
        ))
    }
}

static EMPTY_HEADERS: std::sync::LazyLock<HashMap<String, String>> = std::sync::LazyLock::new(HashMap::new);

/// Answers one `CheckRequest` (the whole Check, without the transport): when the answer depends on
/// something not yet fetched (a JWT's new signing key, an account not loaded yet), it is fetched
/// and the request decided once more.
pub async fn check(authorizer: &Authorizer, request: &CheckRequest) -> CheckResponse {
    let http = http_attributes(request);
    let headers = http.map_or(&*EMPTY_HEADERS, |h| &h.headers);
    let verdict = match http {
        None => {
            let request = Request::malformed("grpc", "", "", "no_http_attributes");
            authorizer.check(&request).await
        }
        Some(http) => {
            let claims = verified_claims(authorizer, request);
            let lookup = |name: &str| headers.get(name).map(String::as_str);
            let min_revision = min_revision(request, headers);
            let request = Request {
                permission_override: permission_override(request),
                min_revision: min_revision.ok().flatten(),
                malformed: min_revision.err(),
                verified_claims: claims.as_ref(),
                request_id: Some(http.id.as_str())
                    .filter(|id| !id.is_empty())
                    .or_else(|| lookup("x-request-id")),
                ..Request::new("grpc", &http.method, &http.path, &lookup)
            };
            authorizer.check(&request).await
        }
    };
    into_response(verdict, headers)
}

fn http_attributes(request: &CheckRequest) -> Option<&HttpRequest> {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
}

fn permission_override(request: &CheckRequest) -> Option<&str> {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.context_extensions.get("permission"))
        .map(String::as_str)
        .filter(|p| !p.is_empty())
}

/// The revision the request demands: the header (Envoy joins repeated ones with commas) and
/// `context_extensions.min_revision` (empty is absent, like `permission`) are each a lower bound,
/// so the larger is demanded; either malformed makes the request malformed.
fn min_revision(
    request: &CheckRequest,
    headers: &HashMap<String, String>,
) -> Result<Option<u64>, &'static str> {
    let header = parse_min_revision(headers.get(MIN_REVISION_HEADER).map(String::as_bytes))?;
    let extension = request
        .attributes
        .as_ref()
        .and_then(|a| a.context_extensions.get(MIN_REVISION_EXTENSION))
        .filter(|value| !value.is_empty());
    let extension = parse_min_revision(extension.map(String::as_bytes))?;
    Ok(header.max(extension))
}

/// Claims of Envoy's `jwt_authn` filter (`payload_in_metadata`) in the trusted namespace: the first
/// struct there that carries an `iss`.
fn verified_claims(
    authorizer: &Authorizer,
    request: &CheckRequest,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let namespace = authorizer.credentials().envoy_metadata()?;
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
