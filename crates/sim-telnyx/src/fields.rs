//! Typed access to a JSON request body that collects Telnyx-style errors instead of failing on
//! the first one. `null` counts as absent.

use crate::api_error::ErrorItem;
use base64::Engine;
use serde_json::{Map, Value};

pub(crate) struct Fields<'a> {
    obj: &'a Map<String, Value>,
    pub errors: Vec<ErrorItem>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            errors: Vec::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    pub fn opt_str(&mut self, key: &str) -> Option<&'a str> {
        match self.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.errors.push(ErrorItem::invalid(
                    key,
                    format!("The '{key}' parameter must be a string."),
                ));
                None
            }
        }
    }

    pub fn req_str(&mut self, key: &str) -> Option<&'a str> {
        if !self.has(key) {
            self.errors.push(ErrorItem::missing(key));
            return None;
        }
        let s = self.opt_str(key)?;
        if s.trim().is_empty() {
            self.errors.push(ErrorItem::missing(key));
            return None;
        }
        Some(s)
    }

    pub fn opt_enum(&mut self, key: &str, allowed: &[&str]) -> Option<&'a str> {
        let s = self.opt_str(key)?;
        if allowed.contains(&s) {
            Some(s)
        } else {
            self.errors.push(ErrorItem::bad_enum(key, allowed));
            None
        }
    }

    pub fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.errors.push(ErrorItem::invalid(
                    key,
                    format!("The '{key}' parameter must be a boolean."),
                ));
                None
            }
        }
    }

    pub fn opt_int_in(&mut self, key: &str, lo: i64, hi: i64) -> Option<i64> {
        match self.get(key) {
            None => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (lo..=hi).contains(&i) => Some(i),
                _ => {
                    self.errors.push(ErrorItem::out_of_range(
                        key,
                        format!("The '{key}' parameter must be an integer between {lo} and {hi}."),
                    ));
                    None
                }
            },
            Some(_) => {
                self.errors.push(ErrorItem::invalid(
                    key,
                    format!("The '{key}' parameter must be an integer."),
                ));
                None
            }
        }
    }

    pub fn opt_int_one_of(&mut self, key: &str, allowed: &[i64]) -> Option<i64> {
        match self.get(key) {
            None => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if allowed.contains(&i) => Some(i),
                _ => {
                    let names: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    self.errors.push(ErrorItem::bad_enum(key, &names));
                    None
                }
            },
            Some(_) => {
                self.errors.push(ErrorItem::invalid(
                    key,
                    format!("The '{key}' parameter must be an integer."),
                ));
                None
            }
        }
    }

    /// A string at most `max` characters long.
    pub fn opt_str_max(&mut self, key: &str, max: usize) -> Option<&'a str> {
        let s = self.opt_str(key)?;
        if s.chars().count() > max {
            self.errors.push(ErrorItem::invalid(
                key,
                format!("The '{key}' parameter must be at most {max} characters long."),
            ));
            return None;
        }
        Some(s)
    }

    /// `client_state`: must be valid standard base64.
    pub fn opt_base64(&mut self, key: &str) -> Option<&'a str> {
        self.opt_str_where(key, is_base64, "a valid Base64 string")
    }

    /// An absolute http(s) URL.
    pub fn opt_http_url(&mut self, key: &str) -> Option<&'a str> {
        self.opt_str_where(
            key,
            |s| has_scheme(s, &["http://", "https://"]),
            "a valid http or https URL",
        )
    }

    /// A WebSocket URL (`ws://` or `wss://`).
    pub fn opt_ws_url(&mut self, key: &str) -> Option<&'a str> {
        self.opt_str_where(
            key,
            |s| has_scheme(s, &["ws://", "wss://"]),
            "a valid ws:// or wss:// URL",
        )
    }

    /// An optional string that must satisfy `ok`; otherwise Telnyx's "must be <what>" error.
    fn opt_str_where(
        &mut self,
        key: &str,
        ok: impl Fn(&str) -> bool,
        what: &str,
    ) -> Option<&'a str> {
        let s = self.opt_str(key)?;
        if ok(s) {
            return Some(s);
        }
        self.errors.push(ErrorItem::invalid(
            key,
            format!("The '{key}' parameter must be {what}."),
        ));
        None
    }
}

fn has_scheme(s: &str, schemes: &[&str]) -> bool {
    let lower = s.to_ascii_lowercase();
    schemes
        .iter()
        .any(|p| lower.starts_with(p) && lower.len() > p.len() && !s.contains(char::is_whitespace))
}

pub(crate) fn is_base64(s: &str) -> bool {
    !s.is_empty() && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

/// `+` then 7 to 15 digits, first digit not 0 (ITU-T E.164).
pub(crate) fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A dial destination: E.164 optionally followed by `,` and post-dial DTMF, or a SIP URI.
pub(crate) fn is_dial_target(s: &str) -> bool {
    if s.starts_with("sip:") || s.starts_with("sips:") {
        return s.contains('@') && !s.contains(char::is_whitespace);
    }
    match s.split_once(',') {
        Some((num, dtmf)) => {
            is_e164(num)
                && dtmf
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"wW*#,ABCD".contains(&b))
        }
        None => is_e164(s),
    }
}

/// The number part of a dial target (DTMF suffix removed).
pub(crate) fn dial_number(s: &str) -> &str {
    s.split_once(',').map(|(n, _)| n).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_rules() {
        assert!(is_e164("+33612345678"));
        assert!(!is_e164("0612345678"));
        assert!(!is_e164("+0612345678"));
        assert!(!is_e164("+33 6 12 34 56 78"));
        assert!(!is_e164("+1234567890123456"));
        assert!(is_dial_target("+18004247767,200"));
        assert!(!is_dial_target("+18004247767,2x"));
        assert!(is_dial_target("sip:alice@example.com"));
        assert!(!is_dial_target("33612345678"));
    }

    #[test]
    fn base64_rules() {
        assert!(is_base64("eyJjYWxsX2lkIjoiYWJjIn0="));
        assert!(!is_base64("not base64!"));
        assert!(!is_base64(""));
    }
}
