//! Batch access-check harness: arbitrary bytes as the body of `POST /authz/api/acl`, through
//! `scopegate::http::acl::handle` (polled once: nothing is fetched for the demo; body parsing, caller authentication, the right to ask about
//! another principal, one decision per entry) on the embedded demo account. The first byte picks
//! the caller: alice's API token, the CI bot's service-account token, or no credential.
//!
//! Never a panic and never a 5xx other than 503 (account not loaded); a 200 answers every entry
//! asked, in order, permits nothing outside the caller's account, and needs a credential.
//! Shared by `fuzz_targets/acl.rs` and `tests/fuzz_replay.rs`.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use axum::http::{HeaderMap, HeaderValue};
use scopegate::authz::Authorizer;
use scopegate::http::acl::{AclRequest, handle};
use serde_json::Value;

static STATE: OnceLock<Option<Authorizer>> = OnceLock::new();

/// Demo tokens (public, demo only): a user's and a service account's.
const CALLERS: [Option<&str>; 3] = [
    Some("pat.acme.alicetok01.AliceDemoSecret01"),
    Some("sat.acme.citok01.CiBotDemoSecret01"),
    None,
];

/// One input: a caller-selector byte, then the request body.
pub fn run(data: &[u8]) {
    let Some(state) = STATE.get_or_init(|| Authorizer::demo().ok()) else {
        return;
    };
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let caller = CALLERS[usize::from(*selector) % CALLERS.len()];
    let mut headers = HeaderMap::new();
    if let Some(token) = caller {
        headers.insert("x-api-key", HeaderValue::from_static(token));
    }
    // the embedded demo is loaded and never fetched: the handler completes in one poll
    let handled = poll_once(handle(state, &headers, body));
    assert!(
        handled.is_some(),
        "handle waited although nothing is fetched for the demo"
    );
    let Some(response) = handled else {
        return;
    };
    let status = response.status().as_u16();
    assert!(
        matches!(status, 200 | 400 | 401 | 403 | 503),
        "unexpected status {status}"
    );
    if status != 200 {
        return;
    }
    assert!(caller.is_some(), "answered without a credential");
    let parsed = serde_json::from_slice::<AclRequest>(body);
    assert!(parsed.is_ok(), "answered 200 to a body that does not parse");
    let Ok(request) = parsed else {
        return;
    };
    let Some(answer) = body_json(response) else {
        return;
    };
    let list = answer["data"]["accessControlList"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        list.len(),
        request.permissions.len(),
        "not every entry was answered"
    );
    for (entry, asked) in list.iter().zip(&request.permissions) {
        assert_eq!(
            entry["permission"].as_str(),
            Some(asked.permission.as_str()),
            "answers out of order"
        );
        if entry["permitted"] == Value::Bool(true) {
            assert_eq!(
                asked.resource_scope.account_identifier, "acme",
                "permitted in another account"
            );
        }
    }
}

/// The future's output if one poll completes it.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = Box::pin(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// The response body as JSON (the handler's bodies are buffered, so one poll completes).
fn body_json(response: axum::response::Response) -> Option<Value> {
    let bytes = poll_once(axum::body::to_bytes(response.into_body(), usize::MAX))?.ok()?;
    serde_json::from_slice(&bytes).ok()
}
