//! Telnyx Call Control v2 client: dial, hang up, speak. Every command carries a `command_id`
//! (Telnyx ignores a duplicate: `CallRequest.command_id` and the call commands' `command_id` in
//! Telnyx's OpenAPI), so a command on a call is retried after a timeout or a 5xx with the same
//! id, a bounded number of times. A dial is different: how Telnyx answers a repeated dial is not
//! documented, so a dial whose outcome is unknown is never sent again ([`TelnyxError::Unknown`]);
//! only one that certainly never reached Telnyx is ([`TelnyxError::NotSent`]).

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The voice of every `speak` (voicemail message, apology): Amazon Polly's French neural voice
/// Léa, in the `AWS.Polly.<VoiceId>-Neural` form of `SpeakRequest.voice`. French needs a
/// premium voice: with `service_level: basic` Telnyx allows only `en-US` text.
pub const SPEAK_VOICE: &str = "AWS.Polly.Lea-Neural";
/// `SpeakRequest.language` (one of its enum values; ignored by Telnyx for Polly voices).
pub const SPEAK_LANGUAGE: &str = "fr-FR";

/// `stream_bidirectional_target_legs` on the dial: which legs hear the agent. The dialled call
/// is one leg, Telnyx ↔ callee, and the stream is attached to it: `self` is that leg, so the
/// callee. The spec's default, `opposite`, names the other leg of a bridge, which this call
/// never has (what Telnyx does with it then is not documented); `speak` on the same leg uses
/// `self` by default for the same reason.
pub const STREAM_TARGET_LEGS: &str = "self";

#[derive(Clone)]
pub struct TelnyxConfig {
    /// `https://api.telnyx.com` (the client appends `/v2/...`).
    pub base_url: String,
    pub api_key: Secret,
    pub connection_id: String,
    pub from_number: String,
    /// Per attempt.
    pub timeout: Duration,
    pub max_attempts: u32,
}

#[derive(Clone)]
pub struct TelnyxClient {
    http: reqwest::Client,
    cfg: TelnyxConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum TelnyxError {
    #[error("Telnyx refused our API key (10009)")]
    Unauthorized,
    /// A 4xx with Telnyx's error code (e.g. 10016 bad number, 90018 call ended).
    #[error("Telnyx rejected the command: HTTP {status}, code {code}")]
    Rejected { status: u16, code: String },
    #[error("Telnyx unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// The request may have reached Telnyx and been acted on (a timeout, a 5xx, a reset after
    /// sending): for a dial, the call may be out.
    #[error("Telnyx's answer was lost (the command may have been carried out): {0}")]
    Unknown(String),
    /// The request never reached Telnyx (no connection): nothing was done.
    #[error("Telnyx not reached: {0}")]
    NotSent(String),
}

impl TelnyxError {
    /// A short fixed word for the `kind` label of `callway.upstream.errors`.
    pub fn kind(&self) -> &'static str {
        match self {
            TelnyxError::Unauthorized => "auth",
            TelnyxError::Rejected { .. } => "rejected",
            TelnyxError::Unavailable { .. } => "unavailable",
            TelnyxError::Unknown(_) => "answer_lost",
            TelnyxError::NotSent(_) => "unreachable",
        }
    }

    /// Hanging up an ended call is not a failure (90018).
    pub fn is_call_ended(&self) -> bool {
        matches!(self, TelnyxError::Rejected { code, .. } if code == "90018")
    }
}

/// What we ask Telnyx for one callback. `Debug` shows neither the number nor the stream secret.
#[derive(Clone)]
pub struct DialRequest {
    pub to_e164: String,
    pub client_state: String,
    pub stream_url: String,
    pub stream_auth_token: String,
    pub command_id: String,
    pub webhook_url: Option<String>,
}

impl std::fmt::Debug for DialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialRequest")
            .field("to", &crate::mask::mask_phone_numbers(&self.to_e164))
            .field("command_id", &self.command_id)
            .finish_non_exhaustive()
    }
}

