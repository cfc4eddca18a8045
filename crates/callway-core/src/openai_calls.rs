//! OpenAI Realtime call control over REST with the standard key: hanging up a web call the server
//! owns (`POST /v1/realtime/calls/{call_id}/hangup`, answered 200 with no body). Used by token-svc
//! (a call it could not register) and tools-svc (the hand-off, the time limit, lost control).

use crate::secret::Secret;
use crate::web_call::RtcCallId;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HangupError {
    #[error("OpenAI hang-up answered HTTP {0}")]
    Status(u16),
    #[error("OpenAI hang-up failed: {0}")]
    Transport(String),
}

#[derive(Clone)]
pub struct CallControl {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
}

impl CallControl {
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> Result<Self, String> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(CallControl {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn api_key(&self) -> &Secret {
        &self.api_key
    }

    /// Ends the call. A call OpenAI no longer knows (404) is already ended: that is success.
    /// Retried twice on transport errors and 5xx (hanging up twice is harmless).
    pub async fn hangup(&self, call: &RtcCallId) -> Result<(), HangupError> {
        let url = format!("{}/realtime/calls/{}/hangup", self.base_url, call.as_str());
        let mut last = HangupError::Transport("not tried".into());
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            match self
                .http
                .post(&url)
                .bearer_auth(self.api_key.expose())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => return Ok(()),
                Ok(r) if r.status().is_server_error() => {
                    last = HangupError::Status(r.status().as_u16())
                }
                Ok(r) => return Err(HangupError::Status(r.status().as_u16())),
                Err(e) => last = HangupError::Transport(e.without_url().to_string()),
            }
        }
        Err(last)
    }
}
