//! JSON errors without the data that caused them. serde_json's messages quote the offending
//! value (`invalid type: integer `33612345678`, expected a string`): a phone number sent as a
//! JSON number would then reach logs and traces in clear, and no text scrubber can tell a bare
//! digit run from a count. What we log or record is only the kind of error and where it is.

/// `"<kind> at line L column C"`, never the value.
pub fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected type or value",
        Category::Eof => "unexpected end of input",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// A JSON body error fit for logs and spans (its `Display` is [`describe`]).
#[derive(Debug)]
pub struct RedactedJsonError(String);

impl RedactedJsonError {
    pub fn new(e: &serde_json::Error) -> Self {
        Self(describe(e))
    }
}

impl std::fmt::Display for RedactedJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid JSON body: {}", self.0)
    }
}

impl std::error::Error for RedactedJsonError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Lead {
        phone: String,
    }

    #[test]
    fn a_number_sent_as_a_json_number_is_not_in_the_description() {
        let e = serde_json::from_str::<Lead>(r#"{"phone": 33612345678}"#).unwrap_err();
        assert!(
            e.to_string().contains("33612345678"),
            "serde quotes it: {e}"
        );
        let d = describe(&e);
        assert!(!d.contains("612345678"), "{d}");
        assert_eq!(d, "unexpected type or value at line 1 column 21");
        let r = RedactedJsonError::new(&e);
        assert!(!format!("{r} {r:?}").contains("612345678"));
    }
}
