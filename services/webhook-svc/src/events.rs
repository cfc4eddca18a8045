//! The webhook envelope `{data: {id, event_type, occurred_at, payload}, meta}`, parsed leniently:
//! unknown fields and event types are fine (Telnyx adds fields the spec does not list).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub id: String,
    pub event_type: String,
    #[serde(default)]
    pub payload: Payload,
}

#[derive(Debug, Default, Deserialize)]
pub struct Payload {
    pub call_control_id: Option<String>,
    pub client_state: Option<String>,
    /// AMD result.
    pub result: Option<String>,
    pub hangup_cause: Option<String>,
    pub failure_reason: Option<String>,
}

/// The events we act on; everything else is acknowledged and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    Initiated,
    Answered,
    Machine,
    Human,
    AmdUnsure,
    StreamingStarted,
    StreamingFailed,
    SpeakEnded,
    Hangup { cause: String },
    Other,
}

impl CallEvent {
    pub fn from(data: &EventData) -> Self {
        let p = &data.payload;
        match data.event_type.as_str() {
            "call.initiated" => CallEvent::Initiated,
            "call.answered" => CallEvent::Answered,
            "call.machine.premium.detection.ended" | "call.machine.detection.ended" => {
                match p.result.as_deref() {
                    Some("machine") | Some("fax_detected") => CallEvent::Machine,
                    Some("human") | Some("human_residence") | Some("human_business") => {
                        CallEvent::Human
                    }
                    _ => CallEvent::AmdUnsure,
                }
            }
            "streaming.started" => CallEvent::StreamingStarted,
            "streaming.failed" => CallEvent::StreamingFailed,
            "call.speak.ended" => CallEvent::SpeakEnded,
            "call.hangup" => CallEvent::Hangup {
                cause: p
                    .hangup_cause
                    .clone()
                    .unwrap_or_else(|| "unspecified".into()),
            },
            _ => CallEvent::Other,
        }
    }
}
