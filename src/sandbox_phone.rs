//! The sandbox's phone leg: what the simulated callee says and what the simulated phone agent
//! answers, so `cargo run` shows a whole callback (answered → greeting → the callee answers →
//! goodbye → the agent hangs up with `end_call`) without any key.

use callway_audio::{wav, PCMU_RATE_HZ};
use sim_openai::{Scenario, Step, ToolCall, Trigger};
use std::time::Duration;

const MS_PER_CHAR: u32 = 30;
const GREETING: &str = "Bonjour, ici l'agent IA de Callway, comme convenu sur notre site. \
    C'est toujours un bon moment pour en parler ?";
const ANSWER: &str = "Oui, allez-y.";
const NOTED: &str = "Parfait, je note.";
const GOODBYE: &str = "Un conseiller vous envoie une proposition aujourd'hui. Merci et au revoir !";

/// The phone agent: greets, records the callee's qualification when they answer, says goodbye,
/// then hangs up.
pub fn scenario() -> Scenario {
    Scenario {
        steps: vec![
            Step {
                on: Trigger::SessionStart,
                expect_transcript: None,
                say: Some(GREETING.into()),
                say_wav: None,
                call: None,
            },
            Step {
                on: Trigger::UserTurn,
                expect_transcript: Some(ANSWER.into()),
                say: Some(NOTED.into()),
                say_wav: None,
                call: Some(ToolCall {
                    name: "record_qualification".into(),
                    arguments: serde_json::json!({
                        "activity": "Cabinet dentaire",
                        "call_volume": "40 appels par jour",
                        "main_need": "Ne plus manquer d'appels pendant les soins",
                        "interest_level": "high",
                        "next_step": "send_info"
                    }),
                }),
            },
            Step {
                on: Trigger::ToolOutput,
                expect_transcript: None,
                say: Some(GOODBYE.into()),
                say_wav: None,
                call: Some(ToolCall {
                    name: "end_call".into(),
                    arguments: serde_json::json!({"reason": "completed"}),
                }),
            },
        ],
        fallback_say: "Pardon, pouvez-vous répéter ?".into(),
        ms_per_char: MS_PER_CHAR,
    }
}

/// The callee: picks up, listens to the greeting, says a short answer, then stays on the line
/// (hangs up by itself after a minute if nobody else does).
pub fn callee() -> sim_telnyx::Callee {
    // Greeting length at the agent's speaking rate, plus pick-up and a margin.
    let greeting_ms = GREETING.chars().count() as u64 * MS_PER_CHAR as u64 + 1_500;
    let mut samples = vec![0i16; (greeting_ms * PCMU_RATE_HZ as u64 / 1000) as usize];
    samples.extend(sim_openai::voice::synth_speech(ANSWER, PCMU_RATE_HZ, 80));
    samples.extend(vec![0i16; PCMU_RATE_HZ as usize]);
    sim_telnyx::Callee::Human {
        speech_wav: wav::to_bytes(&wav::Wav {
            sample_rate: PCMU_RATE_HZ,
            samples,
        }),
        hang_up_after: Some(Duration::from_secs(60)),
    }
}

/// What a callee who asks for a human says.
pub const ASKS_FOR_A_HUMAN: &str = "Je voudrais parler à un conseiller.";
/// What a callee who wants to be called tomorrow at 10 says.
pub const TOMORROW_AT_TEN: &str = "Rappelez-moi demain à dix heures.";

/// A callee who picks up, lets the greeting play, then says `line` once and stays on the line
/// (a minute at most).
pub fn callee_saying(line: &str) -> sim_telnyx::Callee {
    let greeting_ms = GREETING.chars().count() as u64 * MS_PER_CHAR as u64 + 1_500;
    let mut samples = vec![0i16; (greeting_ms * PCMU_RATE_HZ as u64 / 1000) as usize];
    samples.extend(sim_openai::voice::synth_speech(line, PCMU_RATE_HZ, 80));
    samples.extend(vec![0i16; PCMU_RATE_HZ as usize]);
    sim_telnyx::Callee::Human {
        speech_wav: wav::to_bytes(&wav::Wav {
            sample_rate: PCMU_RATE_HZ,
            samples,
        }),
        hang_up_after: Some(Duration::from_secs(60)),
    }
}

fn step(
    on: Trigger,
    expect: Option<&str>,
    say: &str,
    call: Option<(&str, serde_json::Value)>,
) -> Step {
    Step {
        on,
        expect_transcript: expect.map(str::to_owned),
        say: Some(say.into()),
        say_wav: None,
        call: call.map(|(name, arguments)| ToolCall {
            name: name.into(),
            arguments,
        }),
    }
}

/// The phone agent facing a callee who asks for a human: it says it transfers them and calls
/// `transfer_to_human`; if the human cannot take the call (a system notice), it offers a
/// callback tomorrow at 10, records it, says goodbye and hangs up.
pub fn transfer_scenario(tomorrow_at_ten: &str) -> Scenario {
    Scenario {
        steps: vec![
            step(Trigger::SessionStart, None, GREETING, None),
            step(
                Trigger::UserTurn,
                Some(ASKS_FOR_A_HUMAN),
                "Je vous mets en relation avec un conseiller.",
                Some((
                    "transfer_to_human",
                    serde_json::json!({"reason": "demande un conseiller"}),
                )),
            ),
            step(
                Trigger::ToolOutput,
                None,
                "Un instant, s'il vous plaît.",
                None,
            ),
            step(
                Trigger::Notice,
                None,
                "Le conseiller n'est pas disponible. Je note un rappel demain à dix heures.",
                Some((
                    "record_qualification",
                    serde_json::json!({
                        "activity": "Cabinet dentaire",
                        "call_volume": "40 appels par jour",
                        "main_need": "Parler à un conseiller",
                        "interest_level": "high",
                        "next_step": "callback",
                        "preferred_slot": tomorrow_at_ten
                    }),
                )),
            ),
            step(
                Trigger::ToolOutput,
                None,
                "C'est noté. Merci et au revoir !",
                Some(("end_call", serde_json::json!({"reason": "completed"}))),
            ),
        ],
        fallback_say: "Pardon, pouvez-vous répéter ?".into(),
        ms_per_char: MS_PER_CHAR,
    }
}

/// The phone agent facing a callee who asks to be called tomorrow at 10: it records that
/// (`next_step: callback` with the slot), says goodbye and hangs up.
pub fn callback_tomorrow_scenario(tomorrow_at_ten: &str) -> Scenario {
    Scenario {
        steps: vec![
            step(Trigger::SessionStart, None, GREETING, None),
            step(
                Trigger::UserTurn,
                Some(TOMORROW_AT_TEN),
                "Entendu, je note demain à dix heures.",
                Some((
                    "record_qualification",
                    serde_json::json!({
                        "activity": "Cabinet dentaire",
                        "call_volume": "40 appels par jour",
                        "main_need": "Être rappelé",
                        "interest_level": "medium",
                        "next_step": "callback",
                        "preferred_slot": tomorrow_at_ten
                    }),
                )),
            ),
            step(
                Trigger::ToolOutput,
                None,
                "Merci et au revoir !",
                Some(("end_call", serde_json::json!({"reason": "completed"}))),
            ),
        ],
        fallback_say: "Pardon, pouvez-vous répéter ?".into(),
        ms_per_char: MS_PER_CHAR,
    }
}
