//! Shared by the HTTP-listener tests: scopegate's HTTP listener on `127.0.0.1:0` with a stop
//! switch, and a plain HTTP/1.1 client. Included with `#[path]` by the tests that need it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scopegate::authz::Authorizer;
use scopegate::http::{HttpOptions, serve_on};
use tokio::sync::oneshot;

/// A running HTTP listener and its stop switch.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Starts the listener on an ephemeral loopback port.
    pub async fn start(state: Arc<Authorizer>, options: HttpOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve_on(listener, state, options, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Stops the listener and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request to `addr` and reads the whole response.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{target}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("request timed out")
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Asserts a denial in scopegate's JSON error shape: the status, the code, a decision id,
/// `www-authenticate` on a 401 only, no principal header and no secret in the body.
pub fn expect_denial(reply: &Reply, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.header("www-authenticate").is_some(),
        status == 401,
        "www-authenticate on {status}"
    );
    assert!(reply.header("x-scopegate-principal").is_none());
    let body = reply.json();
    assert_eq!(body["status"], "ERROR");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["decisionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        body["reason"].as_str().is_some_and(|s| !s.is_empty()),
        "no reason code: {body}"
    );
    assert!(
        !reply.body.contains("Secret0"),
        "body leaks a secret: {}",
        reply.body
    );
    body
}
