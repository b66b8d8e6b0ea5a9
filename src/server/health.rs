//! gRPC health (`grpc.health.v1`): the server's overall status and the ext_authz service's, both
//! SERVING exactly while the sidecar is ready.

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Reports `ready` for the server and for `envoy.service.auth.v3.Authorization`.
pub async fn set_health(reporter: &HealthReporter, ready: bool) {
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status("envoy.service.auth.v3.Authorization", status)
        .await;
}