/// Only what we use: a 2xx that lacks other fields must not turn a placed call into an error.
#[derive(Debug, Clone, Deserialize)]
pub struct DialAnswer {
    pub call_control_id: String,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct Errors {
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    code: String,
}

#[derive(Serialize)]
struct DialBody<'a> {
    connection_id: &'a str,
    to: &'a str,
    from: &'a str,
    from_display_name: &'a str,
    client_state: &'a str,
    command_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<&'a str>,
    timeout_secs: u32,
    time_limit_secs: u32,
    answering_machine_detection: &'a str,
    answering_machine_detection_config: serde_json::Value,
    stream_url: &'a str,
    stream_track: &'a str,
    stream_codec: &'a str,
    stream_bidirectional_mode: &'a str,
    stream_bidirectional_codec: &'a str,
    stream_bidirectional_target_legs: &'a str,
    stream_auth_token: &'a str,
}

impl TelnyxClient {
    pub fn new(cfg: TelnyxConfig) -> Result<Self, String> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, cfg })
    }

    /// From `TELNYX_*` settings; names the first missing variable.
    pub fn from_settings(settings: &crate::Settings) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        Self::new(TelnyxConfig {
            base_url: settings.telnyx_base_url.clone(),
            api_key: settings
                .telnyx_api_key
                .clone()
                .ok_or(ConfigError::Missing("TELNYX_API_KEY"))?,
            connection_id: settings
                .telnyx_connection_id
                .clone()
                .ok_or(ConfigError::Missing("TELNYX_CONNECTION_ID"))?,
            from_number: settings
                .telnyx_from_number
                .clone()
                .ok_or(ConfigError::Missing("TELNYX_FROM_NUMBER"))?,
            timeout: Duration::from_secs(5),
            max_attempts: 3,
        })
        .map_err(|reason| ConfigError::Invalid {
            name: "TELNYX_BASE_URL",
            reason,
        })
    }

    /// The same client with at most `n` attempts per command (webhook handlers use 1: the
    /// webhook's redelivery is their retry).
    pub fn with_attempts(mut self, n: u32) -> Self {
        self.cfg.max_attempts = n.max(1);
        self
    }

    pub fn from_number(&self) -> &str {
        &self.cfg.from_number
    }

    /// `POST /v2/calls` with premium AMD and a bidirectional PCMU stream (no transcoding anywhere).
    #[tracing::instrument(name = "telnyx.dial", skip_all, fields(command_id = %req.command_id))]
    pub async fn dial(&self, req: &DialRequest) -> Result<DialAnswer, TelnyxError> {
        let body = DialBody {
            connection_id: &self.cfg.connection_id,
            to: &req.to_e164,
            from: &self.cfg.from_number,
            from_display_name: "Callway",
            client_state: &req.client_state,
            command_id: &req.command_id,
            webhook_url: req.webhook_url.as_deref(),
            timeout_secs: 30,
            time_limit_secs: 1800,
            answering_machine_detection: "premium",
            answering_machine_detection_config: serde_json::json!({"total_analysis_time_millis": 5000}),
            stream_url: &req.stream_url,
            stream_track: "inbound_track",
            stream_codec: "PCMU",
            stream_bidirectional_mode: "rtp",
            stream_bidirectional_codec: "PCMU",
            stream_bidirectional_target_legs: STREAM_TARGET_LEGS,
            stream_auth_token: &req.stream_auth_token,
        };
        let body = serde_json::to_value(&body).map_err(|e| TelnyxError::Unavailable {
            attempts: 0,
            last: e.to_string(),
        })?;
        let data: Data<DialAnswer> = self.post("/v2/calls", &body, Retry::OnlyIfNotSent).await?;
        Ok(data.data)
    }

    /// Answers an incoming call (`AnswerRequest`). No stream here: `AnswerRequest` has no
    /// `stream_auth_token`, and the bridge refuses a stream without it, so the stream is started
    /// once answered ([`TelnyxClient::streaming_start`]).
    #[tracing::instrument(name = "telnyx.answer", skip_all)]
    pub async fn answer(
        &self,
        call_control_id: &str,
        client_state: &str,
        command_id: &str,
    ) -> Result<(), TelnyxError> {
        self.action(
            call_control_id,
            "answer",
            serde_json::json!({ "client_state": client_state, "command_id": command_id }),
        )
        .await
    }

    /// Starts the bidirectional PCMU stream on an answered call (`StartStreamingRequest`), with
    /// the same media settings as the dial's and its auth token.
    #[tracing::instrument(name = "telnyx.streaming_start", skip_all)]
    pub async fn streaming_start(
        &self,
        call_control_id: &str,
        stream_url: &str,
        stream_auth_token: &str,
        command_id: &str,
    ) -> Result<(), TelnyxError> {
        self.action(
            call_control_id,
            "streaming_start",
            serde_json::json!({
                "stream_url": stream_url,
                "stream_track": "inbound_track",
                "stream_codec": "PCMU",
                "stream_bidirectional_mode": "rtp",
                "stream_bidirectional_codec": "PCMU",
                "stream_bidirectional_target_legs": STREAM_TARGET_LEGS,
                "stream_auth_token": stream_auth_token,
                "command_id": command_id,
            }),
        )
        .await
    }

    /// `POST /v2/calls` to a person with no media stream and no AMD (a warm transfer's human,
    /// who hears a spoken summary and is then bridged). Like [`TelnyxClient::dial`], never
    /// repeated when the answer is lost.
    #[tracing::instrument(name = "telnyx.dial_plain", skip_all)]
    pub async fn dial_plain(
        &self,
        to_e164: &str,
        client_state: &str,
        command_id: &str,
    ) -> Result<DialAnswer, TelnyxError> {
        let body = serde_json::json!({
            "connection_id": self.cfg.connection_id,
            "to": to_e164,
            "from": self.cfg.from_number,
            "from_display_name": "Callway",
            "client_state": client_state,
            "command_id": command_id,
            "timeout_secs": 20,
            "time_limit_secs": 1800,
        });
        let data: Data<DialAnswer> = self.post("/v2/calls", &body, Retry::OnlyIfNotSent).await?;
        Ok(data.data)
    }

    /// Bridges two answered calls (`BridgeRequest`): `call_control_id` and `other` hear each
    /// other; when one hangs up, Telnyx hangs the other up.
    #[tracing::instrument(name = "telnyx.bridge", skip_all)]
    pub async fn bridge(
        &self,
        call_control_id: &str,
        other: &str,
        command_id: &str,
    ) -> Result<(), TelnyxError> {
        self.action(
            call_control_id,
            "bridge",
            serde_json::json!({ "call_control_id": other, "command_id": command_id }),
        )
        .await
    }

    #[tracing::instrument(name = "telnyx.hangup", skip_all)]
    pub async fn hangup(&self, call_control_id: &str, command_id: &str) -> Result<(), TelnyxError> {
        self.action(
            call_control_id,
            "hangup",
            serde_json::json!({ "command_id": command_id }),
        )
        .await
    }

    /// A short French message (e.g. on voicemail, or before hanging up when the agent failed),
    /// premium service level with [`SPEAK_VOICE`], heard by the callee (`target_legs: self`).
    #[tracing::instrument(name = "telnyx.speak", skip_all)]
    pub async fn speak(
        &self,
        call_control_id: &str,
        text: &str,
        command_id: &str,
    ) -> Result<(), TelnyxError> {
        self.action(call_control_id, "speak", speak_body(text, command_id))
            .await
    }

    /// Stops the call's media stream (all of its streams): the bridge gets `stop` and ends its
    /// OpenAI session, the call itself stays up.
    #[tracing::instrument(name = "telnyx.streaming_stop", skip_all)]
    pub async fn streaming_stop(
        &self,
        call_control_id: &str,
        command_id: &str,
    ) -> Result<(), TelnyxError> {
        self.action(
            call_control_id,
            "streaming_stop",
            serde_json::json!({ "command_id": command_id }),
        )
        .await
    }

    async fn action(
        &self,
        call_control_id: &str,
        name: &str,
        body: serde_json::Value,
    ) -> Result<(), TelnyxError> {
        // call_control_id is opaque ("v3:…"): escape it as one path segment.
        let id: String = call_control_id
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let _: serde_json::Value = self
            .post(
                &format!("/v2/calls/{id}/actions/{name}"),
                &body,
                Retry::SameCommandId,
            )
            .await?;
        Ok(())
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &serde_json::Value,
        retry: Retry,
    ) -> Result<T, TelnyxError> {
        let url = format!("{}{}", self.cfg.base_url.trim_end_matches('/'), path);
        let mut last = String::new();
        for attempt in 1..=self.cfg.max_attempts.max(1) {
            let sent = self
                .http
                .post(&url)
                .bearer_auth(self.cfg.api_key.expose())
                .header("Accept", "application/json")
                .json(body)
                .send()
                .await;
            match sent {
                // No connection: the request never left, whatever the command.
                Err(e) if e.is_connect() => {
                    last = format!("transport: {}", e.without_url());
                    if attempt == self.cfg.max_attempts.max(1) && retry == Retry::OnlyIfNotSent {
                        return Err(TelnyxError::NotSent(last));
                    }
                }
                Err(e) => {
                    last = format!("transport: {}", e.without_url());
                    if retry == Retry::OnlyIfNotSent {
                        return Err(TelnyxError::Unknown(last));
                    }
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let bytes = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) if retry == Retry::OnlyIfNotSent => {
                            return Err(TelnyxError::Unknown(e.without_url().to_string()))
                        }
                        Err(e) => {
                            return Err(TelnyxError::Unavailable {
                                attempts: attempt,
                                last: e.without_url().to_string(),
                            })
                        }
                    };
                    match status {
                        200..=299 => {
                            return serde_json::from_slice(&bytes).map_err(|e| {
                                // Not `{e}`: serde quotes the offending value (a number).
                                let last = format!(
                                    "unreadable answer: {}",
                                    crate::json_error::describe(&e)
                                );
                                // Done, but without the answer we needed (a dial's call id).
                                match retry {
                                    Retry::OnlyIfNotSent => TelnyxError::Unknown(last),
                                    Retry::SameCommandId => TelnyxError::Unavailable {
                                        attempts: attempt,
                                        last,
                                    },
                                }
                            });
                        }
                        401 => return Err(TelnyxError::Unauthorized),
                        400..=499 => {
                            let code = serde_json::from_slice::<Errors>(&bytes)
                                .ok()
                                .and_then(|e| e.errors.into_iter().next())
                                .map(|e| e.code)
                                .unwrap_or_else(|| "unknown".into());
                            return Err(TelnyxError::Rejected { status, code });
                        }
                        _ if retry == Retry::OnlyIfNotSent => {
                            return Err(TelnyxError::Unknown(format!("HTTP {status}")))
                        }
                        _ => last = format!("HTTP {status}"),
                    }
                }
            }
            tracing::warn!(attempt, error = %last, "Telnyx command failed, retrying with the same command_id");
            tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await;
        }
        Err(TelnyxError::Unavailable {
            attempts: self.cfg.max_attempts.max(1),
            last,
        })
    }
}

/// When a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// A command on a call: Telnyx ignores a repeated `command_id`, so any failure is retried.
    SameCommandId,
    /// A dial: retried only when it certainly never reached Telnyx.
    OnlyIfNotSent,
}

/// The `speak` body (schema `SpeakRequest`): premium, French voice, plain text, the callee's leg.
fn speak_body(text: &str, command_id: &str) -> serde_json::Value {
    serde_json::json!({
        "payload": text,
        "payload_type": "text",
        "service_level": "premium",
        "voice": SPEAK_VOICE,
        "language": SPEAK_LANGUAGE,
        "target_legs": "self",
        "command_id": command_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speak_is_premium_french_and_never_basic() {
        let b = speak_body("Bonjour", "cmd_1");
        assert_eq!(b["service_level"], "premium");
        assert_eq!(b["voice"], "AWS.Polly.Lea-Neural");
        assert_eq!(b["language"], "fr-FR");
        assert_eq!(b["payload_type"], "text");
    }
}
