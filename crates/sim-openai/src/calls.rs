//! `POST /v1/realtime/calls` (SDP offer → answer, WebRTC peer) and call control.

use crate::client_secrets::{check_ephemeral, expired_body, EphemeralCheck};
use crate::errors::{self, rest_error, FieldError};
use crate::http::{bearer, error_response, has_beta_header, read_body, Resp};
use crate::ids::new_id;
use crate::session_config::{is_known_model, SessionConfig, SessionType};
use crate::state::{lock, Shared};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

const PATH: &str = "/v1/realtime/calls";

fn bad_request(shared: &Shared, e: FieldError) -> Resp {
    error_response(
        shared,
        &Method::POST,
        PATH,
        StatusCode::BAD_REQUEST,
        e.rest_body(),
    )
}

pub(crate) async fn create(req: Request<Incoming>, shared: &Arc<Shared>) -> Resp {
    let key = bearer(&req);
    let session = match key.as_deref() {
        Some(k) if k.starts_with("ek_") => match check_ephemeral(shared, k) {
            EphemeralCheck::Valid(s) => *s,
            EphemeralCheck::Expired => {
                return error_response(
                    shared,
                    &Method::POST,
                    PATH,
                    StatusCode::UNAUTHORIZED,
                    expired_body(),
                )
            }
            EphemeralCheck::Unknown => {
                return error_response(
                    shared,
                    &Method::POST,
                    PATH,
                    StatusCode::UNAUTHORIZED,
                    errors::invalid_api_key(Some(k)),
                )
            }
        },
        Some(k) if k == shared.api_key => SessionConfig::new_default(SessionType::Realtime),
        other => {
            return error_response(
                shared,
                &Method::POST,
                PATH,
                StatusCode::UNAUTHORIZED,
                errors::invalid_api_key(other),
            )
        }
    };
    if has_beta_header(&req) {
        return bad_request(shared, errors::beta_disabled());
    }
    let mut session = session;
    if let Some(model) = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("model="))
    {
        if !is_known_model(model) {
            return bad_request(shared, errors::invalid_model(model, Some("model")));
        }
        session.model = model.to_string();
    }
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ctype.starts_with("application/sdp") {
        let msg = if ctype.starts_with("multipart/form-data") {
            "The simulator supports only 'application/sdp' offers authorised by an ephemeral key (no multipart unified interface).".to_string()
        } else {
            format!("Unsupported content type: '{ctype}'. This endpoint expects 'application/sdp'.")
        };
        return bad_request(
            shared,
            FieldError::new("unsupported_content_type", msg, None),
        );
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => {
            return bad_request(
                shared,
                FieldError::new(
                    "invalid_offer",
                    format!("Could not read the SDP offer: {e}"),
                    None,
                ),
            )
        }
    };
    let Ok(offer) = std::str::from_utf8(&body) else {
        return bad_request(
            shared,
            FieldError::new("invalid_offer", "The SDP offer is not UTF-8 text.", None),
        );
    };
    let call_id = format!("rtc_{}", &new_id("")[..21]);
    let answer = match crate::webrtc::start_peer(offer, session, call_id.clone(), shared.clone()) {
        Ok(a) => a,
        Err(e) => return bad_request(shared, e),
    };
    let mut r = Response::new(Full::new(Bytes::from(answer)));
    *r.status_mut() = StatusCode::CREATED;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/realtime/calls/{call_id}")) {
        r.headers_mut().insert(LOCATION, loc);
    }
    r
}

/// `POST /v1/realtime/calls/{call_id}/hangup` (standard key). SIP-only controls answer 400.
pub(crate) async fn control(req: Request<Incoming>, shared: &Arc<Shared>) -> Resp {
    let path = req.uri().path().to_string();
    let key = bearer(&req);
    if key.as_deref() != Some(shared.api_key.as_str()) {
        return error_response(
            shared,
            &Method::POST,
            &path,
            StatusCode::UNAUTHORIZED,
            errors::invalid_api_key(key.as_deref()),
        );
    }
    let rest = path.trim_start_matches("/v1/realtime/calls/");
    let (call_id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let notify = lock(&shared.calls).get(call_id).cloned();
    let Some(notify) = notify else {
        let body = rest_error(
            &format!("Call '{call_id}' not found."),
            "invalid_request_error",
            Some("call_id"),
            Some("call_not_found"),
        );
        return error_response(shared, &Method::POST, &path, StatusCode::NOT_FOUND, body);
    };
    match action {
        "hangup" => {
            notify.notify_one();
            Response::new(Full::new(Bytes::new()))
        }
        "accept" | "reject" | "refer" => {
            let body = rest_error(
                "This call is a WebRTC call; accept, reject and refer apply to SIP calls only.",
                "invalid_request_error",
                None,
                Some("invalid_call_state"),
            );
            error_response(shared, &Method::POST, &path, StatusCode::BAD_REQUEST, body)
        }
        _ => {
            let body = rest_error(
                &format!("Invalid URL (POST {path})"),
                "invalid_request_error",
                None,
                None,
            );
            error_response(shared, &Method::POST, &path, StatusCode::NOT_FOUND, body)
        }
    }
}
