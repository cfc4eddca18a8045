//! `WsEndpoint`: where a WebSocket client connects and with which bearer key.

use crate::conn::WsConn;
use crate::frame::Role;
use bytes::Bytes;
use fastwebsockets::{handshake, WebSocket, WebSocketError};
use http_body_util::Empty;
use hyper::header::{AUTHORIZATION, CONNECTION, HOST, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

/// An open client socket.
pub type Ws = WebSocket<TokioIo<Upgraded>>;
/// An open client socket framed by `callway_ws`.
pub type ClientConn = WsConn<TokioIo<Upgraded>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server answered the upgrade with this HTTP status (401, 404…): final for this URL.
    #[error("upgrade refused: HTTP {0}")]
    Refused(u16),
    #[error("connect timed out")]
    Timeout,
    #[error("transport: {0}")]
    Transport(String),
}

impl From<std::io::Error> for ConnectError {
    fn from(e: std::io::Error) -> Self {
        ConnectError::Transport(e.to_string())
    }
}

/// A credential sent in a request header: kept out of `Debug` (this crate stays free of the
/// product's own crates, so the simulators can use it too).
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    pub fn new(value: impl Into<String>) -> Self {
        Credential(value.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(***)")
    }
}

/// Where and how to open sockets. Cheap to clone.
#[derive(Clone)]
pub struct WsEndpoint {
    host: String,
    port: u16,
    /// Path and query, e.g. `/v1/realtime?model=...`.
    path: String,
    tls: Option<TlsConnector>,
    /// Sent as `Authorization: Bearer …` when set.
    api_key: Option<Credential>,
    /// Other request headers (values are secrets: kept out of logs).
    headers: Vec<(&'static str, Credential)>,
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

/// webpki's roots, plus the certificates in `extra` (a PEM file) when given.
fn tls_connector(extra: Option<&std::path::Path>) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: certificate refused: {e}", path.display()))?;
        }
    }
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

