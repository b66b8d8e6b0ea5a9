//! scopegate: an authorization sidecar that enforces the Harness access-control model at the proxy.
//!
//! The map, from the bottom up (each layer imports only layers below it):
//! - the engine, pure and synchronous: [`rbac`] decides a check against a compiled account,
//!   [`route`] maps a request to a permission check, [`authn`] turns a credential into a principal;
//! - [`accounts`] (where compiled accounts come from: files or a control plane) and [`jwks`] (JWT
//!   issuers' keys at run time);
//! - [`authz`], the request policy: the one `check` every front end calls;
//! - the front ends [`envoy`] (gRPC ext_authz) and [`http`] (HTTP mode, batch access check,
//!   admin endpoints), which map their wire to and from `authz` and never import each other;
//! - [`server`], the process lifecycle; [`cli`], the command line;
//! - edges that import nothing above them: [`telemetry`], [`audit`], [`config`], [`tls`],
//!   [`clock`], [`proto`]. [`control_plane`] is the reference control-plane server.

pub mod accounts;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control_plane;
pub mod envoy;
pub mod http;
pub mod jwks;
pub mod proto;
pub mod rbac;
pub mod route;
pub mod server;
pub mod telemetry;
pub mod tls;
