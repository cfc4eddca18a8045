//! `POST /v2/calls/{id}/actions/speak` body validation, per the `SpeakRequest` schema of
//! Telnyx's OpenAPI (team-telnyx/openapi `openapi/spec3.yml`):
//!
//! * `payload` (≤ 3,000 characters) and `voice` are required;
//! * `language` is an enum of 29 codes; `payload_type` is `text` | `ssml`; `service_level` is
//!   `basic` | `premium` (default premium); `target_legs` is `self` | `opposite` | `both`;
//! * "When using `basic`, only the `en-US` language and payload type `text` are allowed", and
//!   with basic the voice is a gender (`male` / `female`);
//! * premium voices are `<Provider>.<Model>.<VoiceId>` (or the provider alone, which picks its
//!   defaults) for the providers the spec lists, with the model lists it gives; the legacy
//!   `Polly.<VoiceId>` form is named by the `language` description. ElevenLabs needs
//!   `voice_settings.api_key_ref`.
//!
//! What Telnyx answers to a refused speak is not documented beyond the 422 shape: the codes used
//! here are the ones the rest of the API uses (10004 missing, 10032 enum, 10015 invalid value).

use crate::api_error::ErrorItem;
use crate::fields::Fields;
use serde_json::Value;

/// `SpeakRequest.language`.
pub(crate) const LANGUAGES: &[&str] = &[
    "arb",
    "cmn-CN",
    "cy-GB",
    "da-DK",
    "de-DE",
    "en-AU",
    "en-GB",
    "en-GB-WLS",
    "en-IN",
    "en-US",
    "es-ES",
    "es-MX",
    "es-US",
    "fr-CA",
    "fr-FR",
    "hi-IN",
    "is-IS",
    "it-IT",
    "ja-JP",
    "ko-KR",
    "nb-NO",
    "nl-NL",
    "pl-PL",
    "pt-BR",
    "pt-PT",
    "ro-RO",
    "ru-RU",
    "sv-SE",
    "tr-TR",
];

const MAX_PAYLOAD_CHARS: usize = 3000;
/// `voice_settings.type` (the discriminator of `SpeakRequest.voice_settings`).
const VOICE_SETTINGS_TYPES: &[&str] = &[
    "aws",
    "azure",
    "elevenlabs",
    "inworld",
    "minimax",
    "resemble",
    "rime",
    "telnyx",
    "xai",
];

/// What a valid speak asked for (the simulator records it; it does not synthesise audio).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakParams {
    pub voice: String,
    pub language: Option<String>,
    pub service_level: String,
    pub payload_type: String,
    pub target_legs: String,
}

/// Validates a speak body; errors go to `f.errors`. `None` only together with an error.
pub(crate) fn parse_speak(f: &mut Fields<'_>) -> Option<SpeakParams> {
    if let Some(p) = f.req_str("payload") {
        if p.chars().count() > MAX_PAYLOAD_CHARS {
            f.errors.push(ErrorItem::invalid(
                "payload",
                "The payload must be at most 3000 characters.",
            ));
        }
    }
    let voice = f.req_str("voice").map(str::to_owned);
    let payload_type = f
        .opt_enum("payload_type", &["text", "ssml"])
        .unwrap_or("text")
        .to_owned();
    let service_level = f
        .opt_enum("service_level", &["basic", "premium"])
        .unwrap_or("premium")
        .to_owned();
    let language = f.opt_enum("language", LANGUAGES).map(str::to_owned);
    let target_legs = f
        .opt_enum("target_legs", &["self", "opposite", "both"])
        .unwrap_or("self")
        .to_owned();
    f.opt_enum("stop", &["current", "all"]);
    match f.raw("loop") {
        None | Some(Value::String(_)) => {}
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        Some(_) => f.errors.push(ErrorItem::invalid(
            "loop",
            "The 'loop' parameter must be a string or an integer.",
        )),
    }
    let settings = voice_settings(f);
    let voice = voice?;
    if service_level == "basic" {
        if language.as_deref().is_some_and(|l| l != "en-US") {
            f.errors.push(ErrorItem::invalid(
                "language",
                "When service_level is basic, only the en-US language is allowed.",
            ));
        }
        if payload_type != "text" {
            f.errors.push(ErrorItem::invalid(
                "payload_type",
                "When service_level is basic, only payload type text is allowed.",
            ));
        }
        if !is_gender(&voice) {
            f.errors.push(ErrorItem::invalid(
                "voice",
                "With service_level basic, the voice is the gender of the speaker: male or female.",
            ));
        }
    } else if let Err(detail) = check_premium_voice(&voice, settings) {
        f.errors.push(ErrorItem::invalid("voice", detail));
    }
    Some(SpeakParams {
        voice,
        language,
        service_level,
        payload_type,
        target_legs,
    })
}

fn is_gender(voice: &str) -> bool {
    matches!(voice, "male" | "female")
}