/// Percent-encodes a query value, keeping unreserved characters.
pub fn encode_query_value(v: &str) -> String {
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

impl WsEndpoint {
    /// `base_url` is an http(s) base such as `OPENAI_BASE_URL` (`https://api.openai.com/v1`):
    /// https → wss, http → ws; `path_and_query` is appended to its path (`/realtime?model=…`).
    pub fn new(
        base_url: &str,
        path_and_query: &str,
        api_key: Credential,
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
        Ok(WsEndpoint {
            host: host.to_owned(),
            port,
            path: format!("{}{}", base_path.trim_end_matches('/'), path_and_query),
            // The OpenSSL convention, which reqwest's verifier (rustls-native-certs) honours
            // too (there it replaces the system store; here it is added to webpki's roots): one
            // setting makes every client of ours trust a private CA (a TLS-inspecting proxy, a
            // load generator's certificate).
            tls: if tls {
                let extra = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
                Some(tls_connector(extra.as_deref()).map_err(|e| format!("SSL_CERT_FILE {e}"))?)
            } else {
                None
            },
            api_key: Some(api_key),
            headers: Vec::new(),
            connect_timeout,
        })
    }

    /// A `ws://` or `wss://` URL taken as is (path and query kept; `ws://h?q` means `/?q`), no
    /// bearer key, with extra request headers.
    pub fn from_ws_url(
        url: &str,
        headers: Vec<(&'static str, Credential)>,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("wss://") {
            ("https://", r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            ("http://", r)
        } else {
            return Err(format!("not a ws:// or wss:// URL: {url}"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let mut ep = WsEndpoint::new(
            &format!("{scheme}{authority}"),
            "",
            Credential::new(""),
            connect_timeout,
        )?;
        ep.path = path;
        ep.api_key = None;
        ep.headers = headers;
        Ok(ep)
    }

    /// The same endpoint, also trusting the certificates of the PEM file at `path`.
    pub fn trusting(mut self, path: &std::path::Path) -> Result<Self, String> {
        if self.tls.is_some() {
            self.tls = Some(tls_connector(Some(path))?);
        }
        Ok(self)
    }

    /// The same server with another path and query (e.g. one `?call_id=` per web call).
    pub fn with_path(&self, base_path_and_query: String) -> Self {
        WsEndpoint {
            path: base_path_and_query,
            ..self.clone()
        }
    }

    /// The path part of the base URL's path, for [`WsEndpoint::with_path`] callers.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The WebSocket URL (no secret in it), for logs.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
    }

    /// Opens a socket framed by `callway_ws` (we are the client: our frames are masked).
    pub async fn connect_conn(&self, max_message: usize) -> Result<ClientConn, ConnectError> {
        let ws = self.connect().await?;
        Ok(WsConn::new(ws.into_inner(), Role::Client, max_message))
    }

    /// Opens a socket within the connect timeout (TCP + TLS + upgrade share it).
    pub async fn connect(&self) -> Result<Ws, ConnectError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout),
        }
    }

    async fn connect_inner(&self) -> Result<Ws, ConnectError> {
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
        let mut req = Request::builder()
            .method("GET")
            .uri(&self.path)
            .header(HOST, host_header)
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "upgrade")
            .header("Sec-WebSocket-Key", handshake::generate_key())
            .header("Sec-WebSocket-Version", "13");
        if let Some(key) = &self.api_key {
            req = req.header(AUTHORIZATION, format!("Bearer {}", key.expose()));
        }
        for (name, value) in &self.headers {
            req = req.header(*name, value.expose());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| ConnectError::Transport(format!("request: {e}")))?;
        let shaken = match &self.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(tcp_host.to_owned())
                    .map_err(|e| ConnectError::Transport(format!("server name: {e}")))?;
                let stream = tls.connect(name, tcp).await?;
                handshake::client(&SpawnExecutor, req, stream).await
            }
            None => handshake::client(&SpawnExecutor, req, tcp).await,
        };
        match shaken {
            Ok((ws, _)) => Ok(ws),
            Err(WebSocketError::InvalidStatusCode(s)) => Err(ConnectError::Refused(s)),
            Err(e) => Err(ConnectError::Transport(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(base: &str) -> Result<WsEndpoint, String> {
        WsEndpoint::new(
            base,
            "/realtime?model=gpt-realtime-2.1",
            Credential::new("k"),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn derives_the_socket_url_from_the_base() {
        assert_eq!(
            ep("https://api.openai.com/v1").unwrap().url(),
            "wss://api.openai.com:443/v1/realtime?model=gpt-realtime-2.1"
        );
        assert_eq!(
            ep("http://127.0.0.1:9/v1/").unwrap().url(),
            "ws://127.0.0.1:9/v1/realtime?model=gpt-realtime-2.1"
        );
        assert!(ep("ftp://x").is_err());
        assert!(ep("http://:80/v1").is_err());
        assert!(ep("http://h:notaport/v1").is_err());
        let ws =
            |u: &str| WsEndpoint::from_ws_url(u, vec![], Duration::from_secs(1)).map(|e| e.url());
        assert_eq!(
            ws("ws://127.0.0.1:9/a/b?t=1").unwrap(),
            "ws://127.0.0.1:9/a/b?t=1"
        );
        assert_eq!(ws("ws://h?t=1").unwrap(), "ws://h:80/?t=1");
        assert_eq!(ws("ws://[::1]:7/x").unwrap(), "ws://[::1]:7/x");
        assert_eq!(ws("wss://h/x").unwrap(), "wss://h:443/x");
        assert!(ws("http://h/x").is_err());
        // A private authority that cannot be read is refused, naming the file.
        let e = ep("https://h/v1")
            .unwrap()
            .trusting(std::path::Path::new("/nonexistent/ca.pem"))
            .err()
            .unwrap();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        assert_eq!(encode_query_value("rtc_a b/c"), "rtc_a%20b%2Fc");
    }

    #[tokio::test]
    async fn a_refused_upgrade_reports_its_status() {
        // A server that answers every request with 404, like OpenAI for an unknown call id.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let e = ep(&format!("http://{addr}/v1"))
            .unwrap()
            .connect()
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ConnectError::Refused(404)), "{e:?}");
    }
}
