//! `POST /api/tools/save_lead`: the agent's `save_lead` tool, relayed by the browser.
//! Everything is re-validated here; nothing is stored unless every check passes.

use crate::error::ToolsError;
use crate::session::web_session;
use crate::ToolsState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::lead::{Consent, NewLead, PersonName};
use callway_core::phone::PhoneE164;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveLeadRequest {
    first_name: String,
    last_name: String,
    phone: String,
    consent: bool,
}

#[derive(Serialize)]
pub struct SaveLeadResponse {
    lead_id: String,
    phone_e164: String,
}

#[tracing::instrument(name = "tool.save_lead", skip_all, fields(web_session, lead_id, phone))]
pub async fn save_lead(
    req: HttpRequest,
    body: web::Json<SaveLeadRequest>,
    state: web::Data<ToolsState>,
) -> Result<HttpResponse, ToolsError> {
    let session = web_session(&req, &state.tokens)?;
    tracing::Span::current().record("web_session", session.as_str());
    let body = body.into_inner();
    if !body.consent {
        return Err(ToolsError::ConsentRequired);
    }
    let first_name = PersonName::parse(&body.first_name).map_err(|error| ToolsError::Name {
        field: "first_name",
        error,
    })?;
    let last_name = PersonName::parse(&body.last_name).map_err(|error| ToolsError::Name {
        field: "last_name",
        error,
    })?;
    let phone = PhoneE164::parse(&body.phone, &state.policy).map_err(|e| {
        tracing::info!(reason = e.code(), "phone refused");
        ToolsError::Phone(e)
    })?;
    tracing::Span::current().record("phone", phone.masked().as_str());
    let lead = NewLead {
        first_name,
        last_name,
        phone,
        consent: Consent {
            at: chrono::Utc::now(),
            wording_version: state.consent_version.clone(),
        },
        source: "voice_agent".into(),
        web_session_id: session.as_str().to_owned(),
    };
    let saved = state.leads.insert(&lead).await.map_err(|e| {
        tracing::error!(error = %e, "lead not stored");
        ToolsError::Store(e)
    })?;
    tracing::Span::current().record("lead_id", saved.id.to_string().as_str());
    tracing::info!("lead saved");
    Ok(HttpResponse::Ok().json(SaveLeadResponse {
        lead_id: saved.id.to_string(),
        phone_e164: saved.phone.as_e164().to_owned(),
    }))
}
