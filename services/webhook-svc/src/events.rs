//! The webhook envelope `{data: {id, event_type, occurred_at, payload}, meta}`, parsed leniently:
//! unknown fields and event types are fine (Telnyx adds fields the spec does not list). What we
//! act on is parsed into enums here, at the edge. Result values are the spec's
//! (team-telnyx/openapi `spec3.yml`: `CallMachinePremiumDetectionEnded`,
//! `CallMachinePremiumGreetingEnded`, `CallMachineDetectionEnded`, `CallMachineGreetingEnded`,
//! `CallSpeakEnded`).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub data: EventData,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("call_control_id", &self.call_control_id)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub id: String,
    pub event_type: String,
    #[serde(default)]
    pub payload: Payload,
}

/// Only what we read. `from` is read for an incoming call only (to find the caller's lead) and
/// is never logged; `Debug` leaves it out.
#[derive(Default, Deserialize)]
pub struct Payload {
    /// `incoming` or `outgoing` (`call.initiated`).
    pub direction: Option<String>,
    /// The caller's number, for an incoming call.
    pub from: Option<String>,
    pub call_control_id: Option<String>,
    pub call_session_id: Option<String>,
    /// `call.hangup`: when the call started and ended (RFC 3339).
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub client_state: Option<String>,
    /// AMD result.
    pub result: Option<String>,
    pub hangup_cause: Option<String>,
    pub failure_reason: Option<String>,
    /// `call.speak.ended`: `completed`, `call_hangup` or `cancelled_amd`.
    pub status: Option<String>,
}

/// What answering machine detection concluded (`…detection.ended`, premium or standard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdResult {
    /// `human_residence`, `human_business` (premium) or `human` (standard).
    Human,
    Machine,
    /// Premium: answered, but nothing was said.
    Silence,
    /// Premium: a fax machine.
    Fax,
    /// No decision within the analysis time, or a value we do not know.
    NotSure,
}

impl AmdResult {
    fn parse(result: Option<&str>) -> Self {
        match result {
            Some("human" | "human_residence" | "human_business") => AmdResult::Human,
            Some("machine") => AmdResult::Machine,
            Some("silence") => AmdResult::Silence,
            Some("fax_detected") => AmdResult::Fax,
            _ => AmdResult::NotSure,
        }
    }
}

/// A machine's greeting is over (`…greeting.ended`): its recording runs (or it timed out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreetingEnd {
    /// `beep_detected`: the recorder is listening now.
    Beep,
    /// Premium `no_beep_detected` (beep wait timed out) or standard `ended`.
    NoBeep,
    /// Standard `not_sure` (30 s timeout without a decision), or a value we do not know.
    Unsure,
}

impl GreetingEnd {
    fn parse(result: Option<&str>) -> Self {
        match result {
            Some("beep_detected") => GreetingEnd::Beep,
            Some("no_beep_detected" | "ended") => GreetingEnd::NoBeep,
            _ => GreetingEnd::Unsure,
        }
    }
}

/// The events we act on; everything else is acknowledged and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    Initiated,
    Answered,
    Amd(AmdResult),
    Greeting(GreetingEnd),
    StreamingStarted,
    StreamingFailed,
    /// `call.speak.ended`; `completed` false for `cancelled_amd`, `call_hangup` and unknown.
    SpeakEnded {
        completed: bool,
    },
    Hangup {
        cause: String,
    },
    Other,
}

impl CallEvent {
    pub fn from(data: &EventData) -> Self {
        let p = &data.payload;
        match data.event_type.as_str() {
            "call.initiated" => CallEvent::Initiated,
            "call.answered" => CallEvent::Answered,
            "call.machine.premium.detection.ended" | "call.machine.detection.ended" => {
                CallEvent::Amd(AmdResult::parse(p.result.as_deref()))
            }
            "call.machine.premium.greeting.ended" | "call.machine.greeting.ended" => {
                CallEvent::Greeting(GreetingEnd::parse(p.result.as_deref()))
            }
            "streaming.started" => CallEvent::StreamingStarted,
            "streaming.failed" => CallEvent::StreamingFailed,
            "call.speak.ended" => CallEvent::SpeakEnded {
                completed: p.status.as_deref() == Some("completed"),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, result: Option<&str>) -> CallEvent {
        CallEvent::from(&EventData {
            id: "e".into(),
            event_type: event_type.into(),
            payload: Payload {
                result: result.map(str::to_owned),
                ..Default::default()
            },
        })
    }

    #[test]
    fn every_amd_result_of_the_spec_maps_to_a_verdict() {
        let premium = "call.machine.premium.detection.ended";
        for (r, want) in [
            ("human_residence", AmdResult::Human),
            ("human_business", AmdResult::Human),
            ("machine", AmdResult::Machine),
            ("silence", AmdResult::Silence),
            ("fax_detected", AmdResult::Fax),
            ("not_sure", AmdResult::NotSure),
            ("something_new", AmdResult::NotSure),
        ] {
            assert_eq!(event(premium, Some(r)), CallEvent::Amd(want), "{r}");
        }
        let standard = "call.machine.detection.ended";
        assert_eq!(
            event(standard, Some("human")),
            CallEvent::Amd(AmdResult::Human)
        );
        assert_eq!(
            event(standard, Some("machine")),
            CallEvent::Amd(AmdResult::Machine)
        );
        assert_eq!(event(standard, None), CallEvent::Amd(AmdResult::NotSure));
        let greeting = "call.machine.premium.greeting.ended";
        assert_eq!(
            event(greeting, Some("beep_detected")),
            CallEvent::Greeting(GreetingEnd::Beep)
        );
        assert_eq!(
            event(greeting, Some("no_beep_detected")),
            CallEvent::Greeting(GreetingEnd::NoBeep)
        );
        assert_eq!(
            event("call.machine.greeting.ended", Some("not_sure")),
            CallEvent::Greeting(GreetingEnd::Unsure)
        );
    }
}
