//! Media socket authentication: the one-time token in the stream URL and the per-call stream
//! secret Telnyx sends back in `x-telnyx-streaming-auth-token` (Telnyx, "Stream call media over WebSocket": `stream_auth_token`).

use ring::hmac;

/// Header Telnyx sets from the dial's `stream_auth_token`.
pub const AUTH_HEADER: &str = "x-telnyx-streaming-auth-token";

/// The `token` query parameter, if present and plausible. Tokens are ours (`st_` + base64url), so
/// anything needing percent-decoding is not one of them.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Constant-time comparison of the presented secret with the expected one. ring's public
/// constant-time helper is deprecated, so compare HMAC tags under a throw-away random key: the
/// comparison inside `hmac::verify` is constant time and leaks nothing about `expected`.
pub fn secret_matches(presented: Option<&str>, expected: &str) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    if expected.is_empty() {
        return false;
    }
    let rng = ring::rand::SystemRandom::new();
    let Ok(key) = hmac::Key::generate(hmac::HMAC_SHA256, &rng) else {
        return false;
    };
    let tag = hmac::sign(&key, expected.as_bytes());
    hmac::verify(&key, presented.as_bytes(), tag.as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_and_refuses_odd_ones() {
        assert_eq!(query_token(Some("a=1&token=st_a-b_c")), Some("st_a-b_c"));
        assert_eq!(query_token(Some("token=")), None);
        assert_eq!(query_token(Some("token=st_%41")), None);
        assert_eq!(query_token(None), None);
        assert_eq!(
            query_token(Some(&format!("token={}", "a".repeat(65)))),
            None
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches(Some("ss_1"), "ss_1"));
        assert!(!secret_matches(Some("ss_2"), "ss_1"));
        assert!(!secret_matches(Some("ss_1x"), "ss_1"));
        assert!(!secret_matches(None, "ss_1"));
        assert!(!secret_matches(Some(""), ""));
    }
}
