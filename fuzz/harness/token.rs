//! API-token harness: arbitrary bytes must never panic, a parsed token's parts must be non-empty
//! slices of the input, and an error must never echo the input.
//! Shared by `fuzz_targets/token.rs` and `tests/fuzz_replay.rs`.

use scopegate::authn::parse_token;

/// One input: the token text (non-UTF-8 input is skipped, as a header value would be refused).
pub fn run(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match parse_token(raw) {
        Ok(token) => {
            assert!(!token.id.is_empty() && !token.secret.is_empty());
            assert!(token.account.is_none_or(|a| !a.is_empty()));
            assert!(raw.ends_with(token.secret));
        }
        Err(error) => {
            // a token has dots and error messages have none, so an input that is merely a piece of
            // a fixed message (`ed api token: too few segme`) is not an echo
            if raw.len() > 8 && raw.contains('.') {
                assert!(!error.to_string().contains(raw));
            }
        }
    }
}
