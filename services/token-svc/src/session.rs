//! `POST /api/realtime/session`: the page's SDP offer in, OpenAI's SDP answer and our web-session
//! token out. Limits are checked before anything costs money; the call is registered (Redis) so a
//! tools-svc instance attaches its sideband and runs the agent's tools.
//! `GET /api/realtime/session`: how the page's session stands (active, or why it ended).

use crate::error::TokenError;
use crate::TokenState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::limits::{LimitError, LimitKind};
use callway_core::session_token::{SessionTokenError, WebSessionId};
use callway_core::web_call::{WebCall, WebCallEnd};
use serde::Serialize;

/// Largest SDP offer we read (Chromium's are 3–6 KB with candidates); Caddy allows 16 KiB.
pub const MAX_OFFER_BYTES: usize = 16 * 1024;

#[derive(Serialize)]
struct SessionCreated {
    sdp: String,
    session_token: String,
    expires_at: i64,
    max_session_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// The offer as text, if it is one: right content type, bounded, SDP-shaped.
fn parse_offer(req: &HttpRequest, body: &[u8]) -> Result<String, TokenError> {
    let ctype = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.to_ascii_lowercase().starts_with("application/sdp") {
        return Err(TokenError::UnsupportedMediaType);
    }
    if body.len() > MAX_OFFER_BYTES {
        return Err(TokenError::BodyTooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| TokenError::InvalidOffer("not UTF-8"))?;
    if !text.trim_start().starts_with("v=0") || !text.contains("m=audio") {
        return Err(TokenError::InvalidOffer("not an SDP offer with audio"));
    }
    Ok(text.to_owned())
}

fn limit_refused(e: LimitError) -> TokenError {
    match e {
        LimitError::Refused {
            scope,
            retry_after_secs,
            ..
        } => TokenError::RateLimited {
            scope,
            retry_after_secs,
        },
        LimitError::Unavailable(e) => TokenError::StoreUnavailable(e.to_string()),
    }
}

/// `POST /api/realtime/session`, counted (`callway.web.sessions.started` / `.refused`).
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<TokenState>,
) -> Result<HttpResponse, TokenError> {
    let result = create_session(req, body, state).await;
    let m = callway_core::metrics::get();
    match &result {
        Ok(_) => m.sessions_started.add(1, &[]),
        Err(e) => {
            m.session_refused(e.refusal());
            if let Some(kind) = e.upstream_kind() {
                m.upstream_error(callway_core::metrics::Peer::OpenAi, kind);
            }
        }
    }
    result
}

#[tracing::instrument(name = "web.session_create", skip_all, fields(web_session, call_id))]
async fn create_session(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<TokenState>,
) -> Result<HttpResponse, TokenError> {
    let offer = parse_offer(&req, &body)?;
    let client = crate::client::client_addr(&req, &state.trusted);
    let now = chrono::Utc::now();
    let taken = state
        .limits
        .take(LimitKind::Session, &client, now.timestamp())
        .await
        .map_err(limit_refused)
        .inspect_err(|e| tracing::info!(code = e.code(), "web session refused"))?;
    let session = WebSessionId::generate();
    let span = tracing::Span::current();
    span.record("web_session", session.as_str());
    let deadline = now + chrono::Duration::seconds(state.max_session_secs as i64);
    // The slot lasts a little past the deadline: the goodbye and the hang-up take a few seconds.
    let slot_until = deadline.timestamp_millis() + 30_000;
    let reserved = state
        .web_calls
        .reserve_slot(
            &session,
            now.timestamp_millis(),
            slot_until,
            state.max_sessions,
        )
        .await;
    match reserved {
        Ok(true) => {}
        Ok(false) => {
            state.limits.give_back(taken).await;
            tracing::info!(code = "demo_busy", "web session refused");
            return Err(TokenError::DemoBusy);
        }
        Err(e) => {
            state.limits.give_back(taken).await;
            return Err(TokenError::StoreUnavailable(e.to_string()));
        }
    }
    let created = match state.openai.create_call(&offer).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "web call not created");
            let _ = state.web_calls.release_slot(&session).await;
            if !matches!(e, TokenError::InvalidOffer(_)) {
                state.limits.give_back(taken).await;
            }
            return Err(e);
        }
    };
    span.record("call_id", created.call_id.as_str());
    let call = WebCall {
        session: session.clone(),
        rtc_call_id: created.call_id.clone(),
        client,
        started_at: now,
        deadline,
        traceparent: callway_core::telemetry::current_traceparent(),
        ended: None,
        handoff: None,
    };
    if let Err(e) = state.web_calls.put(&call).await {
        // Nobody could control this call: end it rather than leave a voice agent without tools.
        tracing::error!(error = %e, "web call not registered; hanging it up");
        if let Err(h) = state.call_control.hangup(&created.call_id).await {
            tracing::warn!(error = %h, "hang-up of the unregistered call failed");
        }
        let _ = state.web_calls.release_slot(&session).await;
        return Err(TokenError::StoreUnavailable(e.to_string()));
    }
    let expires_at = now.timestamp() + state.session_ttl_secs.max(state.max_session_secs) as i64;
    tracing::info!("web session created");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionCreated {
            sdp: created.sdp_answer,
            session_token: state.tokens.mint(&session, expires_at),
            expires_at,
            max_session_secs: state.max_session_secs,
            traceparent: callway_core::telemetry::current_traceparent(),
        }))
}

#[derive(Serialize)]
struct SessionStatus {
    state: &'static str,
    reason: Option<WebCallEnd>,
    call_id: Option<String>,
    phone_masked: Option<String>,
}

pub async fn status(
    req: HttpRequest,
    state: web::Data<TokenState>,
) -> Result<HttpResponse, TokenError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(TokenError::Session(SessionTokenError::Missing))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(TokenError::Session(SessionTokenError::Malformed))?;
    let session = state
        .tokens
        .verify(token, chrono::Utc::now().timestamp())
        .map_err(TokenError::Session)?;
    let call = state
        .web_calls
        .load(&session)
        .await
        .map_err(|e| TokenError::StoreUnavailable(e.to_string()))?
        .ok_or(TokenError::SessionNotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionStatus {
            state: if call.ended.is_some() {
                "ended"
            } else {
                "active"
            },
            reason: call.ended,
            call_id: call
                .handoff
                .as_ref()
                .map(|h| h.call_ref.as_str().to_owned()),
            phone_masked: call.handoff.map(|h| h.phone_masked),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn offer(ctype: &str, body: &str) -> Result<String, TokenError> {
        let req = TestRequest::default()
            .insert_header(("content-type", ctype))
            .to_http_request();
        parse_offer(&req, body.as_bytes())
    }

    #[test]
    fn only_an_sdp_offer_with_audio_is_read() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert!(offer("application/sdp", sdp).is_ok());
        assert!(matches!(
            offer("application/json", sdp),
            Err(TokenError::UnsupportedMediaType)
        ));
        assert!(matches!(
            offer("application/sdp", "{}"),
            Err(TokenError::InvalidOffer(_))
        ));
        assert!(matches!(
            offer("application/sdp", "v=0\r\nm=video 9\r\n"),
            Err(TokenError::InvalidOffer(_))
        ));
        let huge = format!("{sdp}{}", "a".repeat(MAX_OFFER_BYTES));
        assert!(matches!(
            offer("application/sdp", &huge),
            Err(TokenError::BodyTooLarge)
        ));
    }
}
