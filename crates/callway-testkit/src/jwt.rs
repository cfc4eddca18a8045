//! HS256 JWTs as Supabase's legacy keys are: `{"role": "...", "iss": "supabase"}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// A role key valid for ten years, as the Supabase dashboard hands them out.
pub fn role_key(secret: &str, role: &str) -> String {
    hs256(
        secret,
        &serde_json::json!({"role": role, "iss": "supabase", "iat": 1_700_000_000, "exp": 2_000_000_000}),
    )
}
