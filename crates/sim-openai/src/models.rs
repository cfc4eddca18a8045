//! `GET /v1/models` and `GET /v1/models/{model}` (OpenAPI `ListModelsResponse`, `Model`): the
//! realtime models the simulator accepts, with the `shutdown_date` configured for them.

use crate::errors::{self, rest_error};
use crate::http::{bearer, error_response, json_response, Resp};
use crate::session_config::MODELS;
use crate::state::{lock, Shared};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

/// Creation times shown for the models (Unix seconds). OpenAI's values are not published per
/// model; these are the release dates where known (dated snapshots) and plausible otherwise.
fn created(model: &str) -> i64 {
    match model {
        "gpt-4o-realtime-preview" | "gpt-4o-realtime-preview-2024-12-17" => 1_734_393_600,
        "gpt-4o-mini-realtime-preview" | "gpt-4o-mini-realtime-preview-2024-12-17" => 1_734_393_600,
        "gpt-4o-realtime-preview-2025-06-03" => 1_748_908_800,
        "gpt-realtime" | "gpt-realtime-2025-08-28" => 1_756_339_200,
        "gpt-realtime-mini" | "gpt-realtime-mini-2025-10-06" => 1_759_708_800,
        "gpt-realtime-mini-2025-12-15" => 1_765_756_800,
        "gpt-realtime-2" => 1_778_112_000,
        _ => 1_767_225_600,
    }
}

fn model_object(shared: &Shared, model: &str) -> Value {
    let shutdown = lock(&shared.model_shutdowns)
        .get(model)
        .map(|d| d.format("%Y-%m-%d").to_string());
    json!({
        "id": model,
        "object": "model",
        "created": created(model),
        "owned_by": "system",
        "shutdown_date": shutdown,
    })
}

/// Standard key only (an `ek_` secret is for Realtime calls and sockets): `None` when
/// authorised, else the 401.
fn refusal<B>(shared: &Shared, req: &Request<B>, path: &str) -> Option<Resp> {
    let key = bearer(req);
    if key.as_deref() == Some(shared.api_key.as_str()) {
        return None;
    }
    Some(error_response(
        shared,
        &Method::GET,
        path,
        StatusCode::UNAUTHORIZED,
        errors::invalid_api_key(key.as_deref()),
    ))
}

pub(crate) fn list(req: Request<Incoming>, shared: &Shared) -> Resp {
    if let Some(r) = refusal(shared, &req, "/v1/models") {
        return r;
    }
    let data: Vec<Value> = MODELS.iter().map(|m| model_object(shared, m)).collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

pub(crate) fn retrieve(req: Request<Incoming>, shared: &Shared) -> Resp {
    let path = req.uri().path().to_string();
    if let Some(r) = refusal(shared, &req, &path) {
        return r;
    }
    let model = path.trim_start_matches("/v1/models/");
    if MODELS.contains(&model) {
        return json_response(StatusCode::OK, &model_object(shared, model));
    }
    let body = rest_error(
        &format!("The model `{model}` does not exist or you do not have access to it."),
        "invalid_request_error",
        None,
        Some("model_not_found"),
    );
    error_response(shared, &Method::GET, &path, StatusCode::NOT_FOUND, body)
}
