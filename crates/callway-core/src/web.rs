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
            let response = HttpResponse::build(status).json(ApiErrorBody::new(code, message));
            // The error is recorded on the request's span and log line: serde's message would
            // quote the offending value (a phone number sent as a JSON number), so keep only
            // the kind and position.
            match err {
                JsonPayloadError::Deserialize(e) | JsonPayloadError::Serialize(e) => {
                    let redacted = crate::json_error::RedactedJsonError::new(&e);
                    actix_web::error::InternalError::from_response(redacted, response).into()
                }
                other => actix_web::error::InternalError::from_response(other, response).into(),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, App};

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Lead {
        phone: String,
    }

    async fn save(_: web::Json<Lead>) -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    /// A phone number sent as a JSON number: serde's message quotes it, and that message is what
    /// the request's span and log line record as the error. It must not be there.
    #[actix_web::test]
    async fn a_phone_sent_as_a_json_number_is_not_in_the_recorded_error() {
        let app = test::init_service(
            App::new()
                .app_data(json_config(MAX_JSON_BYTES))
                .route("/lead", web::post().to(save)),
        )
        .await;
        let req = test::TestRequest::post()
            .uri("/lead")
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"phone": 33612345678}"#)
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), 400);
        let error = resp.response().error().expect("the error is attached");
        let recorded = format!("{error} {error:?}");
        assert!(!recorded.contains("612345678"), "{recorded}");
        assert!(recorded.contains("line 1 column"), "{recorded}");
        let body = test::read_body(resp).await;
        assert!(!String::from_utf8_lossy(&body).contains("612345678"));
    }
}
