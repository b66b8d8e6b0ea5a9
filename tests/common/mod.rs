//! Shared by the server integration tests: the real ext_authz server on `127.0.0.1:0` with a
//! stop switch, an envoy-types client, and CheckRequest builders.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cli;
pub mod http;
pub mod jwt;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod python;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use scopegate::authz::Authorizer;
use scopegate::server::{GrpcOptions, run_grpc};
use tokio::sync::oneshot;

pub mod control_plane;
use tonic::transport::Channel;

/// alice's demo token (granted pipeline execute in eng/payments through eng_leads).
pub const ALICE: &str = "pat.acme.alicetok01.AliceDemoSecret01";
/// A v1 pipeline-execute target in the demo account.
pub const EXECUTE: &str = "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute";

/// A running server and its stop switch.
pub struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts the server on an ephemeral loopback port.
    pub async fn start(state: Arc<Authorizer>) -> Self {
        Self::start_with(state, GrpcOptions::default()).await
    }

    /// Where it listens.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// [`Server::start`] with `options` (reflection on or off).
    pub async fn start_with(state: Arc<Authorizer>, options: GrpcOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run_grpc(listener, options, state, async {
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

    /// A connected channel (retries while the server starts).
    pub async fn channel(&self) -> Channel {
        let url = format!("http://{}", self.addr);
        for _ in 0..50 {
            if let Ok(channel) = Channel::from_shared(url.clone()).unwrap().connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not come up");
    }

    /// An ext_authz client.
    pub async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::new(self.channel().await)
    }

    /// The gRPC health status.
    pub async fn health(&self) -> i32 {
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel().await);
        health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    }

    /// Stops the server and waits for it to drain.
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

/// A CheckRequest as Envoy sends it, with an optional `context_extensions.permission`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], permission: Option<&str>) -> CheckRequest {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut context_extensions = HashMap::new();
    if let Some(p) = permission {
        context_extensions.insert("permission".to_owned(), p.to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions,
            ..Default::default()
        }),
    }
}

/// Sends `req`; a gRPC error (rather than a CheckResponse) fails the test.
pub async fn check(client: &mut AuthorizationClient<Channel>, req: CheckRequest) -> CheckResponse {
    client.check(req).await.unwrap().into_inner()
}

/// Whether the answer allows the request.
pub fn allowed(resp: &CheckResponse) -> bool {
    resp.status.as_ref().is_some_and(|s| s.code == 0)
        && matches!(resp.http_response, Some(HttpResponse::OkResponse(_)))
}

/// The HTTP status an answer maps to (200 = allowed).
pub fn http_status(resp: &CheckResponse) -> i32 {
    match &resp.http_response {
        Some(HttpResponse::OkResponse(_)) => 200,
        Some(HttpResponse::DeniedResponse(d)) => d.status.as_ref().map_or(0, |s| s.code),
        _ => 0,
    }
}

/// alice executing `deploy_prod` in `account` (the demo token, whose account segment is `acme`,
/// is re-targeted to `account`).
pub async fn alice(client: &mut AuthorizationClient<Channel>, account: &str) -> i32 {
    let token = format!("pat.{account}.alicetok01.AliceDemoSecret01");
    let req = request(
        "POST",
        EXECUTE,
        &[("harness-account", account), ("x-api-key", &token)],
        None,
    );
    http_status(&client.check(req).await.unwrap().into_inner())
}
