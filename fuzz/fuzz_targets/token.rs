//! Fuzzes API-token parsing: arbitrary bytes must never panic, a parsed token's parts must be
//! non-empty slices of the input, and an error must never echo the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::authn::parse_token;

fuzz_target!(|data: &[u8]| {
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
            if raw.len() > 8 {
                assert!(!error.to_string().contains(raw));
            }
        }
    }
});
