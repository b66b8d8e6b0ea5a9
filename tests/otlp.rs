#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! OpenTelemetry export end to end: the real `scopegate serve` process exports its Check spans over
//! OTLP/gRPC to a fake collector on 127.0.0.1:0; a request's `traceparent` makes its span a child
//! of the caller's trace; no span carries the credential.

use crate::common;
use crate::common::http;
use crate::common::process;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ALICE, EXECUTE};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use process::Process;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_spans_continue_the_callers_trace_and_reach_the_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("scopegate.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: {{grpc: 127.0.0.1:0, http: 127.0.0.1:0, http_source: nginx}}\naudit: {{sink: \"off\"}}\ntelemetry: {{log_format: json, otlp_endpoint: \"{endpoint}\"}}\n"
        ),
    )
    .unwrap();
    let server = Process::start(&config);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let headers = [
        ("x-original-method", "POST"),
        ("x-original-uri", EXECUTE),
        ("harness-account", "acme"),
        ("x-api-key", ALICE),
        ("traceparent", traceparent.as_str()),
    ];
    assert_eq!(
        http::send(server.http, "GET", "/", &headers, None).await.status,
        200
    );
    // SIGTERM flushes the exporter before the process exits
    tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let span = loop {
        let found = collector
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == "check")
            .cloned();
        if let Some(span) = found {
            break span;
        }
        assert!(Instant::now() < deadline, "no check span exported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT_ID);
    assert_eq!(attribute(&span, "frontend").as_deref(), Some("http"));
    assert_eq!(attribute(&span, "result").as_deref(), Some("allow"));
    assert_eq!(attribute(&span, "reason").as_deref(), Some("granted"));
    assert!(attribute(&span, "decision_id").is_some());
    let all = format!("{:?}", collector.0.lock().unwrap());
    assert!(
        !all.contains("AliceDemoSecret01") && !all.contains("alicetok01"),
        "{all}"
    );
}
