//! HTTP pieces every actix service shares: JSON body limits with our error shape, and `/health`.

use crate::api_error::ApiErrorBody;
use actix_web::error::JsonPayloadError;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

/// Largest JSON body a tool endpoint reads. Tool arguments are a few hundred bytes.
pub const MAX_JSON_BYTES: usize = 8 * 1024;

/// JSON extractor settings: size cap, and our error shape (in French) instead of actix's text.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| {
            let (status, code, message) = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => (
                    actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "La requête est trop volumineuse.",
                ),
                JsonPayloadError::ContentType => (
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "La requête doit être envoyée en JSON.",
                ),
                _ => (
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "La requête est mal formée.",
                ),
            };
            let body = ApiErrorBody::new(code, message);
            actix_web::error::InternalError::from_response(
                err,
                HttpResponse::build(status).json(body),
            )
            .into()
        })
}

/// One dependency's state in a health report.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyHealth {
    pub name: &'static str,
    pub kind: String,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub service: &'static str,
    pub version: &'static str,
    pub status: &'static str,
    pub dependencies: Vec<DependencyHealth>,
}

impl HealthReport {
    pub fn new(service: &'static str, dependencies: Vec<DependencyHealth>) -> Self {
        let status = if dependencies.iter().all(|d| d.ok) {
            "ok"
        } else {
            "degraded"
        };
        Self {
            service,
            version: env!("CARGO_PKG_VERSION"),
            status,
            dependencies,
        }
    }
}
