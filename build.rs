//! Compiles `proto/` with protox (pure Rust: no `protoc` needed) and generates the
//! prost messages, the tonic services and the serde mapping of the snapshot schema.

use std::error::Error;

/// Enum-typed fields of the snapshot and the serde adapter that reads and writes
/// them by name (`USER_GROUP`, `INCLUDING_CHILD_SCOPES`, ...).
const ENUM_FIELDS: &[(&str, &str)] = &[
    (".scopegate.v1.IncludedScope.filter", "scope_filter"),
    (".scopegate.v1.PrincipalRef.type", "principal_type"),
    (".scopegate.v1.PrincipalRef.scope_level", "scope_level"),
    (".scopegate.v1.ApiKeyParent.type", "principal_type"),
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = ["proto/scopegate/v1/snapshot.proto"];
    let descriptors = protox::compile(files, ["proto"])?;

    let mut builder = tonic_prost_build::configure().message_attribute(
        ".scopegate.v1",
        "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
    );
    for (field, adapter) in ENUM_FIELDS {
        builder = builder.field_attribute(
            field,
            format!("#[serde(with = \"crate::rbac::model::enum_names::{adapter}\")]"),
        );
    }
    builder.compile_fds(descriptors)?;
    Ok(())
}
