//! Client WebSocket plumbing shared by the media bridge (its OpenAI leg) and tools-svc (the web
//! call's sideband): one URL parser, one TLS set-up (rustls, ring, webpki roots, ALPN http/1.1),
//! one handshake bounded by a single deadline over TCP + TLS + upgrade.

mod conn;
mod endpoint;
pub mod frame;

pub use conn::{close_reply, Event, WriteError, WsConn, WRITE_TIMEOUT};
pub use endpoint::{encode_query_value, ConnectError, Ws, WsEndpoint};
pub use frame::Role;
