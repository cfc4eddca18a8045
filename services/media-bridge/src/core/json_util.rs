//! Small helpers for reading loosely typed JSON: Telnyx sends most numbers as strings.

use serde_json::Value;

/// A field as a string, if it is one.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A field as an owned string, if it is one.
pub(crate) fn string_field(v: &Value, key: &str) -> Option<String> {
    str_field(v, key).map(str::to_owned)
}

/// A non-negative integer written either as a JSON number or as a decimal string (`"42"`).
pub(crate) fn u64_field(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An integer (possibly negative) written as a number or a string.
pub(crate) fn i64_field(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Shortens untrusted text before it goes into a log line.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
