//! WebSocket plumbing shared by the media bridge, tools-svc (the web call's sideband) and the
//! OpenAI and Telnyx simulators, so they read as siblings:
//! - `frame`: RFC 6455 framing, sans-IO (bytes in, borrowed messages out);
//! - [`WsConn`]: one socket owned by one task, cancel-safe reads, queued writes flushed under a
//!   timeout, exactly one Close;
//! - `server`: the accept loop, an HTTP/1.1 connection with upgrades, the upgrade to a `WsConn`;
//! - [`WsEndpoint`]: the client side — one URL parser, one TLS set-up (rustls, ring, webpki
//!   roots, ALPN http/1.1), one handshake bounded by a single deadline over TCP + TLS + upgrade.

mod conn;
mod endpoint;
pub mod frame;
pub mod server;

pub use conn::{close_reply, Event, WriteError, WsConn, WRITE_TIMEOUT};
pub use endpoint::{encode_query_value, ClientConn, ConnectError, Credential, Ws, WsEndpoint};
pub use frame::Role;
pub use server::{accept, accept_until, serve_http1, PendingConn, ServerConn, UpgradeError};
