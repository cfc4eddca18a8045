//! WebSocket client handshake to the app's `stream_url` (plain `ws://`), carrying the stream auth
//! token in the `x-telnyx-streaming-auth-token` header as Telnyx does.

use bytes::Bytes;
use fastwebsockets::{handshake, WebSocket, WebSocketError};
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;

pub const AUTH_HEADER: &str = "x-telnyx-streaming-auth-token";

#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The server answered the upgrade with a non-101 status.
    Refused(u16),
    Failed(String),
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

/// `ws://host[:port]/path?query` → (host, port, path-and-query).
pub(crate) fn split_ws_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = if let Some(r) = url.strip_prefix("ws://") {
        r
    } else if url.starts_with("wss://") {
        return Err("wss:// is not supported by the simulator (use ws:// locally)".into());
    } else {
        return Err(format!("not a ws:// URL: {url}"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !authority.ends_with(']') => (
            h.to_owned(),
            p.parse::<u16>().map_err(|_| format!("bad port in {url}"))?,
        ),
        _ => (authority.to_owned(), 80),
    };
    if host.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok((host, port, path))
}

pub(crate) async fn connect(
    url: &str,
    auth_token: Option<&str>,
) -> Result<WebSocket<TokioIo<Upgraded>>, ConnectError> {
    let (host, port, path) = split_ws_url(url).map_err(ConnectError::Failed)?;
    let tcp_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        TcpStream::connect((tcp_host.as_str(), port)),
    )
    .await
    .map_err(|_| ConnectError::Failed("connect timeout".into()))?
    .map_err(|e| ConnectError::Failed(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut req = Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, format!("{host}:{port}"))
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header("Sec-WebSocket-Key", handshake::generate_key())
        .header("Sec-WebSocket-Version", "13")
        .header("user-agent", "telnyx-media-streaming");
    if let Some(t) = auth_token {
        req = req.header(AUTH_HEADER, t);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| ConnectError::Failed(format!("request: {e}")))?;
    let fut = handshake::client(&SpawnExecutor, req, tcp);
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Err(_) => Err(ConnectError::Failed("handshake timeout".into())),
        Ok(Err(WebSocketError::InvalidStatusCode(s))) => Err(ConnectError::Refused(s)),
        Ok(Err(e)) => Err(ConnectError::Failed(format!("handshake: {e}"))),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_ws_url("ws://127.0.0.1:9/a/b?t=1").unwrap(),
            ("127.0.0.1".into(), 9, "/a/b?t=1".into())
        );
        assert_eq!(
            split_ws_url("ws://h?t=1").unwrap(),
            ("h".into(), 80, "/?t=1".into())
        );
        assert_eq!(
            split_ws_url("ws://[::1]:7/x").unwrap(),
            ("[::1]".into(), 7, "/x".into())
        );
        assert!(split_ws_url("wss://h/x").is_err());
        assert!(split_ws_url("http://h/x").is_err());
    }
}
