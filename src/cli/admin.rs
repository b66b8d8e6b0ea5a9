//! `scopegate admin`: changes to the control plane's PostgreSQL database made from the command line
//! (see [`crate::control_plane::admin`]): `import` loads snapshot files, `bootstrap` makes an
//! account's first administrator and prints a token for them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::cli::{InputError, load_catalog};
use crate::control_plane::admin::{bootstrap, import_file, snapshot_files};
use crate::control_plane::postgres::{PgStore, connect};

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Load snapshot files into the database, one change per file (the file's account is created
    /// when missing and its document replaced; the file's `version` is ignored, the revision moves
    /// on by one). A file that does not parse or compile is refused, named on stderr, and nothing
    /// of it is written; the other files are still loaded, and the exit code is 1.
    Import(ImportArgs),
    /// Make ACCOUNT (if missing), USER (if missing) and USER's `_account_admin` assignment on
    /// `_all_account_level_resources` (unless one exists), then add a new personal API token for
    /// USER and print it, alone, on stdout. Safe to run again: the assignment stays single, and each
    /// run mints one more token (older ones keep working until they expire).
    Bootstrap(BootstrapArgs),
}

/// What every `admin` subcommand needs.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The PostgreSQL database (`postgres://user:password@host/db`); migrated first if needed.
    #[arg(long, value_name = "URL")]
    pub database: String,
    /// A permission catalog replacing the embedded one (changes are validated against it).
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// Arguments of `admin import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The database.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Snapshot files, or folders of them (`.yaml`/`.yml`/`.json`).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

/// Arguments of `admin bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The database.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The account identifier.
    #[arg(long)]
    pub account: String,
    /// The administrator's user identifier.
    #[arg(long)]
    pub user: String,
    /// Days the new token stays valid.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

fn runtime() -> Result<tokio::runtime::Runtime, InputError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError(format!("cannot start the runtime: {e}")))
}

async fn store(args: &DatabaseArgs) -> Result<PgStore, InputError> {
    let catalog = load_catalog(args.catalog.as_deref())?;
    let pool = connect(&args.database, 2)
        .await
        .map_err(|e| InputError(e.to_string()))?;
    Ok(PgStore::new(pool, Arc::clone(&catalog)))
}

/// Runs an `admin` subcommand.
pub fn run(command: &AdminCommand) -> Result<ExitCode, InputError> {
    let runtime = runtime()?;
    match command {
        AdminCommand::Import(args) => runtime.block_on(import(args)),
        AdminCommand::Bootstrap(args) => runtime.block_on(async {
            let store = store(&args.db).await?;
            let done = bootstrap(&store, &args.account, &args.user, args.days, "admin bootstrap")
                .await
                .map_err(|e| InputError(e.to_string()))?;
            eprintln!(
                "account `{}` at revision {}; the token below is shown only once",
                args.account, done.committed.after
            );
            println!("{}", done.token.token);
            Ok(ExitCode::SUCCESS)
        }),
    }
}

async fn import(args: &ImportArgs) -> Result<ExitCode, InputError> {
    let store = store(&args.db).await?;
    let mut refused = 0;
    for path in &args.paths {
        let files =
            snapshot_files(path).map_err(|e| InputError(format!("cannot read `{}`: {e}", path.display())))?;
        for file in files {
            match import_file(&store, &file, "admin import").await {
                Ok(committed) => eprintln!("{}: revision {}", file.display(), committed.after),
                Err(error) => {
                    refused += 1;
                    eprintln!("refused: {error}");
                }
            }
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
