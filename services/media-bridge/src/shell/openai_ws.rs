//! WebSocket client for OpenAI Realtime (`GET {base}/realtime?model=`, Bearer auth), over
//! rustls (ring provider, webpki roots) for `https` bases and plain TCP for `http` ones (the
//! simulator). Every step shares one connect deadline.

use crate::shell::error::BridgeError;
use crate::shell::ws_io::Ws;
use bytes::Bytes;
use callway_core::secret::Secret;
use fastwebsockets::{handshake, WebSocketError};
use http_body_util::Empty;
use hyper::header::{AUTHORIZATION, CONNECTION, HOST, UPGRADE};
use hyper::Request;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

/// Where and how to open OpenAI sessions. Cheap to clone.
#[derive(Clone)]
pub struct OpenAiEndpoint {
    host: String,
    port: u16,
    /// `/v1/realtime?model=...`
    path: String,
    tls: Option<TlsConnector>,
    api_key: Secret,
    connect_timeout: Duration,
}

struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::task::spawn(fut);
    }
}

fn tls_connector() -> Result<TlsConnector, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The WebSocket upgrade is HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Keeps unreserved characters; the model name comes from our own settings.
fn encode_query_value(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl OpenAiEndpoint {
    /// `base_url` is `OPENAI_BASE_URL` (`https://api.openai.com/v1`): https → wss, http → ws.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Secret,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let (tls, rest, default_port) = if let Some(r) = base_url.strip_prefix("https://") {
            (true, r, 443)
        } else if let Some(r) = base_url.strip_prefix("http://") {
            (false, r, 80)
        } else {
            return Err("must start with https:// or http://".into());
        };
        let (authority, base_path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !authority.ends_with(']') => {
                (h, p.parse::<u16>().map_err(|_| "bad port".to_string())?)
            }
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(OpenAiEndpoint {
            host: host.to_owned(),
            port,
            path: format!(
                "{}/realtime?model={}",
                base_path.trim_end_matches('/'),
                encode_query_value(model)
            ),
            tls: if tls { Some(tls_connector()?) } else { None },
            api_key,
            connect_timeout,
        })
    }

    /// The WebSocket URL (no secret in it), for logs.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
    }

    /// Opens a session socket within the connect timeout.
    pub async fn connect(&self) -> Result<Ws, BridgeError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(BridgeError::Timeout("OpenAI connect")),
        }
    }

    async fn connect_inner(&self) -> Result<Ws, BridgeError> {
        let tcp_host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((tcp_host, self.port)).await?;
        let _ = tcp.set_nodelay(true);
        let host_header = if (self.tls.is_some() && self.port == 443)
            || (self.tls.is_none() && self.port == 80)
        {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let req = Request::builder()
            .method("GET")
            .uri(&self.path)
            .header(HOST, host_header)
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "upgrade")
            .header("Sec-WebSocket-Key", handshake::generate_key())
            .header("Sec-WebSocket-Version", "13")
            .header(AUTHORIZATION, format!("Bearer {}", self.api_key.expose()))
            .body(Empty::<Bytes>::new())
            .map_err(|e| BridgeError::OpenAiConnect(format!("request: {e}")))?;
        let shaken = match &self.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(tcp_host.to_owned())
                    .map_err(|e| BridgeError::OpenAiConnect(format!("server name: {e}")))?;
                let stream = tls.connect(name, tcp).await?;
                handshake::client(&SpawnExecutor, req, stream).await
            }
            None => handshake::client(&SpawnExecutor, req, tcp).await,
        };
        match shaken {
            Ok((ws, _)) => Ok(ws),
            Err(WebSocketError::InvalidStatusCode(s)) => Err(BridgeError::OpenAiConnect(format!(
                "upgrade refused: HTTP {s}"
            ))),
            Err(e) => Err(BridgeError::OpenAiConnect(e.to_string())),
        }
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
