//! The `session.update` the bridge sends, and the phone agent's `end_call` tool.

use serde_json::{json, Value};

use super::config::BridgeConfig;

/// Name of the tool the model calls to hang up.
pub const END_CALL_TOOL: &str = "end_call";

/// `event_id` of our `session.update`: an `error` naming it means the config was rejected.
pub const SESSION_UPDATE_EVENT_ID: &str = "cw_session_update";

/// The `end_call` function tool (GA function tool shape).
// TODO(callway-core): move next to the other shared tool schemas in `callway_core::prompts`.
pub fn end_call_tool() -> Value {
    json!({
        "type": "function",
        "name": END_CALL_TOOL,
        "description": "Raccroche l'appel téléphonique. Appelle cet outil seulement après avoir dit \
            au revoir à voix haute, quand la conversation est terminée, quand la personne demande \
            à raccrocher, ou si ce n'est pas la bonne personne ou une messagerie.",
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {
                    "type": "string",
                    "enum": ["completed", "callee_request", "wrong_person", "voicemail", "other"],
                    "description": "Pourquoi l'appel se termine."
                }
            },
            "required": ["reason"]
        }
    })
}

/// Name of the tool the model calls to hand the call to a human.
pub const TRANSFER_TOOL: &str = "transfer_to_human";

/// The `transfer_to_human` tool, offered only when a human can take calls.
pub fn transfer_tool() -> Value {
    json!({
        "type": "function",
        "name": TRANSFER_TOOL,
        "description": "Transfère l'appel à un conseiller humain de Callway. Appelle cet outil quand la personne \
            demande à parler à un humain, après lui avoir dit que tu la mets en relation (elle patiente \
            quelques secondes). Si le conseiller ne répond pas, tu en seras informé : dis-le et propose un \
            créneau de rappel.",
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Pourquoi, en quelques mots."}
            },
            "required": ["reason"]
        }
    })
}

fn tools(cfg: &BridgeConfig) -> Value {
    let mut t = vec![
        end_call_tool(),
        callway_core::call_record::record_qualification_tool(),
    ];
    if cfg.transfer {
        t.push(transfer_tool());
    }
    Value::Array(t)
}

/// The GA `session.update` for a PCMU pass-through phone session with server VAD.
pub fn session_update(cfg: &BridgeConfig) -> String {
    let transcription = match &cfg.transcription_model {
        Some(model) => {
            let mut t = json!({"model": model});
            if let (Some(lang), Some(obj)) = (&cfg.transcription_language, t.as_object_mut()) {
                obj.insert("language".into(), json!(lang));
            }
            t
        }
        None => Value::Null,
    };
    json!({
        "type": "session.update",
        "event_id": SESSION_UPDATE_EVENT_ID,
        "session": {
            "type": "realtime",
            "instructions": cfg.instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": transcription,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": cfg.vad.threshold,
                        "prefix_padding_ms": cfg.vad.prefix_padding_ms,
                        "silence_duration_ms": cfg.vad.silence_duration_ms,
                        "create_response": true,
                        "interrupt_response": true
                    }
                },
                "output": {
                    "format": {"type": "audio/pcmu"},
                    "voice": cfg.voice
                }
            },
            "tools": tools(cfg),
            "tool_choice": "auto"
        }
    })
    .to_string()
}
