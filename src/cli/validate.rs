//! `scopegate validate FILE...`: checks snapshots, route tables and server configurations
//! (detected by content);
//! exit 0 when all are valid, 1 when any is invalid (every error on stderr, one per line).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::cli::InputError;
use crate::rbac::model::{AccountSnapshot, FileFormat};
use crate::rbac::{Catalog, SnapshotError, compile};
use crate::route::RouteTable;

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A permission catalog replacing the embedded one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Files to validate (YAML, or JSON by extension).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// What a file holds, judged by its top-level keys.
enum FileKind {
    Snapshot,
    RouteTable,
    Config,
}

fn detect(text: &str, format: FileFormat) -> Result<FileKind, String> {
    let value: serde_yaml_ng::Value = match format {
        FileFormat::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?,
        FileFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string())?,
    };
    let has = |key: &str| value.get(key).is_some();
    // A configuration names its route table by path (`routes: FILE`); a route table lists them.
    let config_keys = crate::config::TOP_LEVEL_KEYS
        .iter()
        .any(|key| *key != "routes" && has(key));
    if config_keys || value.get("routes").is_some_and(|r| r.is_string() || r.is_null()) {
        Ok(FileKind::Config)
    } else if has("routes") {
        Ok(FileKind::RouteTable)
    } else if value.get("account").is_some_and(|a| a.is_string()) {
        Ok(FileKind::Snapshot)
    } else {
        Err(
            "not a snapshot (`account: <id>`), a route table (`routes:`) nor a configuration (`listen:`, `snapshot:`, ...)"
                .to_owned(),
        )
    }
}

/// Validates each file; prints one line per valid file on stdout and every error on stderr.
pub fn run(args: &ValidateArgs) -> Result<ExitCode, InputError> {
    let catalog = crate::cli::load_catalog(args.catalog.as_deref())?;
    let mut all_valid = true;
    for path in &args.files {
        match validate_file(path, &catalog) {
            Ok(summary) => println!("{}: {summary}", path.display()),
            Err(errors) => {
                all_valid = false;
                for error in errors {
                    eprintln!("{}: {error}", path.display());
                }
            }
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn validate_file(path: &Path, catalog: &Arc<Catalog>) -> Result<String, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read: {e}")])?;
    let format = FileFormat::of_path(path);
    match detect(&text, format).map_err(|e| vec![e])? {
        FileKind::Snapshot => {
            let snapshot = AccountSnapshot::parse(&text, format).map_err(|e| vec![e.to_string()])?;
            match compile(&snapshot, Arc::clone(catalog), None) {
                Ok(account) => {
                    let stats = account.stats();
                    Ok(format!(
                        "valid snapshot of account `{}` version {} ({} scopes, {} users, {} role assignments, {} tokens)",
                        account.account(),
                        account.version(),
                        stats.scopes,
                        stats.users,
                        stats.assignments,
                        stats.tokens
                    ))
                }
                Err(SnapshotError::Invalid { errors, .. }) => {
                    Err(errors.iter().map(ToString::to_string).collect())
                }
                Err(other) => Err(vec![other.to_string()]),
            }
        }
        FileKind::Config => {
            let mut config = crate::config::Config::parse(&text, format == FileFormat::Json)
                .map_err(|e| vec![format!("invalid configuration: {e}")])?;
            config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
            // every error at once: the fields' own rules, then the files they name
            let mut errors: Vec<String> = config
                .validate()
                .err()
                .map(|errors| errors.0.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            errors.extend(config.missing_files().iter().map(ToString::to_string));
            if !errors.is_empty() {
                return Err(errors);
            }
            let unsupported = config.unsupported();
            Ok(if unsupported.is_empty() {
                "valid configuration".to_owned()
            } else {
                format!(
                    "valid configuration (not yet supported, ignored by serve: {})",
                    unsupported.join(", ")
                )
            })
        }
        FileKind::RouteTable => {
            let is_known = |id: &str| catalog.permission_id(id).is_some();
            let parsed = match format {
                FileFormat::Yaml => RouteTable::from_yaml_str(&text, &is_known),
                FileFormat::Json => RouteTable::from_json_str(&text, &is_known),
            };
            parsed
                .map(|table| format!("valid route table ({} routes)", table.len()))
                .map_err(|errors| errors.to_string().lines().map(str::to_owned).collect())
        }
    }
}
