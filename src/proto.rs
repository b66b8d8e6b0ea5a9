//! The control plane's gRPC service, `scopegate.v1.SnapshotService` (Watch + Get), generated from
//! `proto/scopegate/v1/control_plane.proto`: the messages, the tonic client (used by the sidecar's
//! control-plane source) and server (used by `scopegate control-plane`). The snapshot itself is
//! [`crate::rbac::model::AccountSnapshot`].
//!
//! Also [`FILE_DESCRIPTOR_SET`]: the descriptors of every service scopegate serves, for gRPC server
//! reflection and `scopegate protoset`.

#![allow(missing_docs, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/control_plane/scopegate.v1.rs"));

/// The encoded `google.protobuf.FileDescriptorSet` of `envoy.service.auth.v3.Authorization`,
/// `grpc.health.v1.Health` and `scopegate.v1.SnapshotService`, every imported file included
/// (`build.rs` compiles it from `proto/`; the Envoy and health protos are in `proto/vendor/`).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scopegate.protoset"));
