//! Request fields that `AnswerRequest` and `TransferCallRequest` share (team-telnyx/openapi
//! `openapi/spec3.yml`): webhook routing, recording options, SIP header lists. Each is checked
//! against the spec's schema; what the simulator does not act on is still validated, because
//! Telnyx refuses a malformed value whether or not the simulator would use it.

use crate::api_error::ErrorItem;
use crate::dial_request::{parse_retry_policies, parse_webhook_urls};
use crate::fields::Fields;
use serde_json::Value;
use std::collections::HashMap;

/// Where a call's webhooks go and how failed ones are retried.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    pub webhook_url: Option<String>,
    pub webhook_urls: HashMap<String, String>,
    pub retry_policies: HashMap<String, Vec<u64>>,
}

/// `webhook_url`, `webhook_url_method`, `webhook_urls`, `webhook_urls_method`,
/// `webhook_retries_policies`.
pub(crate) fn parse_routing(f: &mut Fields<'_>) -> Routing {
    let webhook_url = f.opt_http_url("webhook_url").map(str::to_owned);
    f.opt_enum("webhook_url_method", &["POST", "GET"]);
    let webhook_urls = parse_webhook_urls(f);
    f.opt_enum("webhook_urls_method", &["POST", "GET"]);
    let retry_policies = parse_retry_policies(f);
    Routing {
        webhook_url,
        webhook_urls,
        retry_policies,
    }
}

/// `record` and its companions (same constraints in `AnswerRequest`, `TransferCallRequest`
/// and `BridgeRequest`).
pub(crate) fn check_record_options(f: &mut Fields<'_>) {
    f.opt_enum("record", &["record-from-answer"]);
    f.opt_enum("record_channels", &["single", "dual"]);
    if let Some(name) = f.opt_str("record_custom_file_name") {
        if name.is_empty() || name.chars().count() > 40 {
            f.errors.push(ErrorItem::invalid(
                "record_custom_file_name",
                "The 'record_custom_file_name' parameter must be 1 to 40 characters long.",
            ));
        }
    }
    f.opt_enum("record_format", &["wav", "mp3"]);
    f.opt_int_in("record_max_length", 0, 43_200);
    f.opt_int_in("record_timeout_secs", 0, i64::from(i32::MAX));
    f.opt_enum("record_track", &["both", "inbound", "outbound"]);
    f.opt_enum("record_trim", &["trim-silence"]);
}

/// `custom_headers` (schema `CustomSipHeader`: required string `name` and `value`) or
/// `sip_headers` (schema `SipHeader`: `name` is the enum `User-to-User`).
pub(crate) fn check_header_list(f: &mut Fields<'_>, key: &str, names: Option<&[&str]>) {
    let Some(v) = f.raw(key) else {
        return;
    };
    let ok = v.as_array().is_some_and(|items| {
        items.iter().all(|h| {
            let name = h.get("name").and_then(Value::as_str);
            let value = h.get("value").and_then(Value::as_str);
            match (name, value, names) {
                (Some(n), Some(_), Some(allowed)) => allowed.contains(&n),
                (Some(_), Some(_), None) => true,
                _ => false,
            }
        })
    });
    if !ok {
        let detail = match names {
            Some(allowed) => format!(
                "The '{key}' parameter must be an array of {{name, value}} with name one of: {}.",
                allowed.join(", ")
            ),
            None => format!("The '{key}' parameter must be an array of {{name, value}} strings."),
        };
        f.errors.push(ErrorItem::invalid(key, detail));
    }
}

/// A field whose schema is an object (its inner fields are not simulated).
pub(crate) fn check_object(f: &mut Fields<'_>, key: &str) {
    if f.raw(key).is_some_and(|v| !v.is_object()) {
        f.errors.push(ErrorItem::invalid(
            key,
            format!("The '{key}' parameter must be an object."),
        ));
    }
}

/// A comma-separated codec list whose every entry is one of `allowed`.
pub(crate) fn check_codec_list(f: &mut Fields<'_>, key: &str, allowed: &[&str]) {
    let Some(list) = f.opt_str(key) else {
        return;
    };
    if list.split(',').any(|c| !allowed.contains(&c.trim())) {
        f.errors.push(ErrorItem::invalid(
            key,
            format!(
                "The '{key}' parameter must be a comma-separated list of: {}.",
                allowed.join(", ")
            ),
        ));
    }
}

/// A UUID in its canonical 8-4-4-4-12 hexadecimal form (`format: uuid`).
pub(crate) fn check_uuid(f: &mut Fields<'_>, key: &str) {
    let Some(s) = f.opt_str(key) else {
        return;
    };
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        f.errors.push(ErrorItem::invalid(
            key,
            format!("The '{key}' parameter must be a UUID."),
        ));
    }
}
