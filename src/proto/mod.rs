//! The control plane's gRPC service, `scopegate.v1.SnapshotService` (Watch, Get and Sync), generated
//! from `proto/scopegate/v1/control_plane.proto`: the messages and the tonic client (used by the
//! sidecar's control-plane source), and the server (used by `scopegate control-plane`), whose
//! answers carrying a snapshot or a delta are [`encoded::Encoded`] bytes, made once per version. The
//! snapshot itself is [`crate::rbac::model::AccountSnapshot`]; [`delta`] maps
//! [`crate::rbac::delta::AccountDelta`] to and from its wire form.
//!
//! Also [`FILE_DESCRIPTOR_SET`]: the descriptors of every service scopegate serves, for gRPC server
//! reflection and `scopegate protoset`.

pub mod delta;
pub mod encoded;

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/control_plane/scopegate.v1.rs"));
}

/// The generated server (`snapshot_service_server`), answering with [`encoded::Encoded`] bytes.
#[allow(missing_docs, clippy::all)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/control_plane_server/scopegate.v1.rs"));
}

pub use generated::*;
pub use server::snapshot_service_server;

/// The encoded `google.protobuf.FileDescriptorSet` of `envoy.service.auth.v3.Authorization`,
/// `grpc.health.v1.Health` and `scopegate.v1.SnapshotService`, every imported file included
/// (`build.rs` compiles it from `proto/`; the Envoy and health protos are in `proto/vendor/`).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scopegate.protoset"));
