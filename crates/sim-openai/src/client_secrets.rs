//! `POST /v1/realtime/client_secrets`: mints `ek_…` secrets bound to a validated session.

use crate::errors::{self, rest_error, FieldError};
use crate::http::{bearer, error_response, has_beta_header, json_response, read_body, Resp};
use crate::ids::{new_id, unix_now};
use crate::recording::SecretRequest;
use crate::session_config::SessionConfig;
use crate::state::{lock, Secret, Shared};
use crate::validate as v;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

const PATH: &str = "/v1/realtime/client_secrets";

fn record(shared: &Shared, body: Value, status: StatusCode, value: Option<String>) {
    shared.recorder.with(|r| {
        r.client_secret_requests.push(SecretRequest {
            body,
            status: status.as_u16(),
            value,
        })
    });
}

fn fail(shared: &Shared, body_json: Value, status: StatusCode, err: Value) -> Resp {
    record(shared, body_json, status, None);
    error_response(shared, &Method::POST, PATH, status, err)
}

/// Validates the request body; returns the session and the TTL in seconds.
fn validate(body: &Value) -> Result<(SessionConfig, u64), FieldError> {
    let o = v::object(body, "")?;
    v::known_keys(o, &["expires_after", "session"], "")?;
    let mut ttl = 600;
    if let Some(ea) = o.get("expires_after") {
        let eo = v::object(ea, "expires_after")?;
        v::known_keys(eo, &["anchor", "seconds"], "expires_after")?;
        v::one_of(
            v::required(eo, "anchor", "expires_after")?,
            "expires_after.anchor",
            &["created_at"],
        )?;
        if let Some(s) = eo.get("seconds") {
            ttl = v::integer(s, "expires_after.seconds", 10, 7200)? as u64;
        }
    }
    let session = SessionConfig::from_request(v::required(o, "session", "")?, "session")?;
    Ok((session, ttl))
}

pub(crate) async fn handle(req: Request<Incoming>, shared: &Shared) -> Resp {
    let key = bearer(&req);
    let beta = has_beta_header(&req);
    let bytes = match read_body(req).await {
        Ok(b) => b,
        Err(e) => {
            let err = rest_error(
                &format!("Could not read the request body: {e}"),
                "invalid_request_error",
                None,
                None,
            );
            return fail(shared, Value::Null, StatusCode::BAD_REQUEST, err);
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let body_json = parsed.clone().unwrap_or(Value::Null);
    if key.as_deref() != Some(shared.api_key.as_str()) {
        return fail(
            shared,
            body_json,
            StatusCode::UNAUTHORIZED,
            errors::invalid_api_key(key.as_deref()),
        );
    }
    if beta {
        return fail(
            shared,
            body_json,
            StatusCode::BAD_REQUEST,
            errors::beta_disabled().rest_body(),
        );
    }
    let Some(body) = parsed else {
        let err = rest_error(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            "invalid_request_error",
            None,
            None,
        );
        return fail(shared, Value::Null, StatusCode::BAD_REQUEST, err);
    };
    let (session, ttl) = match validate(&body) {
        Ok(x) => x,
        Err(e) => return fail(shared, body, StatusCode::BAD_REQUEST, e.rest_body()),
    };
    let value = new_id("ek_");
    let expires_at = unix_now() + ttl;
    lock(&shared.secrets).insert(
        value.clone(),
        Secret {
            expires_at,
            session: session.clone(),
        },
    );
    record(shared, body, StatusCode::OK, Some(value.clone()));
    json_response(
        StatusCode::OK,
        &json!({"value": value, "expires_at": expires_at, "session": session.to_json()}),
    )
}

/// What an `ek_` bearer token is worth right now.
pub(crate) enum EphemeralCheck {
    Valid(Box<SessionConfig>),
    Expired,
    Unknown,
}

pub(crate) fn check_ephemeral(shared: &Shared, token: &str) -> EphemeralCheck {
    match lock(&shared.secrets).get(token) {
        None => EphemeralCheck::Unknown,
        Some(s) if s.expires_at <= unix_now() => EphemeralCheck::Expired,
        Some(s) => {
            let mut session = s.session.clone();
            session.id = new_id("sess_");
            EphemeralCheck::Valid(Box::new(session))
        }
    }
}

/// 401 body for an expired ephemeral key.
pub(crate) fn expired_body() -> Value {
    rest_error(
        "The provided ephemeral key has expired. Create a new client secret.",
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}
