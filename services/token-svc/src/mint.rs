//! `POST /api/realtime-token`.

use crate::error::TokenError;
use crate::TokenState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::session_token::WebSessionId;
use serde::Serialize;

#[derive(Serialize)]
struct TokenResponse {
    client_secret: String,
    expires_at: i64,
    session_token: String,
    realtime_calls_url: String,
    /// W3C trace context of this request: the page sends it back as `traceparent` on its tool
    /// calls so the whole journey is one trace. Absent when tracing is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// The client a request counts against. Services listen on loopback behind Caddy (natively) or on
/// a private container network (docker compose, where Caddy's address is the network's, not
/// loopback). Caddy sets `X-Forwarded-For` to the real peer (it ignores the client's own header
/// unless told to trust it), so we take that header only from such a peer, and its last entry.
/// The services must never be exposed directly (docs: "Production topology").
pub fn client_key(req: &HttpRequest) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let from_proxy = peer.is_some_and(is_proxy_address);
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|s| s.trim().to_owned())
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok());
    match (from_proxy, forwarded, peer) {
        (true, Some(ip), _) => ip,
        (_, _, Some(ip)) => ip.to_string(),
        _ => "unknown".into(),
    }
}

/// Loopback or private-network addresses: where Caddy reaches the services from.
fn is_proxy_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
    }
}

#[tracing::instrument(name = "token.mint", skip_all, fields(web_session))]
pub async fn mint(
    req: HttpRequest,
    state: web::Data<TokenState>,
) -> Result<HttpResponse, TokenError> {
    let now = chrono::Utc::now().timestamp();
    state
        .limiter
        .check(&client_key(&req), now)
        .await
        .inspect_err(|e| {
            tracing::warn!(error = %e, "token refused");
        })?;
    let secret = state.openai.create_client_secret().await.inspect_err(|e| {
        tracing::error!(error = %e, "client secret not minted");
    })?;
    let session = WebSessionId::generate();
    tracing::Span::current().record("web_session", session.as_str());
    let session_token = state
        .tokens
        .mint(&session, now + state.session_ttl_secs as i64);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            client_secret: secret.value,
            expires_at: secret.expires_at,
            session_token,
            realtime_calls_url: state.realtime_calls_url.clone(),
            traceparent: callway_core::telemetry::current_traceparent(),
        }))
}

#[cfg(test)]
mod tests {
    use super::client_key;
    use actix_web::test::TestRequest;

    fn key(peer: &str, forwarded: Option<&str>) -> String {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(f) = forwarded {
            req = req.insert_header(("x-forwarded-for", f));
        }
        client_key(&req.to_http_request())
    }

    #[test]
    fn the_forwarded_client_counts_only_behind_a_local_or_private_proxy() {
        // Caddy natively (loopback) and in docker compose (a private bridge network).
        assert_eq!(key("127.0.0.1:5000", Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(key("172.18.0.5:5000", Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(key("[fd00::5]:5000", Some("203.0.113.9")), "203.0.113.9");
        // Caddy appends the real peer: a client's own first entry is ignored.
        assert_eq!(
            key("10.0.0.2:5000", Some("1.2.3.4, 203.0.113.9")),
            "203.0.113.9"
        );
        // A public peer cannot choose its bucket.
        assert_eq!(
            key("198.51.100.7:5000", Some("203.0.113.9")),
            "198.51.100.7"
        );
        assert_eq!(key("172.18.0.5:5000", None), "172.18.0.5");
    }
}
