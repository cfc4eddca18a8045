//! token-svc's refusals: status, stable code, French sentence for the page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use callway_core::api_error::ApiErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("too many token requests from this client")]
    RateLimited { retry_after_secs: u64 },
    #[error("rate limiter unavailable: {0}")]
    LimiterUnavailable(String),
    #[error("OpenAI refused our API key (HTTP {0})")]
    UpstreamAuth(u16),
    #[error("OpenAI is rate limiting us")]
    UpstreamBusy,
    #[error("OpenAI did not answer in time")]
    UpstreamTimeout,
    #[error("OpenAI failed: {0}")]
    Upstream(String),
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::RateLimited { .. } => "rate_limited",
            TokenError::LimiterUnavailable(_) => "unavailable",
            TokenError::UpstreamAuth(_) => "upstream_auth",
            TokenError::UpstreamBusy => "upstream_busy",
            TokenError::UpstreamTimeout => "upstream_timeout",
            TokenError::Upstream(_) => "upstream_error",
        }
    }

    pub fn message_fr(&self) -> &'static str {
        match self {
            TokenError::RateLimited { .. } => {
                "Trop de tentatives. Patientez une minute avant de réessayer."
            }
            TokenError::UpstreamBusy | TokenError::UpstreamTimeout => {
                "Le service vocal est très sollicité. Réessayez dans quelques instants."
            }
            _ => "Le service vocal est momentanément indisponible. Réessayez plus tard.",
        }
    }
}

impl ResponseError for TokenError {
    fn status_code(&self) -> StatusCode {
        match self {
            TokenError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            TokenError::UpstreamBusy
            | TokenError::UpstreamTimeout
            | TokenError::LimiterUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            TokenError::UpstreamAuth(_) | TokenError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let TokenError::RateLimited { retry_after_secs } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        resp.json(ApiErrorBody::new(self.code(), self.message_fr()))
    }
}
