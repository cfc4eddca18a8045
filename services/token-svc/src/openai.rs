//! `POST /v1/realtime/client_secrets` (GA). The session (model, voice, instructions, tools, turn
//! detection, transcription) is fixed here, never by the browser.

use crate::error::TokenError;
use callway_core::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone)]
pub struct OpenAiConfig {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    pub voice: String,
    pub timeout: Duration,
    pub secret_ttl_secs: u64,
}

#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    cfg: OpenAiConfig,
}

#[derive(Debug, Deserialize)]
pub struct ClientSecret {
    pub value: String,
    pub expires_at: i64,
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

    /// The request body, public so tests can compare it with what the simulator received.
    pub fn request_body(&self) -> serde_json::Value {
        serde_json::json!({
            "expires_after": { "anchor": "created_at", "seconds": self.cfg.secret_ttl_secs },
            "session": {
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
            }
        })
    }

    #[tracing::instrument(name = "openai.client_secret", skip_all, fields(http.status_code))]
    pub async fn create_client_secret(&self) -> Result<ClientSecret, TokenError> {
        let url = format!(
            "{}/realtime/client_secrets",
            self.cfg.base_url.trim_end_matches('/')
        );
        let resp = self
            .http
            .post(url)
            .bearer_auth(self.cfg.api_key.expose())
            .json(&self.request_body())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    TokenError::UpstreamTimeout
                } else {
                    TokenError::Upstream(format!("transport: {}", e.without_url()))
                }
            })?;
        let status = resp.status().as_u16();
        tracing::Span::current().record("http.status_code", status);
        match status {
            200 => {}
            401 | 403 => return Err(TokenError::UpstreamAuth(status)),
            429 => return Err(TokenError::UpstreamBusy),
            _ => {
                // OpenAI's error body says what it disliked; keep its code, never our key.
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let code = body["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned();
                return Err(TokenError::Upstream(format!("HTTP {status} {code}")));
            }
        }
        resp.json::<ClientSecret>().await.map_err(|e| {
            if e.is_timeout() {
                TokenError::UpstreamTimeout
            } else {
                TokenError::Upstream(format!("unreadable answer: {}", e.without_url()))
            }
        })
    }
}
