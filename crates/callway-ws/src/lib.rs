//! Client WebSocket plumbing shared by the media bridge (its OpenAI leg) and tools-svc (the web
//! call's sideband): one URL parser, one TLS set-up (rustls, ring, webpki roots, ALPN http/1.1),
//! one handshake bounded by a single deadline over TCP + TLS + upgrade.

mod endpoint;

pub use endpoint::{encode_query_value, ConnectError, Ws, WsEndpoint};
