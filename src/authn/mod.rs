//! Credentials: Harness-style API tokens parsed, checked against the snapshot's stored hashes and
//! turned into principals. Pure: keys and snapshots are handed in, nothing is fetched here.

pub mod api_key;
pub mod error;

pub use api_key::{MintedToken, ParsedToken, TokenKind, mint, parse_token, verify_secret};
pub use error::TokenError;
