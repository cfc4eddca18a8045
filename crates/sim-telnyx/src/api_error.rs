//! Telnyx REST error bodies: `{"errors":[{"code","title","detail","source":{"pointer"},"meta":{"url"}}]}`.
//! `code` is a string of digits.

use serde_json::{json, Value};

/// One entry of the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorItem {
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub pointer: Option<String>,
}

impl ErrorItem {
    pub fn new(code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        ErrorItem {
            code,
            title,
            detail: detail.into(),
            pointer: None,
        }
    }

    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "meta": {"url": format!("https://developers.telnyx.com/docs/overview/errors/{}", self.code)},
        });
        if let Some(p) = &self.pointer {
            v["source"] = json!({ "pointer": p });
        }
        v
    }

    pub fn missing(field: &str) -> Self {
        ErrorItem::new(
            "10004",
            "Missing required parameter",
            format!("The '{field}' parameter is required."),
        )
        .at(format!("/{field}"))
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ErrorItem::new("10015", "Invalid value", detail).at(format!("/{field}"))
    }

    pub fn not_e164(field: &str) -> Self {
        ErrorItem::new(
            "10016",
            "Phone number must be in +E164 format",
            format!("The '{field}' parameter must be a phone number in +E164 format."),
        )
        .at(format!("/{field}"))
    }

    pub fn bad_enum(field: &str, allowed: &[&str]) -> Self {
        ErrorItem::new(
            "10032",
            "Invalid enumerated value",
            format!(
                "The '{field}' parameter must be one of: {}.",
                allowed.join(", ")
            ),
        )
        .at(format!("/{field}"))
    }

    pub fn out_of_range(field: &str, detail: impl Into<String>) -> Self {
        ErrorItem::new("10033", "Value outside of range", detail).at(format!("/{field}"))
    }
}

/// An error response: HTTP status plus the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub errors: Vec<ErrorItem>,
}

impl ApiError {
    pub fn one(status: u16, item: ErrorItem) -> Self {
        ApiError {
            status,
            errors: vec![item],
        }
    }

    pub fn unprocessable(errors: Vec<ErrorItem>) -> Self {
        ApiError {
            status: 422,
            errors,
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::one(
            401,
            ErrorItem::new(
                "10009",
                "Authentication failed",
                "Could not understand the provided credentials.",
            ),
        )
    }

    pub fn not_found() -> Self {
        ApiError::one(
            404,
            ErrorItem::new(
                "10005",
                "Resource not found",
                "The requested resource or URL could not be found.",
            ),
        )
    }

    pub fn bad_json(detail: impl Into<String>) -> Self {
        ApiError::one(400, ErrorItem::new("10015", "Bad Request", detail))
    }

    pub fn bad_encoding() -> Self {
        ApiError::one(
            400,
            ErrorItem::new(
                "10028",
                "Character encoding error",
                "The request body could not be decoded as UTF-8.",
            ),
        )
    }

    pub fn invalid_call_control_id() -> Self {
        ApiError::one(
            422,
            ErrorItem::new(
                "90015",
                "Invalid Call Control ID",
                "The call_control_id provided was not valid.",
            )
            .at("/call_control_id"),
        )
    }

    pub fn call_ended() -> Self {
        ApiError::one(
            422,
            ErrorItem::new(
                "90018",
                "Call has already ended",
                "This call is no longer active and can't receive commands.",
            ),
        )
    }

    pub fn not_answered() -> Self {
        ApiError::one(
            422,
            ErrorItem::new(
                "90034",
                "Call not answered yet",
                "This command can only be issued on an answered call.",
            ),
        )
    }

    pub fn streaming_in_use() -> Self {
        ApiError::one(
            422,
            ErrorItem::new(
                "90045",
                "Media Streaming is used",
                "A media stream is already active on this call; only one stream per call is allowed.",
            ),
        )
    }

    /// 500 `10007`, what Telnyx answers when it failed internally.
    pub fn internal() -> Self {
        ApiError::one(
            500,
            ErrorItem::new("10007", "Unexpected error", "An unexpected error occurred."),
        )
    }

    /// 503 `10007`: Telnyx temporarily unavailable.
    pub fn unavailable() -> Self {
        ApiError::one(
            503,
            ErrorItem::new(
                "10007",
                "Service unavailable",
                "The service is temporarily unavailable.",
            ),
        )
    }

    pub fn codes(&self) -> Vec<String> {
        self.errors.iter().map(|e| e.code.to_string()).collect()
    }

    pub fn body(&self) -> Value {
        json!({ "errors": self.errors.iter().map(ErrorItem::to_json).collect::<Vec<_>>() })
    }
}
