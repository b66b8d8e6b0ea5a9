//! A no-op Envoy ext_authz gRPC server: answers every `Check` with OK, without looking at the
//! request. The throughput baseline for `deploy/loadtest/run.sh`.
//!
//! ```text
//! cargo run --release --example noop_authz -- [--listen ADDR]   # default 127.0.0.1:9292; until Ctrl-C
//! cargo run --release --example noop_authz -- --dump-request > req.bin
//! ```
//!
//! `--dump-request` writes one allowed `CheckRequest` (alice executing `deploy_prod` in the demo
//! account) in gRPC message framing (a 0 byte, a 4-byte big-endian length, the protobuf bytes) to
//! stdout, for `h2load -d`.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;

use envoy_types::ext_authz::v3::pb::{Authorization, AuthorizationServer, CheckRequest, CheckResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
use envoy_types::pb::google::rpc::Status;
use prost::Message;

/// Allows everything.
#[derive(Debug, Clone, Copy)]
struct Noop;

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        _request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(CheckResponse {
            status: Some(Status::default()),
            ..Default::default()
        }))
    }
}

/// The allowed demo request: alice executing `deploy_prod`.
fn allowed_request() -> CheckRequest {
    let headers: HashMap<String, String> = [
        ("harness-account", "acme"),
        ("x-api-key", "pat.acme.alicetok01.AliceDemoSecret01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "POST".to_owned(),
                    path: "/v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute".to_owned(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// `message` in gRPC length-prefixed framing (uncompressed).
fn grpc_frame(message: &CheckRequest) -> Option<Vec<u8>> {
    let body = message.encode_to_vec();
    let len = u32::try_from(body.len()).ok()?;
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Some(frame)
}

fn usage(error: &str) -> ExitCode {
    eprintln!("noop_authz: {error}\nusage: noop_authz [--listen ADDR] | --dump-request");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut listen = "127.0.0.1:9292".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(addr) => listen = addr,
                None => return usage("--listen needs an address"),
            },
            "--dump-request" => {
                let Some(frame) = grpc_frame(&allowed_request()) else {
                    return usage("request too large");
                };
                let mut out = std::io::stdout().lock();
                return match out.write_all(&frame).and_then(|()| out.flush()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => usage(&format!("cannot write: {e}")),
                };
            }
            "-h" | "--help" => {
                println!("usage: noop_authz [--listen ADDR] | --dump-request");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let addr: std::net::SocketAddr = match listen.parse() {
        Ok(addr) => addr,
        Err(e) => return usage(&format!("bad address {listen:?}: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return usage(&format!("cannot start the runtime: {e}")),
    };
    let served = runtime.block_on(async {
        eprintln!("noop_authz listening on {addr}");
        tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(Noop))
            .serve_with_shutdown(addr, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("noop_authz: {e}");
            ExitCode::FAILURE
        }
    }
}
