//! Every way a tool call can be refused, as an HTTP status, a stable code and a French sentence
//! the voice agent can say to the visitor.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use callway_core::api_error::ApiErrorBody;
use callway_core::lead::NameError;
use callway_core::lead_store::StoreError;
use callway_core::phone::PhoneError;
use callway_core::session_token::SessionTokenError;

#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("web session refused: {0}")]
    Session(SessionTokenError),
    #[error("consent not given")]
    ConsentRequired,
    #[error("{field} refused: {error}")]
    Name {
        field: &'static str,
        error: NameError,
    },
    #[error("phone refused: {0}")]
    Phone(PhoneError),
    #[error("lead store failed: {0}")]
    Store(StoreError),
}

impl ToolsError {
    pub fn code(&self) -> &'static str {
        match self {
            ToolsError::Session(SessionTokenError::Missing) => "session_missing",
            ToolsError::Session(SessionTokenError::Expired) => "session_expired",
            ToolsError::Session(_) => "session_invalid",
            ToolsError::ConsentRequired => "consent_required",
            ToolsError::Name {
                field: "first_name",
                ..
            } => "first_name_invalid",
            ToolsError::Name { .. } => "last_name_invalid",
            ToolsError::Phone(p) => p.code(),
            ToolsError::Store(_) => "storage_unavailable",
        }
    }

    pub fn message_fr(&self) -> &'static str {
        match self {
            ToolsError::Session(SessionTokenError::Expired) => {
                "La session a expiré. Rechargez la page pour reprendre la conversation."
            }
            ToolsError::Session(_) => "Cette session n'est pas reconnue. Rechargez la page pour recommencer.",
            ToolsError::ConsentRequired => {
                "Je ne peux enregistrer vos coordonnées qu'avec votre accord explicite. Acceptez-vous ?"
            }
            ToolsError::Name { field: "first_name", .. } => {
                "Je n'ai pas bien compris votre prénom. Pouvez-vous me l'épeler ?"
            }
            ToolsError::Name { .. } => "Je n'ai pas bien compris votre nom. Pouvez-vous me l'épeler ?",
            ToolsError::Phone(p) => p.message_fr(),
            ToolsError::Store(_) => {
                "Je n'arrive pas à enregistrer vos coordonnées pour le moment. Réessayons dans un instant."
            }
        }
    }
}

impl ResponseError for ToolsError {
    fn status_code(&self) -> StatusCode {
        match self {
            ToolsError::Session(_) => StatusCode::UNAUTHORIZED,
            ToolsError::ConsentRequired | ToolsError::Name { .. } | ToolsError::Phone(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ToolsError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(ApiErrorBody::new(self.code(), self.message_fr()))
    }
}
