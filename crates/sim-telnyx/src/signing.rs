//! Webhook signatures: Ed25519 over `"{telnyx-timestamp}|{raw body}"`, base64 in
//! `telnyx-signature-ed25519`. `verify` is public so apps' tests can check what they receive.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// The signing key of the simulated account.
pub(crate) struct Signer {
    pair: Ed25519KeyPair,
}

impl Signer {
    pub fn from_seed(seed: &[u8; 32]) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| anyhow::anyhow!("invalid Ed25519 seed: {e}"))?;
        Ok(Signer { pair })
    }

    /// Raw 32-byte public key, base64 (as the Telnyx portal shows it).
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// base64 of the signature over `timestamp|body`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let mut msg = Vec::with_capacity(body.len() + 12);
        msg.extend_from_slice(timestamp.to_string().as_bytes());
        msg.push(b'|');
        msg.extend_from_slice(body);
        STANDARD.encode(self.pair.sign(&msg).as_ref())
    }
}

/// Checks a Telnyx webhook signature: `public_key_b64` is the portal key (32 raw bytes, base64).
/// Returns false on any decoding problem. No timestamp-age check: that is the caller's policy.
pub fn verify(public_key_b64: &str, timestamp: &str, body: &[u8], signature_b64: &str) -> bool {
    let (Ok(key), Ok(sig)) = (
        STANDARD.decode(public_key_b64),
        STANDARD.decode(signature_b64),
    ) else {
        return false;
    };
    if key.len() != 32 || sig.len() != 64 {
        return false;
    }
    let mut msg = Vec::with_capacity(body.len() + timestamp.len() + 1);
    msg.extend_from_slice(timestamp.as_bytes());
    msg.push(b'|');
    msg.extend_from_slice(body);
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&msg, &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_what_verify_accepts_and_nothing_else() {
        let s = Signer::from_seed(&[1u8; 32]).unwrap();
        let sig = s.sign(1_700_000_000, b"{\"a\":1}");
        let pk = s.public_key_base64();
        assert!(verify(&pk, "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify(&pk, "1700000001", b"{\"a\":1}", &sig));
        assert!(!verify(&pk, "1700000000", b"{\"a\": 1}", &sig));
        let other = Signer::from_seed(&[2u8; 32]).unwrap().public_key_base64();
        assert!(!verify(&other, "1700000000", b"{\"a\":1}", &sig));
    }
}
