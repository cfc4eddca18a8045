//! Scripted conversations.
//!
//! A scenario is an ordered list of steps. Each time the simulated model must answer, it takes the
//! next step if that step's `on` matches what triggered the response; otherwise it says
//! `fallback_say` and records a mismatch (see `SessionRecord::scenario_mismatches`).
//!
//! Triggers:
//! * `session_start`: a `response.create` before any user turn (the page or the bridge asks the
//!   agent to greet). The real model never speaks unprompted, nor does the simulator.
//! * `user_turn`: a user turn was committed (server VAD end of speech with `create_response`, or a
//!   manual `input_audio_buffer.commit` / user `conversation.item.create` then `response.create`).
//! * `tool_output`: `response.create` after one or more `function_call_output` items were added.
//!
//! A step may `say` a line (audio + transcript), `call` a function tool, or both (speak, then call,
//! in one response). `say_wav` names a 16-bit PCM mono WAV file played instead of the synthetic
//! voice (the transcript is still `say`). `expect_transcript` is the user's utterance for a
//! `user_turn` step: it becomes the input transcription (when enabled) and the user item's transcript.
//!
//! ```json
//! {"steps": [
//!   {"on": "session_start", "say": "Bonjour, je suis l'agent IA de Callway."},
//!   {"on": "user_turn", "expect_transcript": "je veux être rappelé", "say": "Avec plaisir."},
//!   {"on": "user_turn", "call": {"name": "save_lead", "arguments": {"first_name": "Marie"}}},
//!   {"on": "tool_output", "say": "C'est noté."}
//! ],
//!  "fallback_say": "Pardon, pouvez-vous répéter ?",
//!  "ms_per_char": 60}
//! ```
//! A call is only made if the session declares a function tool of that name (a real model cannot
//! call an undeclared tool) and the arguments carry the tool's `required` properties; otherwise the
//! mismatch is recorded and the fallback line is said instead. A string argument `"{{output.FIELD}}"`
//! takes that field of the last `function_call_output` (e.g. the `lead_id` that `save_lead` returned).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What makes the model answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    SessionStart,
    UserTurn,
    ToolOutput,
    /// A system message the client added mid-call, then `response.create`.
    Notice,
}

/// A function call the model makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub name: String,
    /// A JSON object; sent as a JSON string in `arguments`.
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// One scripted model turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub on: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_transcript: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say_wav: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<ToolCall>,
}

/// An ordered script for the simulated model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub steps: Vec<Step>,
    #[serde(default = "default_fallback")]
    pub fallback_say: String,
    /// Speaking rate of the synthetic voice (milliseconds of audio per character).
    #[serde(default = "default_ms_per_char")]
    pub ms_per_char: u32,
}

fn default_fallback() -> String {
    "Pardon, pouvez-vous répéter ?".into()
}

fn default_ms_per_char() -> u32 {
    60
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::default_sandbox()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("scenario step {0}: needs `say`, `say_wav` or `call`")]
    EmptyStep(usize),
    #[error("scenario step {0}: `call.arguments` must be a JSON object")]
    BadArguments(usize),
    #[error("scenario step {0}: `expect_transcript` only makes sense on a `user_turn` step")]
    TranscriptOnWrongStep(usize),
}

