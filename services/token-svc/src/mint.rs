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

/// The client a request counts against. Services listen on loopback behind Caddy, which sets
/// `X-Forwarded-For` to the real peer (it ignores the client's own header unless told to trust
/// it), so we take that header only from a loopback peer, and its last entry.
pub fn client_key(req: &HttpRequest) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let from_proxy = peer.is_some_and(|ip| ip.is_loopback());
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
