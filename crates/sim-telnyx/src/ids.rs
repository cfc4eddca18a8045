//! Identifier and timestamp formats as Telnyx uses them.

use base64::Engine;
use chrono::{SecondsFormat, Utc};

/// `v3:` followed by URL-safe base64 (opaque, safe to put in a URL path as is).
pub(crate) fn call_control_id() -> String {
    let mut bytes = [0u8; 30];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..14]);
    format!(
        "v3:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Stream ids appear upper-case in Telnyx's examples.
pub(crate) fn stream_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// ISO-8601 UTC with microseconds, e.g. `2025-09-11T12:34:01.931798Z`.
pub(crate) fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn unix_now() -> i64 {
    Utc::now().timestamp()
}
