//! `scopegate protoset [--output FILE]`: writes the binary `FileDescriptorSet` of every service
//! scopegate serves ([`crate::proto::FILE_DESCRIPTOR_SET`]: Envoy's ext_authz, gRPC health, the
//! control plane's `SnapshotService`, every import included), for `ghz --protoset` or
//! `grpcurl -protoset` where server reflection is off. To stdout when no file is given, but never
//! to a terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::InputError;

/// Arguments of `protoset`.
#[derive(Debug, Args)]
pub struct ProtosetArgs {
    /// Where to write it; default: stdout (refused when stdout is a terminal).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Writes the descriptor set.
pub fn run(args: &ProtosetArgs) -> Result<ExitCode, InputError> {
    let bytes = crate::proto::FILE_DESCRIPTOR_SET;
    match &args.output {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|e| InputError(format!("cannot write `{}`: {e}", path.display())))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            if stdout.is_terminal() {
                return Err(InputError(
                    "the protoset is binary: give --output FILE or redirect stdout".to_owned(),
                ));
            }
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| InputError(format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
