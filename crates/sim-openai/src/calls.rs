//! `POST /v1/realtime/calls` (SDP offer → answer, WebRTC peer) and call control.

use crate::client_secrets::{check_ephemeral, expired_body, EphemeralCheck};
use crate::errors::{self, rest_error, FieldError};
use crate::http::{bearer, error_response, has_beta_header, read_body, Resp};
use crate::ids::new_id;
use crate::recording::CallCreation;
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

/// What authorised a call creation.
enum Auth {
    /// A valid `ek_` secret and the session it carries.
    Ephemeral(Box<SessionConfig>),
    /// The standard API key.
    Standard,
}

pub(crate) async fn create(req: Request<Incoming>, shared: &Arc<Shared>) -> Resp {
    let key = bearer(&req);
    let unauthorized =
        |body| error_response(shared, &Method::POST, PATH, StatusCode::UNAUTHORIZED, body);
    let auth = match key.as_deref() {
        Some(k) if k.starts_with("ek_") => match check_ephemeral(shared, k) {
            EphemeralCheck::Valid(s) => Auth::Ephemeral(s),
            EphemeralCheck::Expired => return unauthorized(expired_body()),
            EphemeralCheck::Unknown => return unauthorized(errors::invalid_api_key(Some(k))),
        },
        Some(k) if k == shared.api_key => Auth::Standard,
        other => return unauthorized(errors::invalid_api_key(other)),
    };
    if has_beta_header(&req) {
        return bad_request(shared, errors::beta_disabled());
    }
    let query_model = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("model="))
        .map(str::to_string);
    if let Some(model) = query_model.as_deref() {
        if !is_known_model(model) {
            return bad_request(shared, errors::invalid_model(model, Some("model")));
        }
    }
    let ctype = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let media = crate::multipart::media_type(&ctype)
        .map(|(mt, _)| mt)
        .unwrap_or_default();
    let multipart = media == "multipart/form-data";
    if !multipart && media != "application/sdp" {
        let msg = format!(
            "Unsupported content type: '{ctype}'. This endpoint expects 'application/sdp' or 'multipart/form-data'."
        );
        return bad_request(
            shared,
            FieldError::new("unsupported_content_type", msg, None),
        );
    }
    if multipart && matches!(auth, Auth::Ephemeral(_)) {
        // The unified interface is for servers: a client secret already carries its session
        // and may only post a bare `application/sdp` offer (OpenAPI: "Use this variant when you
        // have previously created an ephemeral session token").
        return unauthorized(errors::rest_error(
            "Ephemeral client secrets can only create calls with an 'application/sdp' offer. Use a standard API key for multipart/form-data.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => {
            return bad_request(
                shared,
                FieldError::new(
                    "invalid_offer",
                    format!("Could not read the request body: {e}"),
                    None,
                ),
            )
        }
    };
    let (offer, mut session, created_with, session_request) = if multipart {
        let form = match crate::call_form::parse(&ctype, &body) {
            Ok(f) => f,
            Err(e) => return bad_request(shared, e),
        };
        let (session, raw) = match form.session {
            Some((cfg, raw)) => (cfg, Some(raw)),
            None => (SessionConfig::new_default(SessionType::Realtime), None),
        };
        (form.offer, session, CallCreation::Multipart, raw)
    } else {
        let Ok(offer) = String::from_utf8(body.to_vec()) else {
            return bad_request(
                shared,
                FieldError::new("invalid_offer", "The SDP offer is not UTF-8 text.", None),
            );
        };
        let session = match auth {
            Auth::Ephemeral(s) => *s,
            Auth::Standard => SessionConfig::new_default(SessionType::Realtime),
        };
        (offer, session, CallCreation::Sdp, None)
    };
    if let Some(model) = query_model {
        session.model = model;
    }
    let call_id = format!("rtc_{}", &new_id("")[..21]);
    let origin = CallOrigin {
        created_with,
        session_request,
    };
    let answer =
        match crate::webrtc::start_peer(&offer, session, call_id.clone(), origin, shared.clone()) {
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

/// How a call came to be, for its record.
pub(crate) struct CallOrigin {
    pub created_with: CallCreation,
    pub session_request: Option<serde_json::Value>,
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
    let call = match action {
        // Leaving the map is what ends the call for everyone else: a later attach or hang-up
        // finds nothing, whatever the peer task is still doing.
        "hangup" => lock(&shared.calls).remove(call_id),
        _ => lock(&shared.calls).get(call_id).cloned(),
    };
    let Some(call) = call else {
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
            let at = shared.recorder.moment();
            call.record.update(|c| c.hangup_requested = Some(at));
            call.close_sidebands(1000, "call hung up");
            call.hang_up();
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
