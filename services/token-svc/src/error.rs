//! token-svc's refusals: status, stable code, French sentence for the page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use callway_core::api_error::ApiErrorBody;
use callway_core::limits::LimitScope;
use callway_core::session_token::SessionTokenError;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the request body is not an SDP offer ({0})")]
    InvalidOffer(&'static str),
    #[error("the SDP offer must be sent as application/sdp")]
    UnsupportedMediaType,
    #[error("the SDP offer is too large")]
    BodyTooLarge,
    #[error("too many sessions from this {scope:?}")]
    RateLimited {
        scope: LimitScope,
        retry_after_secs: u64,
    },
    #[error("the demo is at its concurrent-session cap")]
    DemoBusy,
    #[error("shared store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("web session token: {0}")]
    Session(SessionTokenError),
    #[error("no such web session")]
    SessionNotFound,
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
    /// The `reason` label of `callway.web.sessions.refused`.
    pub fn refusal(&self) -> callway_core::metrics::SessionRefusal {
        use callway_core::metrics::SessionRefusal as R;
        match self {
            TokenError::DemoBusy => R::Busy,
            TokenError::RateLimited { .. } => R::RateLimited,
            TokenError::UpstreamAuth(_)
            | TokenError::UpstreamBusy
            | TokenError::UpstreamTimeout
            | TokenError::Upstream(_) => R::Upstream,
            TokenError::StoreUnavailable(_) => R::Unavailable,
            TokenError::InvalidOffer(_)
            | TokenError::UnsupportedMediaType
            | TokenError::BodyTooLarge
            | TokenError::Session(_)
            | TokenError::SessionNotFound => R::Invalid,
        }
    }

    /// The `kind` label of `callway.upstream.errors` when OpenAI failed.
    pub fn upstream_kind(&self) -> Option<&'static str> {
        match self {
            TokenError::UpstreamAuth(_) => Some("auth"),
            TokenError::UpstreamBusy => Some("rate_limited"),
            TokenError::UpstreamTimeout => Some("timeout"),
            TokenError::Upstream(_) => Some("error"),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidOffer(_) => "invalid_offer",
            TokenError::UnsupportedMediaType => "unsupported_media_type",
            TokenError::BodyTooLarge => "body_too_large",
            TokenError::RateLimited {
                scope: LimitScope::Client,
                ..
            } => "rate_limited",
            TokenError::RateLimited { .. } => "network_rate_limited",
            TokenError::DemoBusy => "demo_busy",
            TokenError::StoreUnavailable(_) => "unavailable",
            TokenError::Session(SessionTokenError::Missing) => "session_missing",
            TokenError::Session(SessionTokenError::Expired) => "session_expired",
            TokenError::Session(_) => "session_invalid",
            TokenError::SessionNotFound => "session_not_found",
            TokenError::UpstreamAuth(_) => "upstream_auth",
            TokenError::UpstreamBusy => "upstream_busy",
            TokenError::UpstreamTimeout => "upstream_timeout",
            TokenError::Upstream(_) => "upstream_error",
        }
    }

    pub fn message_fr(&self) -> &'static str {
        match self {
            TokenError::InvalidOffer(_) | TokenError::UnsupportedMediaType | TokenError::BodyTooLarge => {
                "Votre navigateur a envoyé une demande de connexion invalide. Rechargez la page, puis réessayez."
            }
            TokenError::RateLimited {
                scope: LimitScope::Client,
                ..
            } => "Vous avez lancé beaucoup de démonstrations en peu de temps. Réessayez un peu plus tard.",
            TokenError::RateLimited { .. } => {
                "Beaucoup de démonstrations ont été lancées depuis votre réseau. Réessayez un peu plus tard."
            }
            TokenError::DemoBusy => "La démo est très demandée, réessayez dans un instant.",
            TokenError::Session(SessionTokenError::Expired) => {
                "Votre session a expiré. Touchez le micro pour en démarrer une nouvelle."
            }
            TokenError::Session(_) | TokenError::SessionNotFound => "Session inconnue.",
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
            TokenError::InvalidOffer(_) => StatusCode::BAD_REQUEST,
            TokenError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TokenError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            TokenError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            TokenError::Session(_) => StatusCode::UNAUTHORIZED,
            TokenError::SessionNotFound => StatusCode::NOT_FOUND,
            TokenError::DemoBusy
            | TokenError::UpstreamBusy
            | TokenError::UpstreamTimeout
            | TokenError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            TokenError::UpstreamAuth(_) | TokenError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            TokenError::RateLimited {
                retry_after_secs, ..
            } => {
                resp.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            TokenError::DemoBusy => {
                resp.insert_header(("Retry-After", "15"));
            }
            _ => {}
        }
        resp.json(ApiErrorBody::new(self.code(), self.message_fr()))
    }
}
