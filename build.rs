//! Compiles `proto/` with protox (pure Rust: no `protoc` needed) and generates the
//! prost messages, the tonic services and the serde mapping of the snapshot schema.
//!
//! Two passes, so that `rbac` (which holds the snapshot messages) stays free of tonic:
//! - `snapshot.proto` → `$OUT_DIR/scopegate.v1.rs` (messages + serde), included by `rbac::model`;
//! - `control_plane.proto` → `$OUT_DIR/control_plane/scopegate.v1.rs` (the `SnapshotService`
//!   client and server), included by `crate::proto`, with the snapshot messages taken from
//!   `rbac::model` through `extern_path`;
//! - `control_plane.proto` again → `$OUT_DIR/control_plane_server/scopegate.v1.rs`: the server
//!   alone, included by `crate::proto::server`, whose answers carrying a snapshot or a delta are
//!   pre-encoded bytes (`crate::proto::encoded::Encoded`) instead of messages.
//!
//! A third compile writes `$OUT_DIR/scopegate.protoset`: the encoded `FileDescriptorSet` of every
//! service scopegate serves (Envoy's `envoy.service.auth.v3.Authorization`, `grpc.health.v1.Health`,
//! scopegate's own `scopegate.v1.SnapshotService`) with every file they import, the Envoy and
//! health protos from `proto/vendor/` (see its README). `crate::proto::FILE_DESCRIPTOR_SET` embeds
//! it for gRPC server reflection and `scopegate protoset`.
//!
//! It also records the git commit built (`SCOPEGATE_GIT_COMMIT`, `unknown` outside a checkout) for
//! `scopegate --version`.

use std::error::Error;

/// Enum-typed fields of the snapshot and the serde adapter that reads and writes
/// them by name (`USER_GROUP`, `INCLUDING_CHILD_SCOPES`, ...).
const ENUM_FIELDS: &[(&str, &str)] = &[
    (".scopegate.v1.IncludedScope.filter", "scope_filter"),
    (".scopegate.v1.PrincipalRef.type", "principal_type"),
    (".scopegate.v1.PrincipalRef.scope_level", "scope_level"),
    (".scopegate.v1.ApiKeyParent.type", "principal_type"),
];

/// The proto files: the snapshot schema, then the control plane's service.
const SNAPSHOT_PROTO: &str = "proto/scopegate/v1/snapshot.proto";
const CONTROL_PLANE_PROTO: &str = "proto/scopegate/v1/control_plane.proto";

/// The control plane's answers sent pre-encoded by its server.
const ENCODED_ANSWERS: &[&str] = &["WatchResponse", "GetResponse", "SyncResponse"];

/// The services served, as import paths under `proto/` or `proto/vendor/`.
const SERVED_PROTOS: &[&str] = &[
    "envoy/service/auth/v3/external_auth.proto",
    "grpc/health/v1/health.proto",
    "scopegate/v1/control_plane.proto",
];

/// Writes `$OUT_DIR/scopegate.protoset` (imports included, source info left out).
fn write_protoset() -> Result<(), Box<dyn Error>> {
    let mut compiler = protox::Compiler::new(["proto", "proto/vendor"])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(SERVED_PROTOS)?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("scopegate.protoset");
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    Ok(())
}

/// Sets `SCOPEGATE_GIT_COMMIT` to the checkout's commit and reruns when HEAD moves. Only files that
/// exist are watched (a missing one would rerun the script on every build).
fn record_git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SCOPEGATE_GIT_COMMIT={commit}");
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    record_git_commit();
    let descriptors = protox::compile([SNAPSHOT_PROTO], ["proto"])?;
    let mut builder = tonic_prost_build::configure().message_attribute(
        ".scopegate.v1",
        "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
    );
    for (field, adapter) in ENUM_FIELDS {
        builder = builder.field_attribute(
            field,
            format!(
                "#[serde(with = \"crate::rbac::model::enum_names::{adapter}\", skip_serializing_if = \"crate::rbac::model::enum_names::is_unspecified\")]"
            ),
        );
    }
    builder.compile_fds(descriptors.clone())?;

    // Every type of `snapshot.proto` is external here (prost skips generating external types).
    let snapshot_types: Vec<String> = descriptors
        .file
        .iter()
        .flat_map(|f| {
            let messages = f.message_type.iter().map(|m| m.name().to_owned());
            messages.chain(f.enum_type.iter().map(|e| e.name().to_owned()))
        })
        .collect();
    let descriptors = protox::compile([CONTROL_PLANE_PROTO], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let snapshot_externs = |mut builder: tonic_prost_build::Builder| {
        for name in &snapshot_types {
            builder = builder.extern_path(
                format!(".scopegate.v1.{name}"),
                format!("crate::rbac::model::{name}"),
            );
        }
        builder
    };
    // The messages and the client.
    let out_dir = out.join("control_plane");
    std::fs::create_dir_all(&out_dir)?;
    snapshot_externs(
        tonic_prost_build::configure()
            .out_dir(&out_dir)
            .build_server(false),
    )
    .compile_fds(descriptors.clone())?;
    // The server alone, every message taken from the pass above except the answers carrying a
    // snapshot or delta: those are `crate::proto::encoded::Encoded`, bytes encoded once per version
    // and sent to every stream as they are. Methods not implemented answer UNIMPLEMENTED.
    let control_plane_messages: Vec<String> = descriptors
        .file
        .iter()
        .filter(|f| f.name() == "scopegate/v1/control_plane.proto")
        .flat_map(|f| f.message_type.iter().map(|m| m.name().to_owned()))
        .collect();
    let out_dir = out.join("control_plane_server");
    std::fs::create_dir_all(&out_dir)?;
    let mut builder = snapshot_externs(
        tonic_prost_build::configure()
            .out_dir(&out_dir)
            .build_client(false)
            .generate_default_stubs(true),
    );
    for name in &control_plane_messages {
        let rust = if ENCODED_ANSWERS.contains(&name.as_str()) {
            "crate::proto::encoded::Encoded".to_owned()
        } else {
            format!("crate::proto::{name}")
        };
        builder = builder.extern_path(format!(".scopegate.v1.{name}"), rust);
    }
    builder.compile_fds(descriptors)?;
    write_protoset()
}
