//! WebSocket client for OpenAI Realtime (`GET {base}/realtime?model=`, Bearer auth): the shared
//! `callway_ws` plumbing (rustls with ring and webpki roots for `https` bases, plain TCP for `http`
//! ones such as the simulator, one deadline over TCP + TLS + upgrade), with the bridge's errors.

use crate::shell::error::BridgeError;
use crate::shell::ws_io::Conn;
use callway_core::secret::Secret;
use callway_ws::{encode_query_value, ConnectError, WsEndpoint};
use std::time::Duration;

/// OpenAI's largest events (session.updated, response.done) stay well below this.
pub const MAX_OPENAI_MESSAGE: usize = 4 * 1024 * 1024;

/// Where and how to open OpenAI sessions. Cheap to clone.
#[derive(Clone)]
pub struct OpenAiEndpoint(WsEndpoint);

impl OpenAiEndpoint {
    /// `base_url` is `OPENAI_BASE_URL` (`https://api.openai.com/v1`): https → wss, http → ws.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Secret,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        WsEndpoint::new(
            base_url,
            &format!("/realtime?model={}", encode_query_value(model)),
            callway_ws::Credential::new(api_key.expose()),
            connect_timeout,
        )
        .map(OpenAiEndpoint)
    }

    /// The WebSocket URL (no secret in it), for logs.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Opens a session socket within the connect timeout.
    pub async fn connect(&self) -> Result<Conn, BridgeError> {
        let conn = self.0.connect_conn(MAX_OPENAI_MESSAGE).await;
        conn.map_err(|e| match e {
            ConnectError::Timeout => BridgeError::Timeout("OpenAI connect"),
            ConnectError::Refused(s) => {
                BridgeError::OpenAiConnect(format!("upgrade refused: HTTP {s}"))
            }
            ConnectError::Transport(t) => BridgeError::OpenAiConnect(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(base: &str) -> Result<OpenAiEndpoint, String> {
        OpenAiEndpoint::new(
            base,
            "gpt-realtime",
            Secret::new("k"),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn derives_the_realtime_url_from_the_base() {
        assert_eq!(
            ep("https://api.openai.com/v1").unwrap().url(),
            "wss://api.openai.com:443/v1/realtime?model=gpt-realtime"
        );
        assert_eq!(
            ep("http://127.0.0.1:9/v1/").unwrap().url(),
            "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime"
        );
        assert!(ep("ftp://x").is_err());
        assert!(ep("http://:80/v1").is_err());
    }
}
