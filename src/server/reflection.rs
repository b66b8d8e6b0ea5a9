//! gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) on the ext_authz listener, from the
//! same descriptors the services are built from ([`crate::proto::FILE_DESCRIPTOR_SET`]), so that
//! `grpcurl list`, `grpcurl describe` and `ghz --call envoy.service.auth.v3.Authorization.Check`
//! need no `.proto` files. On by default; `listen.grpc_reflection: false` (`--no-grpc-reflection`)
//! leaves it out, and a reflection call is then `UNIMPLEMENTED` like any unknown service.
//!
//! Only the services this listener serves are listed (the descriptor set also describes the control
//! plane's `scopegate.v1.SnapshotService`, which `scopegate protoset` writes for load tests of it).

use tonic_reflection::server::{Builder, Error, v1, v1alpha};

/// The services the ext_authz listener serves, as reflection lists them.
pub const SERVICES: &[&str] = &[
    "envoy.service.auth.v3.Authorization",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn builder() -> Builder<'static> {
    SERVICES.iter().fold(
        Builder::configure().register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(*name),
    )
}

/// Both reflection services over the embedded descriptor set, ready for a tonic router:
/// `grpc.reflection.v1` (grpcurl, ghz, current gRPC tools) and `v1alpha` (older clients). Fails
/// only if that set cannot be decoded or is inconsistent (a build fault).
pub fn services() -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    Error,
> {
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message;

    #[test]
    fn the_descriptor_set_describes_every_listed_service() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .flat_map(|f| {
                f.service
                    .iter()
                    .map(move |s| format!("{}.{}", f.package(), s.name()))
            })
            .collect();
        for listed in &super::SERVICES[..2] {
            assert!(services.iter().any(|s| s == listed), "{listed} in {services:?}");
        }
        assert!(services.iter().any(|s| s == "scopegate.v1.SnapshotService"));
        super::services().unwrap();
    }
}
