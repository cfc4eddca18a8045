//! Error shapes: the REST body `{"error":{message,type,param,code}}` and the Realtime `error` event.

use serde_json::{json, Value};

/// One validation failure, in OpenAI's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl FieldError {
    pub fn new(code: &str, message: impl Into<String>, param: Option<&str>) -> Self {
        FieldError {
            code: code.to_string(),
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    /// The REST error body for this failure (`type` is always `invalid_request_error`).
    pub fn rest_body(&self) -> Value {
        rest_error(
            &self.message,
            "invalid_request_error",
            self.param.as_deref(),
            Some(&self.code),
        )
    }
}

/// OpenAI's REST error body.
pub fn rest_error(message: &str, typ: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": typ, "param": param, "code": code}})
}

/// The body of a 401 for a missing or wrong key.
pub fn invalid_api_key(provided: Option<&str>) -> Value {
    let message = match provided {
        None => "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_string(),
        Some(key) => format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            mask_key(key)
        ),
    };
    rest_error(
        &message,
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}

/// `sk-pr************wxyz`: never echo a whole secret.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

/// The `error` server event. `client_event_id` is the offending client event's `event_id`, if any.
pub fn error_event(err: &FieldError, client_event_id: Option<&str>) -> Value {
    error_event_typed("invalid_request_error", err, client_event_id)
}

/// The `error` server event with an explicit error type (`server_error`, …).
pub fn error_event_typed(typ: &str, err: &FieldError, client_event_id: Option<&str>) -> Value {
    json!({
        "type": "error",
        "event_id": crate::ids::new_id("event_"),
        "error": {
            "type": typ,
            "code": err.code,
            "message": err.message,
            "param": err.param,
            "event_id": client_event_id,
        }
    })
}

pub const BETA_DISABLED_MESSAGE: &str =
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.";

pub fn beta_disabled() -> FieldError {
    FieldError::new("beta_api_shape_disabled", BETA_DISABLED_MESSAGE, None)
}

pub fn invalid_model(model: &str, param: Option<&str>) -> FieldError {
    FieldError::new(
        "invalid_model",
        format!("Model \"{model}\" is not supported in realtime mode."),
        param,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys_and_builds_documented_shapes() {
        assert_eq!(mask_key("sk-test-123456"), "sk-t******3456");
        let body = invalid_api_key(Some("sk-wrong-key-000"));
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["param"].is_null());
        let ev = error_event(
            &FieldError::new("invalid_value", "m", Some("type")),
            Some("evt_1"),
        );
        assert_eq!(ev["type"], "error");
        assert_eq!(ev["error"]["event_id"], "evt_1");
        assert!(ev["event_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("event_")));
    }
}
