//! The command line (`docs/formats.md` "Command line"): one file per subcommand, no logic of its own.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub mod admin;
pub mod check;
pub mod control_plane;
pub mod protoset;
pub mod routes;
pub mod serve;
pub mod token;
pub mod validate;

/// The version `--version` prints: the crate's, and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SCOPEGATE_GIT_COMMIT"),
    ")"
);

/// Exit codes, shown under `--help` (the same table is in the README).
const EXIT_CODES: &str = "Exit codes:
  0  success (check: allowed; validate: every file valid; routes explain: a route matched)
  1  check: denied; validate: a file is invalid; routes explain: no route matched
  2  bad input: flags, files or configuration (one line on stderr)";

/// scopegate: Harness access control enforced at the proxy.
#[derive(Debug, Parser)]
#[command(name = "scopegate", version = VERSION, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate snapshots, route tables or configurations (detected by content).
    #[command(
        after_help = "Example:\n  scopegate validate deploy/examples/snapshots/demo.yaml deploy/routes/harness-ng.yaml"
    )]
    Validate(validate::ValidateArgs),
    /// Decide one check against a snapshot: prints ALLOW or DENY, then the reason.
    #[command(
        after_help = "Example:\n  scopegate check --snapshot deploy/examples/snapshots/demo.yaml \\\n    \
        --principal USER:alice --scope acme/eng/payments --permission core_pipeline_execute"
    )]
    Check(check::CheckArgs),
    /// Mint API tokens.
    #[command(subcommand)]
    #[command(after_help = "Example:\n  scopegate token new --account acme --type pat")]
    Token(token::TokenCommand),
    /// Inspect the route table: explain how a request is routed (NO_ROUTE denials), measure an
    /// endpoint list's coverage, list the routes.
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  scopegate routes explain POST /v1/orgs/eng/projects/payments/pipelines/deploy_prod/execute \\\n    \
        --header harness-account:acme"
    )]
    Routes(routes::RoutesCommand),
    /// Run the sidecar: Envoy ext_authz gRPC, gRPC health and server reflection.
    #[command(
        after_help = "Examples:\n  scopegate serve                                  # the embedded demo on 127.0.0.1:9191\n  \
        scopegate serve --config deploy/examples/config.yaml\n  \
        scopegate serve --snapshots /etc/scopegate/snapshots/ --http-listen 127.0.0.1:9192 --http-source nginx"
    )]
    Serve(serve::ServeArgs),
    /// Run the reference control plane: serve account snapshots (a folder, or PostgreSQL) to sidecars.
    #[command(
        after_help = "Examples:\n  scopegate control-plane --source deploy/examples/snapshots --listen 127.0.0.1:9300\n  \
        scopegate control-plane --database postgres://scopegate@db/scopegate --listen 127.0.0.1:9300"
    )]
    ControlPlane(control_plane::ControlPlaneArgs),
    /// Write the gRPC descriptor set (binary) of the served services, for `ghz --protoset`.
    #[command(
        after_help = "Examples:\n  scopegate protoset --output scopegate.protoset\n  \
        ghz --protoset scopegate.protoset --call envoy.service.auth.v3.Authorization.Check ..."
    )]
    Protoset(protoset::ProtosetArgs),
    /// Change the control plane's PostgreSQL database: import snapshot files, bootstrap an admin.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  scopegate admin import --database postgres://scopegate@db/scopegate deploy/examples/snapshots\n  \
        scopegate admin bootstrap --database postgres://scopegate@db/scopegate --account acme --user root"
    )]
    Admin(admin::AdminCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(after_help = "Example:\n  scopegate completions bash > /etc/bash_completion.d/scopegate")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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
        Command::Routes(command) => routes::run(&command),
        Command::Serve(args) => serve::run(&args),
        Command::ControlPlane(args) => control_plane::run(&args),
        Command::Protoset(args) => protoset::run(&args),
        Command::Admin(command) => admin::run(&command),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "scopegate", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
