//! The web agent's tools, executed on the server from the model's own function calls (received on
//! the sideband), never on a browser request. Every argument is re-validated; the facts that
//! matter (which session, which client) come from the server's record of the call, not the model.

mod save_lead;
mod trigger_call;

pub use save_lead::save_lead;
pub use save_lead::SaveLeadOutput;
pub use trigger_call::{place_callback, prepare_callback, prepare_retry, PreparedCallback};

use crate::error::ToolsError;
use serde::Deserialize;

/// A function call the model made, parsed at the edge.
#[derive(Debug)]
pub enum ToolCall {
    SaveLead(SaveLeadArgs),
    TriggerCall(TriggerCallArgs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveLeadArgs {
    pub first_name: String,
    pub last_name: String,
    /// Digits as dictated; a JSON number is refused (it would lose a leading 0).
    pub phone: String,
    pub consent: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerCallArgs {
    pub lead_id: String,
}

/// Largest arguments text we parse (the schemas allow a few hundred bytes).
const MAX_ARGUMENTS_BYTES: usize = 8 * 1024;

impl ToolCall {
    pub fn parse(name: &str, arguments: &str) -> Result<Self, ToolsError> {
        if arguments.len() > MAX_ARGUMENTS_BYTES {
            return Err(ToolsError::InvalidArguments("too long".into()));
        }
        let bad = |e: serde_json::Error| ToolsError::InvalidArguments(format!("{e:.80}"));
        match name {
            "save_lead" => serde_json::from_str(arguments)
                .map(ToolCall::SaveLead)
                .map_err(bad),
            "trigger_call" => serde_json::from_str(arguments)
                .map(ToolCall::TriggerCall)
                .map_err(bad),
            other => Err(ToolsError::UnknownTool(other.chars().take(64).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_parsed_strictly() {
        assert!(matches!(
            ToolCall::parse(
                "save_lead",
                r#"{"first_name":"Marie","last_name":"Dupont","phone":"06 12 34 56 78","consent":true}"#
            ),
            Ok(ToolCall::SaveLead(_))
        ));
        for bad in [
            r#"{"first_name":"Marie","last_name":"Dupont","phone":612345678,"consent":true}"#,
            r#"{"first_name":"Marie","last_name":"Dupont","phone":"06","consent":true,"admin":true}"#,
            r#"{"first_name":"Marie"}"#,
            "not json",
        ] {
            assert!(
                matches!(
                    ToolCall::parse("save_lead", bad),
                    Err(ToolsError::InvalidArguments(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ToolCall::parse("trigger_call", r#"{"lead_id":"x","summary":"y"}"#),
            Err(ToolsError::InvalidArguments(_))
        ));
        assert!(matches!(
            ToolCall::parse("end_call", "{}"),
            Err(ToolsError::UnknownTool(_))
        ));
        assert!(matches!(
            ToolCall::parse(
                "save_lead",
                &format!("{{\"first_name\":\"{}\"}}", "a".repeat(9_000))
            ),
            Err(ToolsError::InvalidArguments(_))
        ));
    }
}
