//! Logs, traces and metrics. [`init`] installs the log formatter (`telemetry.log_format`: JSON or
//! text, on standard error so that standard output stays the audit log's) and, when
//! `telemetry.otlp_endpoint` is set, an OpenTelemetry layer exporting spans over OTLP/gRPC.
//! [`check_span`] opens the span of one Check, continuing the W3C trace of the request's
//! `traceparent` header. Spans carry the front end, decision id, result and reason code: never a
//! credential, header value or query string. [`metrics`] owns `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config;

pub mod metrics;

/// Whether spans are exported (then `traceparent` is worth reading).
static TRACING_EXPORT: AtomicBool = AtomicBool::new(false);

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("otlp exporter for `{endpoint}`: {message}")]
    Otlp {
        /// The configured endpoint.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// Keeps the span exporter alive; [`TelemetryGuard::shutdown`] flushes it.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, code = "otlp_shutdown_failed", "cannot flush traces");
        }
    }
}

/// The OTLP/gRPC tracer provider for `endpoint` (call inside a tokio runtime: tonic needs one).
pub fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| TelemetryError::Otlp {
            endpoint: endpoint.to_owned(),
            message: error.to_string(),
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("scopegate")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Installs the global subscriber: `RUST_LOG` (default `info`), the configured log format and, when
/// configured, OTLP export. Call inside the server's tokio runtime. A subscriber installed earlier
/// (tests) is kept.
pub fn init(telemetry: &config::Telemetry) -> Result<TelemetryGuard, TelemetryError> {
    let provider = match &telemetry.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(endpoint)?),
        None => None,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = telemetry.log_format == "json";
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
    });
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("scopegate")));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(json_layer)
        .with(text_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    TRACING_EXPORT.store(installed && provider.is_some(), Ordering::Relaxed);
    Ok(TelemetryGuard { provider })
}

/// A request's headers, for the W3C TraceContext propagator.
struct Headers<'h, 'a>(&'h dyn Fn(&str) -> Option<&'a str>);

impl Extractor for Headers<'_, '_> {
    fn get(&self, key: &str) -> Option<&str> {
        (self.0)(key)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The OpenTelemetry context of a request's `traceparent` / `tracestate` headers (empty when
/// absent or malformed).
pub fn extract_context<'a>(headers: &dyn Fn(&str) -> Option<&'a str>) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// The span of one Check on `frontend`, a child of the request's trace when spans are exported and
/// it carries a `traceparent`. Record `decision_id`, `result` and `reason` on it once known.
///
/// The span exists only when spans are exported or debug logging is on; otherwise it is
/// `Span::none()`: at the default level no log line needs it, and the log layer would format its
/// fields on every request for nothing.
pub fn check_span<'a>(frontend: &'static str, headers: &dyn Fn(&str) -> Option<&'a str>) -> tracing::Span {
    if !TRACING_EXPORT.load(Ordering::Relaxed) && !tracing::enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "check",
        frontend,
        decision_id = tracing::field::Empty,
        result = tracing::field::Empty,
        reason = tracing::field::Empty,
    );
    if TRACING_EXPORT.load(Ordering::Relaxed) && headers("traceparent").is_some() {
        continue_trace(&span, headers);
    }
    span
}

/// Makes `span` a child of the trace in `headers`.
pub fn continue_trace<'a>(span: &tracing::Span, headers: &dyn Fn(&str) -> Option<&'a str>) {
    let _ = span.set_parent(extract_context(headers));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use opentelemetry::trace::TraceContextExt;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_is_extracted() {
        let lookup = |name: &str| (name == "traceparent").then_some(PARENT);
        let cx = extract_context(&lookup);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        let none = |_: &str| None;
        assert!(!extract_context(&none).span().span_context().is_valid());
        let bad = |_: &str| Some("00-zz-yy-01");
        assert!(!extract_context(&bad).span().span_context().is_valid());
    }

    #[test]
    fn a_check_span_continues_the_request_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let lookup = |name: &str| (name == "traceparent").then_some(PARENT);
            let span = tracing::info_span!("check");
            continue_trace(&span, &lookup);
            let cx = span.context();
            let child = cx.span();
            let sc = child.span_context();
            assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_ne!(
                sc.span_id().to_string(),
                "00f067aa0ba902b7",
                "a new span in the same trace"
            );
        });
    }
}
