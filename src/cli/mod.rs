//! The command line (`docs/formats.md` "Command line"): one file per subcommand, no logic of its own.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod control_plane;
pub mod serve;
pub mod token;
pub mod validate;

/// scopegate: Harness access control enforced at the proxy.
#[derive(Debug, Parser)]
#[command(name = "scopegate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate snapshots, route tables or configurations (detected by content).
    Validate(validate::ValidateArgs),
    /// Decide one check against a snapshot: prints ALLOW or DENY, then the reason.
    Check(check::CheckArgs),
    /// Mint API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Run the sidecar: Envoy ext_authz gRPC and gRPC health.
    Serve(serve::ServeArgs),
    /// Run the reference control plane: serve a folder of account snapshots to sidecars.
    ControlPlane(control_plane::ControlPlaneArgs),
}

/// A command-line failure: bad input, reported on stderr with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// The embedded catalog, or the one in `path` when given (`--catalog`).
pub fn load_catalog(
    path: Option<&std::path::Path>,
) -> Result<std::sync::Arc<crate::rbac::Catalog>, InputError> {
    let catalog = match path {
        Some(path) => crate::rbac::Catalog::from_file(path),
        None => crate::rbac::Catalog::embedded(),
    };
    catalog
        .map(std::sync::Arc::new)
        .map_err(|e| InputError(e.to_string()))
}

/// Parses the command line, runs the subcommand and maps its outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Token(command) => token::run(&command),
        Command::Serve(args) => serve::run(&args),
        Command::ControlPlane(args) => control_plane::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
