//! gRPC server reflection on the ext_authz listener and `scopegate protoset`, seen by a client
//! scopegate did not write (Python's grpcio and grpcio-reflection, `tests/python/reflection_client.py`):
//! v1alpha through `ProtoReflectionDescriptorDatabase` and v1 over a raw stream list the services
//! and describe `Check`, and a Check built from the reflected descriptors alone is answered; with
//! reflection off both services are UNIMPLEMENTED; the protoset loads in `descriptor_pool`. Also:
//! the vendored Envoy protos the descriptor set is compiled from are the envoy-types crate's.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::{Server, python};
use scopegate::authz::Authorizer;
use scopegate::server::GrpcOptions;

const SCRIPT: &str = include_str!("python/reflection_client.py");

async fn client(mode: &str, arg: String) -> Value {
    let mode = mode.to_owned();
    let output = tokio::task::spawn_blocking(move || python::run(SCRIPT, &[&mode, &arg], &[]))
        .await
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the script printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

const LISTED: [&str; 4] = [
    "envoy.service.auth.v3.Authorization",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_ext_authz_service() {
    let server = Server::start(Arc::new(Authorizer::demo().unwrap())).await;
    let seen = client("reflect", server.addr().to_string()).await;
    assert_eq!(seen["v1alpha_services"], json!(LISTED), "{seen}");
    assert_eq!(seen["v1_services"], json!(LISTED), "{seen}");
    assert_eq!(seen["check_input"], "envoy.service.auth.v3.CheckRequest");
    assert_eq!(seen["check_output"], "envoy.service.auth.v3.CheckResponse");
    assert_eq!(seen["check_file"], "envoy/service/auth/v3/external_auth.proto");
    let files = seen["v1_files_for_check_request"].as_array().unwrap();
    assert!(
        files.contains(&json!("envoy/service/auth/v3/external_auth.proto")),
        "{seen}"
    );
    // The Check built from reflected descriptors only is decided like any other: alice may execute.
    assert_eq!(seen["check_status_code"], 0, "{seen}");
    assert_eq!(seen["check_allowed"], "ok_response");
    let headers = seen["check_headers"].as_array().unwrap();
    assert!(headers.contains(&json!("x-scopegate-principal")), "{seen}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_off_is_unimplemented() {
    let options = GrpcOptions { reflection: false };
    let server = Server::start_with(Arc::new(Authorizer::demo().unwrap()), options).await;
    let seen = client("off", server.addr().to_string()).await;
    assert_eq!(seen, json!({"v1": "UNIMPLEMENTED", "v1alpha": "UNIMPLEMENTED"}));
    // Check and health are still served.
    assert_eq!(server.health().await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protoset_loads_in_a_descriptor_pool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scopegate.protoset");
    let status = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["protoset", "--output"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let written = std::fs::read(&file).unwrap();
    assert_eq!(written, scopegate::proto::FILE_DESCRIPTOR_SET);
    // Without --output it goes to stdout (a pipe here), byte for byte.
    let piped = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("protoset")
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert_eq!(piped.stdout, written);

    let seen = client("protoset", file.to_str().unwrap().to_owned()).await;
    assert_eq!(seen["check_request"], "envoy.service.auth.v3.CheckRequest");
    assert_eq!(seen["check_request_fields"], json!(["attributes"]));
    assert_eq!(seen["check_input"], "envoy.service.auth.v3.CheckRequest");
    assert_eq!(seen["health"], "grpc.health.v1.Health");
    assert_eq!(seen["snapshot_service"], "scopegate.v1.SnapshotService");
    assert!(seen["files"].as_u64().unwrap() > 20, "{seen}");
}

/// Where each vendored folder comes from in the envoy-types crate's `proto/`.
const VENDORED_FROM: &[(&str, &str)] = &[
    ("envoy", "data-plane-api/envoy"),
    ("udpa", "xds/udpa"),
    ("xds", "xds/xds"),
    ("validate", "protoc-gen-validate/validate"),
    ("google", "googleapis/google"),
];

fn proto_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            proto_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}

#[test]
fn vendored_envoy_protos_match_envoy_types() {
    let upstream = crate::envoy_config::envoy_protos();
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/vendor");
    let mut compared = 0;
    for (ours, theirs) in VENDORED_FROM {
        let mut files = Vec::new();
        proto_files(&vendor.join(ours), &mut files);
        for file in files {
            let relative = file.strip_prefix(vendor.join(ours)).unwrap();
            let original = upstream.join(theirs).join(relative);
            assert_eq!(
                std::fs::read(&file).unwrap(),
                std::fs::read(&original).unwrap_or_else(|e| panic!("{}: {e}", original.display())),
                "proto/vendor/{ours}/{} differs from envoy-types' copy: copy it again",
                relative.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 19, "{compared}");
}
