//! `scopegate token new`: mints an API token. Prints the token once, then the snapshot entry
//! (id + sha256 secret_hash) to paste under the owner's `api_keys[].tokens`.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::authn::{TokenKind, mint};
use crate::cli::InputError;

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a new token.
    New(NewTokenArgs),
}

/// The owner type of a token.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenType {
    /// A user's personal access token.
    Pat,
    /// A service account's token.
    Sat,
}

/// Arguments of `token new`.
#[derive(Debug, Args)]
pub struct NewTokenArgs {
    /// The account identifier.
    #[arg(long)]
    pub account: String,
    /// `pat` (user) or `sat` (service account).
    #[arg(long = "type", value_enum)]
    pub token_type: TokenType,
    /// The token id (the third segment); random when omitted.
    #[arg(long)]
    pub id: Option<String>,
    /// Days the token stays valid.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// Mints and prints a token.
pub fn run(command: &TokenCommand) -> Result<ExitCode, InputError> {
    let TokenCommand::New(args) = command;
    let kind = match args.token_type {
        TokenType::Pat => TokenKind::Pat,
        TokenType::Sat => TokenKind::Sat,
    };
    let minted = mint(&args.account, kind, args.id.as_deref()).map_err(|e| InputError(e.to_string()))?;
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let until = now + Duration::days(i64::from(args.days));
    let format = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    println!("{}", minted.token);
    println!("# the token above is shown only once; add this entry under the owner's api_keys[].tokens:");
    println!("- identifier: {}", minted.id);
    println!("  id: {}", minted.id);
    println!("  secret_hash: \"{}\"", minted.secret_hash);
    println!("  valid_from: {}", format(now));
    println!("  valid_to: {}", format(until));
    Ok(ExitCode::SUCCESS)
}
