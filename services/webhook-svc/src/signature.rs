//! Telnyx webhook signatures: Ed25519 over `"{telnyx-timestamp}|{raw body}"`, checked on the exact
//! bytes received, before any JSON parsing, with a ±300 s window (what the current SDKs do).
//! Source: Telnyx developer documentation, "Webhook signing" (Ed25519 over `{timestamp}|{body}`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const TOLERANCE_SECS: i64 = 300;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo, in case the key is pasted in that form.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature or timestamp header")]
    MissingHeader,
    #[error("malformed signature or timestamp")]
    Malformed,
    #[error("timestamp outside the accepted window")]
    Stale,
    #[error("signature does not verify")]
    Forged,
}

/// The account's webhook public key (32 raw bytes).
#[derive(Clone)]
pub struct WebhookKey([u8; 32]);

impl WebhookKey {
    /// From the portal's base64 (raw 32 bytes, or a 44-byte SPKI DER).
    pub fn from_base64(b64: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| "TELNYX_PUBLIC_KEY is not base64".to_owned())?;
        let raw = match bytes.len() {
            32 => bytes,
            44 if bytes[..12] == SPKI_PREFIX => bytes[12..].to_vec(),
            n => {
                return Err(format!(
                    "TELNYX_PUBLIC_KEY decodes to {n} bytes, expected a 32-byte Ed25519 key"
                ))
            }
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw);
        Ok(Self(key))
    }

    pub fn verify(
        &self,
        signature_b64: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let (sig, ts) = match (signature_b64, timestamp) {
            (Some(s), Some(t)) if !s.is_empty() && !t.is_empty() => (s, t),
            _ => return Err(SignatureError::MissingHeader),
        };
        let ts_value: i64 = ts.trim().parse().map_err(|_| SignatureError::Malformed)?;
        // `abs_diff` cannot overflow: `now - i64::MIN` would (a panic in debug builds).
        if now.abs_diff(ts_value) > TOLERANCE_SECS.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let sig = STANDARD
            .decode(sig.trim())
            .map_err(|_| SignatureError::Malformed)?;
        if sig.len() != 64 {
            return Err(SignatureError::Malformed);
        }
        let mut message = Vec::with_capacity(ts.len() + 1 + body.len());
        message.extend_from_slice(ts.as_bytes());
        message.push(b'|');
        message.extend_from_slice(body);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.0)
            .verify(&message, &sig)
            .map_err(|_| SignatureError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pair() -> (Ed25519KeyPair, WebhookKey) {
        let kp = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let key = WebhookKey::from_base64(&STANDARD.encode(kp.public_key().as_ref())).unwrap();
        (kp, key)
    }

    fn sign(kp: &Ed25519KeyPair, ts: &str, body: &[u8]) -> String {
        let mut m = ts.as_bytes().to_vec();
        m.push(b'|');
        m.extend_from_slice(body);
        STANDARD.encode(kp.sign(&m).as_ref())
    }

    #[test]
    fn accepts_a_fresh_signature_and_refuses_everything_else() {
        let (kp, key) = pair();
        let body = br#"{"data":{"id":"1"}}"#;
        let sig = sign(&kp, "1000", body);
        assert_eq!(key.verify(Some(&sig), Some("1000"), body, 1000), Ok(()));
        assert_eq!(key.verify(Some(&sig), Some("1000"), body, 1300), Ok(()));
        assert_eq!(
            key.verify(Some(&sig), Some("1000"), body, 1301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            key.verify(Some(&sig), Some("1000"), body, 699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            key.verify(Some(&sig), Some("1001"), body, 1000),
            Err(SignatureError::Forged)
        );
        assert_eq!(
            key.verify(Some(&sig), Some("1000"), br#"{"data":{"id":"2"}}"#, 1000),
            Err(SignatureError::Forged)
        );
        assert_eq!(
            key.verify(None, Some("1000"), body, 1000),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            key.verify(Some(&sig), None, body, 1000),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            key.verify(Some("!!"), Some("1000"), body, 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            key.verify(Some(&sig), Some("soon"), body, 1000),
            Err(SignatureError::Malformed)
        );
        let other = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        assert_eq!(
            key.verify(Some(&sign(&other, "1000", body)), Some("1000"), body, 1000),
            Err(SignatureError::Forged)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let (kp, key) = pair();
        let body = b"{}";
        for ts in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let t = ts.to_string();
            let sig = sign(&kp, &t, body);
            for now in [0, 1_700_000_000, i64::MAX, i64::MIN] {
                if now.abs_diff(ts) <= 300 {
                    continue;
                }
                assert_eq!(
                    key.verify(Some(&sig), Some(&t), body, now),
                    Err(SignatureError::Stale),
                    "ts {ts} now {now}"
                );
            }
        }
    }

    #[test]
    fn keys_are_raw_or_spki_and_nothing_else() {
        let (kp, _) = pair();
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(kp.public_key().as_ref());
        assert!(WebhookKey::from_base64(&STANDARD.encode(&der)).is_ok());
        assert!(WebhookKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(WebhookKey::from_base64("KEY0123").is_err());
    }
}
