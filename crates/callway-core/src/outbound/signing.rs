//! Standard Webhooks signing (standardwebhooks.com, "Signature scheme"): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 with the secret's bytes (the base64
//! after `whsec_`), sent as `webhook-signature: v1,{base64 signature}`. Ten lines of `ring`
//! rather than a second crypto stack; the tests verify with the specification authors' own
//! library (`standardwebhooks`), an independent implementation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// A business webhook secret (`whsec_…`). `Debug` never shows it.
#[derive(Clone)]
pub struct SigningSecret(ring::hmac::Key);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

impl SigningSecret {
    /// From `whsec_<base64 of 24 to 64 random bytes>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let b64 = s
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_")?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| "the part after whsec_ is not base64")?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("the secret must be 24 to 64 bytes".into());
        }
        Ok(SigningSecret(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &bytes,
        )))
    }

    /// The `webhook-signature` header value for this message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &str) -> String {
        let content = format!("{msg_id}.{timestamp}.{body}");
        let tag = ring::hmac::sign(&self.0, content.as_bytes());
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked_and_signatures_follow_the_scheme() {
        assert!(SigningSecret::parse("not-a-secret").is_err());
        assert!(SigningSecret::parse("whsec_!!!").is_err());
        assert!(SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 8]))).is_err());
        let s = SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 32]))).unwrap();
        let sig = s.sign("msg_1", 1_700_000_000, "{}");
        assert!(sig.starts_with("v1,"));
        assert_ne!(sig, s.sign("msg_1", 1_700_000_001, "{}"));
        assert_eq!(sig, s.sign("msg_1", 1_700_000_000, "{}"));
        assert!(!format!("{s:?}").contains("Bw"));
    }
}