/// `voice_settings`, if present: an object whose `type` is one of the documented discriminators.
fn voice_settings<'a>(f: &mut Fields<'a>) -> Option<&'a serde_json::Map<String, Value>> {
    let v = f.raw("voice_settings")?;
    let Some(obj) = v.as_object() else {
        f.errors.push(ErrorItem::invalid(
            "voice_settings",
            "The 'voice_settings' parameter must be an object.",
        ));
        return None;
    };
    match obj.get("type").and_then(Value::as_str) {
        Some(t) if VOICE_SETTINGS_TYPES.contains(&t) => Some(obj),
        Some(_) => {
            f.errors.push(
                ErrorItem::bad_enum("voice_settings", VOICE_SETTINGS_TYPES)
                    .at("/voice_settings/type"),
            );
            None
        }
        None => {
            f.errors
                .push(ErrorItem::missing("voice_settings").at("/voice_settings/type"));
            None
        }
    }
}

/// A premium voice: a gender, `Polly.<VoiceId>`, or `<Provider>[.<Model>][.<VoiceId>]`.
fn check_premium_voice(
    voice: &str,
    settings: Option<&serde_json::Map<String, Value>>,
) -> Result<(), String> {
    if is_gender(voice) {
        return Ok(());
    }
    if voice.chars().any(|c| c.is_whitespace() || c.is_control()) || voice.len() > 256 {
        return Err("The voice contains characters a voice name cannot have.".into());
    }
    let (provider, rest) = match voice.split_once('.') {
        Some((p, r)) => (p, Some(r)),
        None => (voice, None),
    };
    let known = |p: &str| provider.eq_ignore_ascii_case(p);
    let named = |r: Option<&str>| r.is_none_or(is_id);
    let ok = if known("Polly") {
        // Legacy form: Polly.<VoiceId> (optionally -Neural).
        rest.is_some_and(is_id)
    } else if known("AWS") {
        // AWS.Polly.<VoiceId>, or AWS.Polly.<Engine>.<VoiceId>.
        match rest.map(|r| r.split_once('.')) {
            None => true,
            Some(Some((polly, id))) => {
                polly.eq_ignore_ascii_case("Polly") && id.split('.').count() <= 2 && dotted_ids(id)
            }
            Some(None) => false,
        }
    } else if known("Azure") || known("xAI") {
        let voices: &[&str] = if known("xAI") {
            &["eve", "ara", "rex", "sal", "leo"]
        } else {
            &[]
        };
        named(rest) && (voices.is_empty() || rest.is_none_or(|r| one_of(r, voices)))
    } else if known("ElevenLabs") {
        let has_key = settings
            .and_then(|s| s.get("api_key_ref"))
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty());
        if !has_key {
            return Err(
                "ElevenLabs voices need your ElevenLabs key as voice_settings.api_key_ref.".into(),
            );
        }
        rest.is_none_or(|r| r.split('.').count() <= 2 && dotted_ids(r))
    } else if known("Telnyx") {
        rest.is_none_or(|r| r.split('.').count() == 2 && dotted_ids(r))
    } else if let Some(models) = models_of(provider) {
        // <Provider>.<Model>.<VoiceId> with the models the spec lists (some contain dots).
        match rest {
            None => true,
            Some(r) => models.iter().any(|m| {
                r.len() > m.len() + 1
                    && r[..m.len()].eq_ignore_ascii_case(m)
                    && r.as_bytes()[m.len()] == b'.'
                    && is_id(&r[m.len() + 1..])
            }),
        }
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Unsupported voice '{voice}': use male, female, or <Provider>.<Model>.<VoiceId> with a supported provider (AWS, Azure, ElevenLabs, Telnyx, Minimax, Rime, Resemble, Inworld, FishAudio, xAI)."
        ))
    }
}

fn models_of(provider: &str) -> Option<&'static [&'static str]> {
    let p = provider.to_ascii_lowercase();
    Some(match p.as_str() {
        "minimax" => &[
            "speech-02-turbo",
            "speech-02-hd",
            "speech-2.6-turbo",
            "speech-2.8-turbo",
        ],
        "rime" => &["Arcana", "Mist", "ArcanaV3", "Coda"],
        "resemble" => &["Turbo"],
        "inworld" => &["Mini", "Max", "TTS2"],
        "fishaudio" => &["s2.1-pro", "s2-pro", "s1"],
        _ => return None,
    })
}

fn one_of(s: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(s))
}

/// A voice or model id: letters, digits, `-`, `_` and `:` (Azure's `Ava:DragonHDLatestNeural`).
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
}

