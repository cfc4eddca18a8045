//! Creates the web voice call at OpenAI with the browser's SDP offer (`POST /v1/realtime/calls`,
//! multipart `sdp` + `session`, standard key: the "unified interface"). The session (model,
//! voice, instructions, tools, turn detection, transcription) is fixed here, never by the browser,
//! and no OpenAI credential reaches the browser.

use crate::error::TokenError;
use callway_core::secret::Secret;
use callway_core::web_call::RtcCallId;
use std::time::Duration;

#[derive(Clone)]
pub struct OpenAiConfig {
    pub base_url: String,
    /// `OPENAI_REALTIME_CALLS_URL`, default `{base_url}/realtime/calls`.
    pub calls_url: String,
    pub api_key: Secret,
    pub model: String,
    pub voice: String,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    cfg: OpenAiConfig,
}

/// A call OpenAI created: its SDP answer for the browser, its id for the sideband.
#[derive(Debug)]
pub struct CreatedCall {
    pub sdp_answer: String,
    pub call_id: RtcCallId,
}

impl OpenAiClient {
    pub fn new(cfg: OpenAiConfig) -> Result<Self, String> {
        callway_core::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, cfg })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.cfg
    }

    /// The `session` part (a `RealtimeSessionCreateRequestGA`), public so tests can compare it
    /// with what the simulator received.
    pub fn session_config(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "realtime",
            "model": self.cfg.model,
            "output_modalities": ["audio"],
            "instructions": callway_core::prompts::web_instructions(),
            "audio": {
                "input": {
                    "transcription": { "model": "gpt-4o-mini-transcribe", "language": "fr" },
                    "noise_reduction": { "type": "near_field" },
                    "turn_detection": {
                        "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                        "silence_duration_ms": 500, "create_response": true, "interrupt_response": true
                    }
                },
                "output": { "voice": self.cfg.voice }
            },
            "tools": callway_core::prompts::web_tools(),
            "tool_choice": "auto"
        })
    }

    #[tracing::instrument(name = "openai.create_call", skip_all, fields(http.status_code, call_id))]
    pub async fn create_call(&self, offer_sdp: &str) -> Result<CreatedCall, TokenError> {
        let part = |text: String, mime: &str| {
            reqwest::multipart::Part::text(text)
                .mime_str(mime)
                .map_err(|e| TokenError::Upstream(format!("multipart: {}", e.without_url())))
        };
        let form = reqwest::multipart::Form::new()
            .part("sdp", part(offer_sdp.to_owned(), "application/sdp")?)
            .part(
                "session",
                part(self.session_config().to_string(), "application/json")?,
            );
        let resp = self
            .http
            .post(&self.cfg.calls_url)
            .bearer_auth(self.cfg.api_key.expose())
            .multipart(form)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        tracing::Span::current().record("http.status_code", status);
        match status {
            200 | 201 => {}
            401 | 403 => return Err(TokenError::UpstreamAuth(status)),
            429 => return Err(TokenError::UpstreamBusy),
            400 => {
                // OpenAI says why in `error.code`; a bad offer is the browser's, anything else ours.
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let code = body["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned();
                if code.contains("offer") || code.contains("sdp") {
                    return Err(TokenError::InvalidOffer("refused by OpenAI"));
                }
                return Err(TokenError::Upstream(format!("HTTP 400 {code}")));
            }
            _ => return Err(TokenError::Upstream(format!("HTTP {status}"))),
        }
        let call_id = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(RtcCallId::from_location)
            .ok_or_else(|| TokenError::Upstream("answer without a usable Location".into()))?;
        tracing::Span::current().record("call_id", call_id.as_str());
        let sdp_answer = resp.text().await.map_err(transport)?;
        if !sdp_answer.trim_start().starts_with("v=0") {
            return Err(TokenError::Upstream("answer body is not SDP".into()));
        }
        Ok(CreatedCall {
            sdp_answer,
            call_id,
        })
    }
}

fn transport(e: reqwest::Error) -> TokenError {
    if e.is_timeout() {
        TokenError::UpstreamTimeout
    } else {
        TokenError::Upstream(format!("transport: {}", e.without_url()))
    }
}
