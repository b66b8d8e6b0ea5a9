//! scopegate: an authorization sidecar that enforces the Harness access-control model at the proxy.
//!
//! The request path, in the order data flows: `route` maps a request to a permission check,
//! `authn` turns a credential into a principal, `rbac` decides. Everything here is pure and
//! synchronous; the servers around it live in their own modules.

pub mod audit;
pub mod authn;
pub mod cli;
pub mod config;
pub mod control_plane;
pub mod envoy;
pub mod http;
pub mod jwks;
pub mod proto;
pub mod rbac;
pub mod route;
pub mod serve;
pub mod snapshot;
pub mod telemetry;
pub mod tls;
