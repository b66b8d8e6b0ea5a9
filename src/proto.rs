//! The control plane's gRPC service, `scopegate.v1.SnapshotService` (Watch + Get), generated from
//! `proto/scopegate/v1/control_plane.proto`: the messages, the tonic client (used by the sidecar's
//! control-plane source) and server (used by `scopegate control-plane`). The snapshot itself is
//! [`crate::rbac::model::AccountSnapshot`].

#![allow(missing_docs, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/control_plane/scopegate.v1.rs"));
