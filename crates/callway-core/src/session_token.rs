//! Web-session tokens: short-lived, HMAC-SHA256 signed, carrying an opaque session id.
//! Minted by token-svc with the OpenAI client secret; checked by tools-svc on every tool call, so a
//! tool call can only come from a page that obtained a session from us.
//!
//! Format: `v1.<session_id>.<expires_unix>.<base64url(hmac)>`.

use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

/// Opaque id of one web conversation. Binds tool calls (and the lead they create) together.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebSessionId(String);

impl WebSessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        // SystemRandom only fails when the OS has no entropy source at all.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the operating system random source is unavailable");
        Self(format!("ws_{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.starts_with("ws_")
            && s.len() <= 64
            && s[3..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| Self(s.to_owned()))
    }
}

impl fmt::Debug for WebSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSessionId({})", self.0)
    }
}

impl serde::Serialize for WebSessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for WebSessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WebSessionId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a web session id"))
    }
}

impl fmt::Display for WebSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    #[error("session token missing")]
    Missing,
    #[error("session token malformed")]
    Malformed,
    #[error("session token signature invalid")]
    BadSignature,
    #[error("session token expired")]
    Expired,
}

/// Signs and checks web-session tokens with one server-side key.
#[derive(Clone)]
pub struct SessionTokens {
    key: hmac::Key,
}

impl fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionTokens(***)")
    }
}

impl SessionTokens {
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()),
        }
    }

    /// Mints a token for `session` that expires at `expires_unix` (seconds).
    pub fn mint(&self, session: &WebSessionId, expires_unix: i64) -> String {
        let payload = format!("v1.{}.{}", session.0, expires_unix);
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks signature first (constant time), then expiry against `now_unix`.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<WebSessionId, SessionTokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(SessionTokenError::Missing);
        }
        if token.len() > 256 {
            return Err(SessionTokenError::Malformed);
        }
        let (payload, tag) = token.rsplit_once('.').ok_or(SessionTokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SessionTokenError::Malformed)?;
        hmac::verify(&self.key, payload.as_bytes(), &tag)
            .map_err(|_| SessionTokenError::BadSignature)?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(id), Some(exp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionTokenError::Malformed);
        };
        let session = WebSessionId::parse(id).ok_or(SessionTokenError::Malformed)?;
        let exp: i64 = exp.parse().map_err(|_| SessionTokenError::Malformed)?;
        if now_unix >= exp {
            return Err(SessionTokenError::Expired);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(key: &str) -> SessionTokens {
        SessionTokens::new(&Secret::new(key))
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let t = tokens("k1-0123456789abcdef0123456789abcdef");
        let id = WebSessionId::generate();
        let tok = t.mint(&id, 1_000);
        assert_eq!(t.verify(&tok, 999), Ok(id));
        assert_eq!(t.verify(&tok, 1_000), Err(SessionTokenError::Expired));
    }

    #[test]
    fn forged_tampered_and_garbage_tokens_are_refused() {
        let t = tokens("k1-0123456789abcdef0123456789abcdef");
        let other = tokens("k2-0123456789abcdef0123456789abcdef");
        let id = WebSessionId::generate();
        let forged = other.mint(&id, 2_000);
        assert_eq!(t.verify(&forged, 1), Err(SessionTokenError::BadSignature));
        let tok = t.mint(&id, 2_000);
        let extended = tok.replacen(".2000.", ".9999.", 1);
        assert_eq!(t.verify(&extended, 1), Err(SessionTokenError::BadSignature));
        assert_eq!(t.verify("", 1), Err(SessionTokenError::Missing));
        assert_eq!(t.verify("abc", 1), Err(SessionTokenError::Malformed));
        assert_eq!(t.verify("a.b.c.!!!", 1), Err(SessionTokenError::Malformed));
        assert_eq!(
            t.verify(&"x".repeat(300), 1),
            Err(SessionTokenError::Malformed)
        );
    }
}