fn say(on: Trigger, text: &str) -> Step {
    Step {
        on,
        expect_transcript: None,
        say: Some(text.into()),
        say_wav: None,
        call: None,
    }
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = serde_json::from_str(text)?;
        s.check()?;
        Ok(s)
    }

    pub fn check(&self) -> Result<(), ScenarioError> {
        for (i, step) in self.steps.iter().enumerate() {
            if step.say.is_none() && step.say_wav.is_none() && step.call.is_none() {
                return Err(ScenarioError::EmptyStep(i));
            }
            if step.call.as_ref().is_some_and(|c| !c.arguments.is_object()) {
                return Err(ScenarioError::BadArguments(i));
            }
            if step.expect_transcript.is_some() && step.on != Trigger::UserTurn {
                return Err(ScenarioError::TranscriptOnWrongStep(i));
            }
        }
        Ok(())
    }

    /// The web agent: greets, qualifies in two turns, asks consent, saves the lead, triggers the
    /// callback, says goodbye.
    pub fn default_sandbox() -> Self {
        let user = |heard: &str, line: &str| Step {
            on: Trigger::UserTurn,
            expect_transcript: Some(heard.into()),
            say: Some(line.into()),
            say_wav: None,
            call: None,
        };
        Scenario {
            steps: vec![
                say(Trigger::SessionStart, "Bonjour, je suis l'agent IA de Callway, un agent téléphonique qui répond à vos clients jour et nuit. Que puis-je faire pour vous ?"),
                user("Je voudrais savoir ce que fait Callway.", "Callway décroche pour votre entreprise, qualifie les demandes et prend les rendez-vous. Vous recevez combien d'appels par jour, à peu près ?"),
                user("Une cinquantaine, surtout le matin.", "Très bien. Voulez-vous qu'un conseiller vous rappelle maintenant pour en parler ? Si oui, j'aurai besoin de votre prénom, de votre nom et de votre numéro, et de votre accord pour les enregistrer."),
                Step {
                    on: Trigger::UserTurn,
                    expect_transcript: Some("Oui, Marie Curie, au 06 12 34 56 78, je suis d'accord.".into()),
                    say: Some("Je récapitule : Marie Curie, au 06 12 34 56 78. J'enregistre vos coordonnées.".into()),
                    say_wav: None,
                    call: Some(ToolCall {
                        name: "save_lead".into(),
                        arguments: json!({"first_name": "Marie", "last_name": "Curie", "phone": "06 12 34 56 78", "consent": true}),
                    }),
                },
                Step {
                    on: Trigger::ToolOutput,
                    expect_transcript: None,
                    say: Some("C'est noté. Je lance l'appel.".into()),
                    say_wav: None,
                    call: Some(ToolCall {
                        name: "trigger_call".into(),
                        arguments: json!({"lead_id": "{{output.lead_id}}"}),
                    }),
                },
                say(Trigger::ToolOutput, "Votre téléphone va sonner dans quelques secondes. Je termine cette session web, à tout de suite !"),
            ],
            fallback_say: default_fallback(),
            ms_per_char: default_ms_per_char(),
        }
    }

    /// The phone agent: greets the callee, answers one turn, says goodbye.
    pub fn default_phone() -> Self {
        Scenario {
            steps: vec![
                say(Trigger::SessionStart, "Bonjour Marie, ici l'agent IA de Callway, comme convenu sur notre site. Vous recevez une cinquantaine d'appels par jour, c'est bien ça ?"),
                Step {
                    on: Trigger::UserTurn,
                    expect_transcript: Some("Oui, c'est ça.".into()),
                    say: Some("Parfait. Un conseiller vous enverra une proposition par e-mail aujourd'hui. Merci et bonne journée, au revoir !".into()),
                    say_wav: None,
                    call: None,
                },
            ],
            fallback_say: default_fallback(),
            ms_per_char: default_ms_per_char(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        for s in [Scenario::default_sandbox(), Scenario::default_phone()] {
            s.check().unwrap();
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(Scenario::from_json(&text).unwrap(), s);
        }
    }

    #[test]
    fn bad_scenarios_are_refused() {
        assert!(matches!(
            Scenario::from_json(r#"{"steps":[{"on":"user_turn"}]}"#),
            Err(ScenarioError::EmptyStep(0))
        ));
        assert!(Scenario::from_json(r#"{"steps":[{"on":"later","say":"x"}]}"#).is_err());
        assert!(Scenario::from_json(r#"{"steps":[],"extra":1}"#).is_err());
        assert!(matches!(
            Scenario::from_json(
                r#"{"steps":[{"on":"user_turn","call":{"name":"f","arguments":[1]}}]}"#
            ),
            Err(ScenarioError::BadArguments(0))
        ));
        let s = Scenario::from_json(r#"{"steps":[{"on":"session_start","say":"Salut"}]}"#).unwrap();
        assert_eq!(s.fallback_say, "Pardon, pouvez-vous répéter ?");
    }
}
