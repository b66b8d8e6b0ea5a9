//! scopegate's integration tests, one crate (one link instead of one per file): each module is
//! one capability driven from outside, mostly against a real server on `127.0.0.1:0`; `common`
//! holds the shared harnesses (ext_authz server and client, HTTP listener and client, the binary as
//! a process, a throwaway PKI, JWT signing, a control plane), `manifests` reads the deploy files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
mod manifests;
mod model_equivalence;

mod architecture;
mod audit;
mod cli;
mod cli_routes;
mod connections;
mod control_plane;
mod control_plane_follower;
mod control_plane_limits;
mod control_plane_metrics;
mod control_plane_postgres;
mod credential_binding;
mod denial_reasons;
mod deploy_control_plane_tls;
mod deploy_database;
mod deploy_manifests;
mod envoy_bad_input;
mod envoy_check;
mod envoy_config;
mod fuzz_replay;
mod harness_api_coverage;
mod http_acl;
mod http_mode;
mod jwt;
mod kustomize_build;
mod logs;
mod management_api;
mod management_api_postgres;
mod metrics;
mod nginx_e2e;
mod official_client;
mod otlp;
mod read_your_writes;
mod reflection;
mod sighup;
mod sync_deltas;
mod tls;
