//! The WebSocket client handshake to the app's `stream_url`, through `callway_ws`: plain `ws://`
//! only, carrying the stream auth token in the `x-telnyx-streaming-auth-token` header and the
//! `user-agent` Telnyx sends.

use callway_ws::{ClientConn, Credential, WsEndpoint};
use std::time::Duration;

pub const AUTH_HEADER: &str = "x-telnyx-streaming-auth-token";

/// TCP connect and upgrade together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest app message read: fastwebsockets' default, which the simulator had before (a media
/// payload over its own limit still gets the streaming `error` event, not a close).
const MAX_MESSAGE: usize = 64 << 20;

#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The server answered the upgrade with a non-101 status.
    Refused(u16),
    Failed(String),
}

/// Where the stream connects, with its headers (header values travel as `Credential`s, which
/// only keeps them out of `Debug`).
fn endpoint(url: &str, auth_token: Option<&str>) -> Result<WsEndpoint, String> {
    if url.starts_with("wss://") {
        // No TLS towards the app: the simulator streams to local servers only.
        return Err("wss:// is not supported by the simulator (use ws:// locally)".into());
    }
    if !url.starts_with("ws://") {
        return Err(format!("not a ws:// URL: {url}"));
    }
    let mut headers = vec![("user-agent", Credential::new("telnyx-media-streaming"))];
    if let Some(t) = auth_token {
        headers.push((AUTH_HEADER, Credential::new(t)));
    }
    // "bad port" / "no host": said with the URL, as before.
    WsEndpoint::from_ws_url(url, headers, CONNECT_TIMEOUT).map_err(|e| format!("{e} in {url}"))
}

pub(crate) async fn connect(
    url: &str,
    auth_token: Option<&str>,
) -> Result<ClientConn, ConnectError> {
    let ep = endpoint(url, auth_token).map_err(ConnectError::Failed)?;
    ep.connect_conn(MAX_MESSAGE).await.map_err(|e| match e {
        callway_ws::ConnectError::Refused(status) => ConnectError::Refused(status),
        callway_ws::ConnectError::Timeout => ConnectError::Failed("connect timeout".into()),
        callway_ws::ConnectError::Transport(t) => ConnectError::Failed(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_plain_ws_urls_only() {
        let url = |u: &str| endpoint(u, Some("t")).map(|e| e.url());
        assert_eq!(
            url("ws://127.0.0.1:9/a/b?t=1").unwrap(),
            "ws://127.0.0.1:9/a/b?t=1"
        );
        assert_eq!(url("ws://h?t=1").unwrap(), "ws://h:80/?t=1");
        assert_eq!(url("ws://[::1]:7/x").unwrap(), "ws://[::1]:7/x");
        assert!(url("wss://h/x").is_err());
        assert!(url("http://h/x").is_err());
        assert_eq!(
            url("ws://h:port/x").unwrap_err(),
            "bad port in ws://h:port/x"
        );
        assert_eq!(url("ws://:80/x").unwrap_err(), "no host in ws://:80/x");
    }
}
