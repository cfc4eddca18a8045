//! Every way a tool call can be refused, as an HTTP status, a stable code and a French sentence
//! the voice agent can say to the visitor.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use callway_core::api_error::ApiErrorBody;
use callway_core::call_context::ContextError;
use callway_core::lead::NameError;
use callway_core::lead_store::StoreError;
use callway_core::limits::{LimitError, LimitKind, LimitScope};
use callway_core::phone::PhoneError;
use callway_core::session_token::SessionTokenError;
use callway_core::telnyx::TelnyxError;

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
    #[error("calls are not configured")]
    CallsUnavailable,
    #[error("unknown tool {0}")]
    UnknownTool(String),
    #[error("tool arguments refused: {0}")]
    InvalidArguments(String),
    #[error("{kind:?} limit reached ({scope:?})")]
    Limited { kind: LimitKind, scope: LimitScope },
    #[error("lead not found for this session")]
    LeadNotFound,
    #[error("call not found for this session")]
    CallNotFound,
    #[error("this session already asked for a callback")]
    CallbackAlreadyRequested,
    #[error("this number was called recently")]
    NumberCooldown,
    #[error("daily callback cap reached")]
    DailyCapReached,
    #[error("context store failed: {0}")]
    Context(ContextError),
    #[error("dial failed: {0}")]
    Dial(TelnyxError),
}

impl ToolsError {
    /// The `reason` label of `callway.callbacks.refused`.
    pub fn callback_refusal(&self) -> callway_core::metrics::CallbackRefusal {
        use callway_core::metrics::CallbackRefusal as R;
        match self {
            ToolsError::NumberCooldown => R::Cooldown,
            ToolsError::CallbackAlreadyRequested => R::AlreadyRequested,
            ToolsError::Limited { .. } => R::RateLimited,
            ToolsError::DailyCapReached => R::DailyCap,
            ToolsError::Store(_) | ToolsError::Context(_) | ToolsError::CallsUnavailable => {
                R::Unavailable
            }
            _ => R::Invalid,
        }
    }

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
            ToolsError::Store(_) | ToolsError::Context(_) => "storage_unavailable",
            ToolsError::CallsUnavailable => "calls_unavailable",
            ToolsError::UnknownTool(_) => "unknown_tool",
            ToolsError::InvalidArguments(_) => "invalid_arguments",
            ToolsError::Limited {
                scope: LimitScope::Global,
                ..
            } => "calls_busy",
            ToolsError::Limited { .. } => "rate_limited",
            ToolsError::LeadNotFound => "lead_not_found",
            ToolsError::CallNotFound => "call_not_found",
            ToolsError::CallbackAlreadyRequested => "callback_already_requested",
            ToolsError::NumberCooldown => "number_cooldown",
            ToolsError::DailyCapReached => "daily_cap_reached",
            ToolsError::Dial(_) => "dial_failed",
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
            ToolsError::Store(_) | ToolsError::Context(_) => {
                "Je n'arrive pas à enregistrer vos coordonnées pour le moment. Réessayons dans un instant."
            }
            ToolsError::CallsUnavailable | ToolsError::DailyCapReached => {
                "Je ne peux pas passer d'appel pour le moment. Vous pouvez continuer à discuter avec moi ici."
            }
            ToolsError::UnknownTool(_) => "Cet outil n'existe pas.",
            ToolsError::InvalidArguments(_) => {
                "Les informations transmises sont incomplètes. Redemande-les au visiteur."
            }
            ToolsError::Limited {
                kind: LimitKind::Lead,
                ..
            } => "Trop de demandes ont été enregistrées depuis votre connexion. Réessayez plus tard.",
            ToolsError::Limited {
                scope: LimitScope::Global,
                ..
            } => "Nous passons beaucoup d'appels en ce moment. Réessayez dans une heure, ou continuez ici avec moi.",
            ToolsError::Limited { .. } => {
                "Trop de rappels ont été demandés depuis votre connexion. Réessayez plus tard."
            }
            ToolsError::LeadNotFound => {
                "Je ne retrouve pas vos coordonnées. Je vais d'abord les enregistrer à nouveau."
            }
            ToolsError::CallbackAlreadyRequested => "Un rappel est déjà prévu pour cette conversation.",
            ToolsError::CallNotFound => "Cet appel est introuvable.",
            ToolsError::NumberCooldown => {
                "Ce numéro vient déjà d'être appelé. Merci de patienter quelques minutes avant un nouveau rappel."
            }
            ToolsError::Dial(_) => "L'appel n'a pas pu être lancé. Réessayons dans un instant.",
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
            ToolsError::UnknownTool(_) | ToolsError::InvalidArguments(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ToolsError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ToolsError::LeadNotFound | ToolsError::CallNotFound => StatusCode::NOT_FOUND,
            ToolsError::CallbackAlreadyRequested => StatusCode::CONFLICT,
            ToolsError::NumberCooldown => StatusCode::TOO_MANY_REQUESTS,
            ToolsError::Store(_)
            | ToolsError::Context(_)
            | ToolsError::CallsUnavailable
            | ToolsError::DailyCapReached => StatusCode::SERVICE_UNAVAILABLE,
            ToolsError::Dial(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(ApiErrorBody::new(self.code(), self.message_fr()))
    }
}

impl ToolsError {
    /// A limit refusal, or the store failing behind it.
    pub fn from_limit(e: LimitError) -> Self {
        match e {
            LimitError::Refused { kind, scope, .. } => ToolsError::Limited { kind, scope },
            LimitError::Unavailable(c) => ToolsError::Context(c),
        }
    }

    /// What the model receives as the tool's output: our error shape, whose message it says.
    pub fn to_output(&self) -> String {
        serde_json::to_string(&ApiErrorBody::new(self.code(), self.message_fr()))
            .unwrap_or_else(|_| "{}".into())
    }
}