fn dotted_ids(s: &str) -> bool {
    s.split('.').all(is_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(body: Value) -> Result<SpeakParams, Vec<(String, String)>> {
        let obj = body.as_object().cloned().unwrap_or_default();
        let mut f = Fields::new(&obj);
        let p = parse_speak(&mut f);
        if f.errors.is_empty() {
            Ok(p.expect("params without errors"))
        } else {
            Err(f
                .errors
                .iter()
                .map(|e| (e.code.to_owned(), e.pointer.clone().unwrap_or_default()))
                .collect())
        }
    }

    #[test]
    fn premium_voices_in_every_documented_form_are_accepted() {
        for voice in [
            "female",
            "male",
            "AWS.Polly.Lea-Neural",
            "AWS.Polly.Joanna",
            "AWS",
            "Polly.Celine",
            "Azure.fr-FR-DeniseNeural",
            "Azure.en-US-Ava:DragonHDLatestNeural",
            "Telnyx.KokoroTTS.af",
            "Telnyx.NaturalHD.astra",
            "Telnyx",
            "Minimax.speech-2.6-turbo.Wise_Woman",
            "Rime.Arcana.cove",
            "Resemble.Turbo.my_voice",
            "Inworld.TTS2.Loretta",
            "FishAudio.s2.1-pro.933563129e564b19a115bedd57b7406a",
            "xAI.eve",
        ] {
            let r = run(json!({"payload": "Bonjour", "voice": voice, "language": "fr-FR"}));
            assert!(r.is_ok(), "{voice}: {r:?}");
        }
        let eleven = run(
            json!({"payload": "x", "voice": "ElevenLabs.eleven_multilingual_v2.21m00Tcm4TlvDq8ikWAM",
            "voice_settings": {"type": "elevenlabs", "api_key_ref": "my_key"}}),
        );
        assert!(eleven.is_ok(), "{eleven:?}");
    }

    #[test]
    fn refuses_what_the_schema_refuses() {
        let cases = [
            // basic allows only en-US text with a gender voice.
            (
                json!({"payload": "Bonjour", "voice": "female", "language": "fr-FR", "service_level": "basic"}),
                "/language",
            ),
            (
                json!({"payload": "<speak/>", "voice": "female", "payload_type": "ssml", "service_level": "basic"}),
                "/payload_type",
            ),
            (
                json!({"payload": "Hi", "voice": "AWS.Polly.Joanna", "service_level": "basic"}),
                "/voice",
            ),
            // language enum.
            (
                json!({"payload": "Bonjour", "voice": "female", "language": "fr"}),
                "/language",
            ),
            (
                json!({"payload": "Bonjour", "voice": "female", "language": "fr_FR"}),
                "/language",
            ),
            // voice forms.
            (json!({"payload": "Bonjour", "voice": "Lea"}), "/voice"),
            (
                json!({"payload": "Bonjour", "voice": "Google.fr-FR-Standard-A"}),
                "/voice",
            ),
            (json!({"payload": "Bonjour", "voice": "AWS.Lea"}), "/voice"),
            (
                json!({"payload": "Bonjour", "voice": "Minimax.speech-01.Wise_Woman"}),
                "/voice",
            ),
            (
                json!({"payload": "Bonjour", "voice": "Rime.Arcana."}),
                "/voice",
            ),
            (json!({"payload": "Bonjour", "voice": "xAI.bob"}), "/voice"),
            (
                json!({"payload": "Bonjour", "voice": "Telnyx.Kokoro TTS.af"}),
                "/voice",
            ),
            (
                json!({"payload": "Bonjour", "voice": "ElevenLabs.eleven_multilingual_v2.abc"}),
                "/voice",
            ),
            (
                json!({"payload": "Bonjour", "voice": "female", "voice_settings": {"type": "google"}}),
                "/voice_settings/type",
            ),
            // required fields and types.
            (json!({"voice": "female"}), "/payload"),
            (json!({"payload": "Bonjour"}), "/voice"),
            (
                json!({"payload": "x".repeat(3001), "voice": "female"}),
                "/payload",
            ),
            (
                json!({"payload": "Bonjour", "voice": "female", "service_level": "gold"}),
                "/service_level",
            ),
            (
                json!({"payload": "Bonjour", "voice": "female", "target_legs": "callee"}),
                "/target_legs",
            ),
        ];
        for (body, pointer) in cases {
            let r = run(body.clone());
            let errs = r.expect_err(&format!("{body} must be refused"));
            assert!(
                errs.iter().any(|(_, p)| p == pointer),
                "{body}: expected an error at {pointer}, got {errs:?}"
            );
        }
    }

    #[test]
    fn basic_en_us_text_is_fine_and_defaults_are_the_spec_defaults() {
        let p = run(json!({"payload": "Hello", "voice": "male", "service_level": "basic", "language": "en-US"}))
            .expect("basic en-US");
        assert_eq!(p.service_level, "basic");
        let p =
            run(json!({"payload": "Bonjour", "voice": "AWS.Polly.Lea-Neural"})).expect("premium");
        assert_eq!(p.service_level, "premium");
        assert_eq!(p.payload_type, "text");
        assert_eq!(p.target_legs, "self");
    }
}
