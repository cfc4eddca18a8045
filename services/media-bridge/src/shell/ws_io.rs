//! The bridge's two sockets as [`callway_ws::WsConn`]s: each owned by its call's task, read in
//! the call's `select!` (reads are cancel-safe), written in output order with one flush per pass.
//! Handshakes: `callway_ws::accept` (server, Telnyx) and `callway_ws::WsEndpoint` (client,
//! OpenAI).

use std::time::Duration;

/// Both our sockets (server-side Telnyx, client-side OpenAI, TLS or not) are a hyper upgraded
/// stream framed by `callway_ws`, so one type serves both.
pub type Conn = callway_ws::ServerConn;

/// After our close frame, how long the peer has to echo it.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Our Close, then the peer's echo awaited in the background (bounded), so the call's task (and
/// its call slot) is not held by a slow peer. Dropping the socket at once would reset it while
/// the peer still writes, and the close would be lost.
pub fn retire(conn: Conn, code: u16) {
    tokio::spawn(conn.close_and_linger(code, CLOSE_LINGER));
}
