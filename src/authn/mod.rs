//! Credentials: Harness-style API tokens and JWTs, parsed and checked against keys and snapshots
//! that are handed in (nothing is fetched here), and turned into principals.

pub mod api_key;
pub mod error;
pub mod header;
pub mod jwk;
pub mod jwt;

pub use api_key::{MintedToken, ParsedToken, TokenKind, mint, parse_token, verify_secret};
pub use error::{JwtError, KeyError, TokenError};
