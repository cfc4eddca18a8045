//! The server side every WebSocket server of ours shares (the media bridge, and the OpenAI and
//! Telnyx simulators): the accept loop, one HTTP/1.1 connection with upgrades, and the upgrade
//! itself ending in a [`WsConn`].

use crate::conn::WsConn;
use crate::frame::Role;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A server-side socket once upgraded.
pub type ServerConn = WsConn<TokioIo<Upgraded>>;

/// Accepts connections until `until` resolves. Each accepted stream (Nagle off: frames are small
/// and latency-bound) goes to `on_accept`, whose future, if it returns one, runs in `conns`;
/// finished ones are reaped as the loop goes. Accept errors (out of descriptors…) back off
/// instead of spinning.
pub async fn accept_until<F, Fut>(
    listener: &TcpListener,
    conns: &mut JoinSet<()>,
    until: impl Future<Output = ()>,
    mut on_accept: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(until);
    loop {
        tokio::select! {
            _ = &mut until => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    if let Some(serve) = on_accept(stream, peer) {
                        conns.spawn(serve);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Serves one HTTP/1.1 connection (upgrades allowed) with `svc`. With `header_timeout`, the
/// request head must arrive within it (hyper applies none without a timer).
pub async fn serve_http1<S>(stream: TcpStream, svc: S, header_timeout: Option<Duration>)
where
    S: Service<Request<Incoming>, Response = Response<http_body_util::Full<Bytes>>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = http1::Builder::new();
    if let Some(t) = header_timeout {
        builder.timer(TokioTimer::new()).header_read_timeout(t);
    }
    let conn = builder
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "HTTP connection");
    }
}

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    fastwebsockets::upgrade::is_upgrade_request(req)
}

/// Why an upgrade did not give a socket.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The request is not a valid WebSocket upgrade (answer 400).
    #[error("bad WebSocket upgrade: {0}")]
    Invalid(fastwebsockets::WebSocketError),
    /// The 101 went out but the connection was not handed over.
    #[error("upgrade not completed: {0}")]
    Incomplete(fastwebsockets::WebSocketError),
}

/// Answers a WebSocket upgrade: the 101 to send back, and the socket once the client has it.
pub fn accept(
    req: &mut Request<Incoming>,
) -> Result<(Response<Empty<Bytes>>, PendingConn), UpgradeError> {
    let (resp, fut) = fastwebsockets::upgrade::upgrade(req).map_err(UpgradeError::Invalid)?;
    Ok((resp, PendingConn(fut)))
}

/// An upgrade answered but not yet completed by the client.
pub struct PendingConn(fastwebsockets::upgrade::UpgradeFut);

impl PendingConn {
    /// The socket, framed by us as the server; messages over `max_message` close it (1009).
    pub async fn ready(self, max_message: usize) -> Result<ServerConn, UpgradeError> {
        let ws = self.0.await.map_err(UpgradeError::Incomplete)?;
        Ok(WsConn::new(ws.into_inner(), Role::Server, max_message))
    }
}
