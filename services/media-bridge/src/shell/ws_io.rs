//! The bridge's two sockets as [`callway_ws::WsConn`]s: each owned by its call's task, read in
//! the call's `select!` (reads are cancel-safe), written in output order with one flush per pass.
//! Handshakes stay with fastwebsockets (server upgrade) and `callway_ws::WsEndpoint` (client);
//! after them the raw upgraded stream is framed by `callway_ws`.

use callway_ws::{Role, WsConn};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// Both our sockets (server-side Telnyx, client-side OpenAI, TLS or not) end up as a hyper
/// upgraded stream, so one type serves both.
pub type Ws = fastwebsockets::WebSocket<TokioIo<Upgraded>>;
pub type Conn = WsConn<TokioIo<Upgraded>>;

/// After our close frame, how long the peer has to echo it.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Telnyx's socket: we are the server (its frames are masked).
pub fn telnyx_conn(ws: Ws, max_message: usize) -> Conn {
    WsConn::new(ws.into_inner(), Role::Server, max_message)
}

/// OpenAI's socket: we are the client (our frames are masked).
pub fn openai_conn(ws: Ws, max_message: usize) -> Conn {
    WsConn::new(ws.into_inner(), Role::Client, max_message)
}

/// Our Close, then the peer's echo awaited in the background (bounded), so the call's task (and
/// its call slot) is not held by a slow peer. Dropping the socket at once would reset it while
/// the peer still writes, and the close would be lost.
pub fn retire(conn: Conn, code: u16) {
    tokio::spawn(conn.close_and_linger(code, CLOSE_LINGER));
}
