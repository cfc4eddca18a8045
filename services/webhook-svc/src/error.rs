//! webhook-svc's refusals: status, stable code, French sentence. Telnyx reads only the status:
//! a 4xx for what a retry cannot fix (a bad signature), a 5xx or 409 for what a later delivery
//! of the same event will find done or doable — never a 2xx for an effect we could not store.

use crate::signature::SignatureError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use callway_core::api_error::ApiErrorBody;
use callway_core::call_context::ContextError;
use callway_core::lead_store::StoreError;
use callway_core::telnyx::TelnyxError;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature refused: {0}")]
    Signature(SignatureError),
    /// Another delivery of the same event is being handled right now.
    #[error("the same event is being handled")]
    InProgress,
    #[error("shared store unavailable: {0}")]
    Context(#[from] ContextError),
    #[error("lead store unavailable: {0}")]
    Leads(#[from] StoreError),
    #[error("Telnyx command failed: {0}")]
    Telnyx(#[from] TelnyxError),
}

impl WebhookError {
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Signature(SignatureError::MissingHeader) => "signature_missing",
            WebhookError::Signature(SignatureError::Stale) => "timestamp_out_of_window",
            WebhookError::Signature(_) => "signature_invalid",
            WebhookError::InProgress => "in_progress",
            WebhookError::Context(_) | WebhookError::Leads(_) | WebhookError::Telnyx(_) => {
                "unavailable"
            }
        }
    }

    fn message(&self) -> &'static str {
        match self {
            WebhookError::Signature(_) => "Signature du webhook refusée.",
            WebhookError::InProgress => "Événement en cours de traitement, réessayez plus tard.",
            _ => "Service indisponible, réessayez plus tard.",
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
            WebhookError::InProgress => StatusCode::CONFLICT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ApiErrorBody::new(self.code(), self.message()))
    }
}
