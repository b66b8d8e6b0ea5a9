//! deploy/envoy/envoy.yaml is a valid Envoy v3 bootstrap: it is read, by the protobuf JSON mapping,
//! into Envoy's own `Bootstrap` message compiled from the protos the envoy-types crate ships, with
//! unknown fields refused, so a misspelt or retired field name fails here rather than in Envoy.
//! Every `typed_config` is an `Any` and is checked against the message its `@type` names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

use prost_reflect::{DescriptorPool, DynamicMessage};

/// The platform cargo builds for here, as `cargo -vV` reports it.
fn host_platform() -> String {
    let output = Command::new(env!("CARGO")).arg("-vV").output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("cargo -vV names the host")
        .to_owned()
}

/// The `proto/` folder of the envoy-types crate this build uses, found through `cargo metadata`.
/// Offline and filtered to this platform: a build downloads only the packages its platform needs, so
/// an unfiltered listing would ask for Windows-only crates the machine never fetched.
pub(crate) fn envoy_protos() -> PathBuf {
    let host = host_platform();
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "envoy-types")
        .expect("envoy-types is a dependency");
    PathBuf::from(package["manifest_path"].as_str().unwrap())
        .parent()
        .unwrap()
        .join("proto")
}

/// The descriptors of the bootstrap and of every extension envoy.yaml names.
fn pool() -> DescriptorPool {
    let root = envoy_protos();
    let includes = [
        "data-plane-api",
        "xds",
        "protoc-gen-validate",
        "googleapis",
        "cel-spec/proto",
        "opentelemetry-proto",
        "client_model",
        "ratelimit",
    ]
    .map(|dir| root.join(dir));
    let files = [
        "envoy/config/bootstrap/v3/bootstrap.proto",
        "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
        "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
        "envoy/extensions/filters/http/router/v3/router.proto",
        "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    ];
    let mut compiler = protox::Compiler::new(includes).unwrap();
    compiler.include_imports(true);
    compiler.open_files(files).unwrap_or_else(|e| panic!("{e:?}"));
    compiler.descriptor_pool()
}

fn envoy_yaml() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/envoy/envoy.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bootstrap(pool: &DescriptorPool, config: serde_json::Value) -> Result<DynamicMessage, String> {
    let bootstrap = pool
        .get_message_by_name("envoy.config.bootstrap.v3.Bootstrap")
        .unwrap();
    DynamicMessage::deserialize(bootstrap, config).map_err(|e| e.to_string())
}

#[test]
fn envoy_yaml_is_a_valid_v3_bootstrap() {
    let pool = pool();
    let message = bootstrap(&pool, envoy_yaml()).unwrap_or_else(|e| panic!("envoy.yaml: {e}"));
    let static_resources = message.get_field_by_name("static_resources").unwrap();
    let listeners = static_resources
        .as_message()
        .unwrap()
        .get_field_by_name("listeners")
        .unwrap();
    assert_eq!(listeners.as_list().unwrap().len(), 2);
}

#[test]
fn the_check_refuses_unknown_fields_even_inside_typed_config() {
    let pool = pool();
    let mut config = envoy_yaml();
    let authz = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"];
    assert_eq!(authz["failure_mode_allow"], false);
    authz["failure_mode_allow"] = serde_json::Value::Null;
    authz["fail_open"] = serde_json::Value::Bool(false);
    let error = bootstrap(&pool, config).unwrap_err();
    assert!(error.contains("fail_open"), "{error}");
}
