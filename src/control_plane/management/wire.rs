//! The management API on the wire, in Harness's own shapes: the `ResponseDTO` envelope
//! (`status`, `data`, `metaData`, `correlationId`), the `PageResponse` of a list, the `Failure`
//! body of an error (the same `status: "ERROR"`, `code`, `message` as `/authz/api/acl` and the
//! sidecar's denials), and [`Call`], one request read once: its query parameters, headers and body.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The response header naming the revision a write produced.
pub const REVISION_HEADER: &str = "x-scopegate-revision";
/// The largest request body read; larger is a 413.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The default and the largest `pageSize`.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest `pageSize` served.
pub const MAX_PAGE_SIZE: usize = 1000;

/// An error answered in Harness's `Failure` shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Harness's error code (`INVALID_REQUEST`, `DUPLICATE_FIELD`, `RESOURCE_NOT_FOUND`, …).
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// Extra fields of the body (`failedPermissionChecks` of a 403, `errors` of a 400).
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    /// A 400 `INVALID_REQUEST`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "INVALID_REQUEST", message)
    }

    /// A 400 `DUPLICATE_FIELD`.
    pub fn duplicate(message: impl Into<String>) -> Self {
        Self::new(400, "DUPLICATE_FIELD", message)
    }

    /// A 404 `RESOURCE_NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "RESOURCE_NOT_FOUND", message)
    }

    /// Any status and code.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// The error with one more body field.
    pub fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    /// The `Failure` body.
    pub fn body(&self, correlation_id: &str) -> Value {
        let mut body = json!({
            "status": "ERROR",
            "code": self.code,
            "message": self.message,
            "correlationId": correlation_id,
            "detailedMessage": null,
            "responseMessages": [],
            "metadata": null,
        });
        if let Some((key, value)) = &self.extra {
            body[*key] = value.clone();
        }
        body
    }

    /// The response.
    pub fn response(&self, correlation_id: &str) -> Response {
        let mut response = json_response(self.status, &self.body(correlation_id));
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey"));
        }
        response
    }
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The `ResponseDTO` envelope of `data`.
pub fn envelope(data: Value, correlation_id: &str) -> Value {
    json!({ "status": "SUCCESS", "data": data, "metaData": null, "correlationId": correlation_id })
}

/// A successful answer: its data, and the revision a write produced.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The body's `data` (or the whole body, for a v1 endpoint).
    pub data: Value,
    /// The revision the write produced.
    pub revision: Option<u64>,
    /// `true`: `data` is the whole body (the v1 API has no envelope).
    pub bare: bool,
}

impl Reply {
    /// A read.
    pub fn read(data: Value) -> Self {
        Self {
            data,
            revision: None,
            bare: false,
        }
    }

    /// A write that produced `revision`.
    pub fn written(data: Value, revision: u64) -> Self {
        Self {
            data,
            revision: Some(revision),
            bare: false,
        }
    }

    /// The same reply without the envelope.
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    /// The response.
    pub fn response(self, correlation_id: &str) -> Response {
        let body = if self.bare {
            self.data
        } else {
            envelope(self.data, correlation_id)
        };
        let mut response = json_response(200, &body);
        if let Some(revision) = self.revision
            && let Ok(value) = HeaderValue::from_str(&revision.to_string())
        {
            response.headers_mut().insert(REVISION_HEADER, value);
        }
        response
    }
}

/// Harness's `PageResponse` of `items` at `pageIndex`/`pageSize` of the call.
pub fn page(items: Vec<Value>, call: &Call) -> Result<Value, ApiError> {
    let index = call.number("pageIndex")?.unwrap_or(0);
    let size = call
        .number("pageSize")?
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let total = items.len();
    let content: Vec<Value> = items
        .into_iter()
        .skip(index.saturating_mul(size))
        .take(size)
        .collect();
    Ok(json!({
        "totalPages": total.div_ceil(size),
        "totalItems": total,
        "pageItemCount": content.len(),
        "pageSize": size,
        "content": content,
        "pageIndex": index,
        "empty": content.is_empty(),
        "pageToken": null,
    }))
}

/// One request, read once.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The query parameters (the first value of each name).
    pub query: HashMap<String, String>,
    /// The body.
    pub body: Bytes,
    /// The call's correlation id (also the audit record's id).
    pub correlation_id: String,
}

impl Call {
    /// A query parameter, `None` when absent or empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A required query parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.param(name)
            .ok_or_else(|| ApiError::invalid(format!("query parameter `{name}` is required")))
    }

    /// A numeric query parameter.
    pub fn number(&self, name: &str) -> Result<Option<usize>, ApiError> {
        self.param(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(format!("query parameter `{name}` must be a number")))
            })
            .transpose()
    }

    /// A header, when it is visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON of type `T`: a 400 naming where it is malformed, never quoting it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::invalid("the request body is required"));
        }
        serde_json::from_slice(&self.body).map_err(|error| {
            use serde_json::error::Category;
            let what = match error.classify() {
                Category::Eof => "the body ends early",
                Category::Syntax => "not valid JSON",
                Category::Data => "a field is missing or has the wrong type",
                Category::Io => "the body cannot be read",
            };
            let message = format!(
                "malformed request body: {what} (line {}, column {})",
                error.line(),
                error.column()
            );
            ApiError::invalid(message.clone())
                .with("errors", json!([{ "fieldId": "body", "error": message }]))
        })
    }
}

/// Decodes an `application/x-www-form-urlencoded` query; the first value of a name wins.
pub fn parse_query(query: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        params.entry(decode(name)).or_insert_with(|| decode(value));
    }
    params
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let query = parse_query(request.uri().query().unwrap_or_default());
        let headers = request.headers().clone();
        let correlation_id = super::random_id(16);
        let body = Bytes::from_request(request, state).await.map_err(|_| {
            ApiError::new(
                413,
                "INVALID_REQUEST",
                format!("the request body is over {BODY_LIMIT} bytes"),
            )
            .response(&correlation_id)
        })?;
        Ok(Self {
            method,
            path,
            headers,
            query,
            body,
            correlation_id,
        })
    }
}
