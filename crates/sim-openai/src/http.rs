//! The HTTP front (hyper 1): routing, auth helpers, CORS, forced failures.

use crate::config::Failure;
use crate::errors::{self, rest_error};
use crate::recording::HttpError;
use crate::state::{lock, Shared};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;

pub(crate) type Resp = Response<Full<Bytes>>;

const MAX_BODY: usize = 1024 * 1024;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An error response, recorded.
pub(crate) fn error_response(
    shared: &Shared,
    method: &Method,
    path: &str,
    status: StatusCode,
    body: Value,
) -> Resp {
    shared.recorder.with(|r| {
        r.http_errors.push(HttpError {
            method: method.to_string(),
            path: path.to_string(),
            status: status.as_u16(),
            body: body.clone(),
        })
    });
    json_response(status, &body)
}

/// `Authorization: Bearer <token>`.
pub(crate) fn bearer<B>(req: &Request<B>) -> Option<String> {
    let h = req
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

pub(crate) fn has_beta_header<B>(req: &Request<B>) -> bool {
    req.headers().get("openai-beta").is_some()
}

pub(crate) async fn read_body(req: Request<Incoming>) -> Result<Bytes, String> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string())
}

fn with_cors(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("Location"),
    );
    r
}

fn preflight() -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization, content-type, openai-safety-identifier"),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("600"));
    with_cors(r)
}

fn forced_failure(shared: &Shared, method: &Method, path: &str, f: &Failure) -> Option<Resp> {
    let (status, body) = match f {
        Failure::Unauthorized => (StatusCode::UNAUTHORIZED, errors::invalid_api_key(Some("forced-failure-key"))),
        Failure::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            rest_error(
                "Rate limit reached for requests per min (RPM): Limit 100, Used 100, Requested 1. Please try again in 600ms.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            ),
        ),
        Failure::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            rest_error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            ),
        ),
        Failure::Stall(_) => return None,
    };
    Some(error_response(shared, method, path, status, body))
}

/// Entry point for every request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if method == Method::OPTIONS {
        return Ok(preflight());
    }
    let failure = lock(&shared.fail_next).take();
    if let Some(f) = failure {
        if let Failure::Stall(d) = f {
            tokio::time::sleep(d).await;
        } else if let Some(resp) = forced_failure(&shared, &method, &path, &f) {
            return Ok(with_cors(resp));
        }
    }
    let resp = match (method.clone(), path.as_str()) {
        (Method::POST, "/v1/realtime/client_secrets") => {
            crate::client_secrets::handle(req, &shared).await
        }
        (Method::POST, "/v1/realtime/calls") => crate::calls::create(req, &shared).await,
        (Method::POST, p) if p.starts_with("/v1/realtime/calls/") => {
            crate::calls::control(req, &shared).await
        }
        (Method::GET, "/v1/realtime") => crate::ws::upgrade(req, &shared),
        (Method::GET, "/v1/models") => crate::models::list(req, &shared),
        (Method::GET, p) if p.starts_with("/v1/models/") => crate::models::retrieve(req, &shared),
        (Method::POST, "/v1/realtime/sessions")
        | (Method::POST, "/v1/realtime/transcription_sessions") => {
            let body = errors::beta_disabled().rest_body();
            error_response(&shared, &method, &path, StatusCode::BAD_REQUEST, body)
        }
        (Method::GET, "/health") => {
            json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
        }
        _ => {
            let body = rest_error(
                &format!("Invalid URL ({method} {path})"),
                "invalid_request_error",
                None,
                None,
            );
            error_response(&shared, &method, &path, StatusCode::NOT_FOUND, body)
        }
    };
    Ok(with_cors(resp))
}
