//! The client a request counts against: the TCP peer, or what a configured trusted proxy says it
//! forwarded for (`CALLWAY_TRUSTED_PROXIES`). A forged header from anyone else changes nothing.

use actix_web::HttpRequest;
use callway_core::client_addr::{ClientAddr, TrustedProxies};

pub fn client_addr(req: &HttpRequest, trusted: &TrustedProxies) -> ClientAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    trusted.client(peer, forwarded)
}
