//! `save_lead`: stores the visitor's lead once every check passes (consent, names, phone policy,
//! hourly limits per client and network). The lead is tied to the web session the server owns,
//! and saved at most once per session and number (a retry, or a corrected name, updates it).

use super::SaveLeadArgs;
use crate::error::ToolsError;
use crate::ToolsState;
use callway_core::lead::{Consent, NewLead, PersonName};
use callway_core::limits::LimitKind;
use callway_core::phone::PhoneE164;
use callway_core::web_call::WebCall;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct SaveLeadOutput {
    pub lead_id: String,
    /// Masked: the model reads the number back from what the visitor said, not from us.
    pub phone_masked: String,
}

/// Counted: `callway.leads.saved`, or `callway.leads.refused` by error code.
pub async fn save_lead(
    state: &ToolsState,
    call: &WebCall,
    args: SaveLeadArgs,
) -> Result<SaveLeadOutput, ToolsError> {
    let result = save(state, call, args).await;
    let m = callway_core::metrics::get();
    match &result {
        Ok(_) => m.leads_saved.add(1, &[]),
        Err(e) => m.lead_refused(e.code()),
    }
    result
}

#[tracing::instrument(name = "tool.save_lead", skip_all, fields(web_session = %call.session, lead_id, phone))]
async fn save(
    state: &ToolsState,
    call: &WebCall,
    args: SaveLeadArgs,
) -> Result<SaveLeadOutput, ToolsError> {
    if !args.consent {
        return Err(ToolsError::ConsentRequired);
    }
    let first_name = PersonName::parse(&args.first_name).map_err(|error| ToolsError::Name {
        field: "first_name",
        error,
    })?;
    let last_name = PersonName::parse(&args.last_name).map_err(|error| ToolsError::Name {
        field: "last_name",
        error,
    })?;
    let phone = PhoneE164::parse(&args.phone, &state.policy).map_err(|e| {
        tracing::info!(reason = e.code(), "phone refused");
        ToolsError::Phone(e)
    })?;
    tracing::Span::current().record("phone", phone.masked().as_str());
    let taken = state
        .limits
        .take(
            LimitKind::Lead,
            &call.client,
            chrono::Utc::now().timestamp(),
        )
        .await
        .map_err(ToolsError::from_limit)?;
    let lead = NewLead {
        first_name,
        last_name,
        phone,
        consent: Consent {
            at: chrono::Utc::now(),
            wording_version: state.consent_version.clone(),
        },
        source: "voice_agent".into(),
        web_session_id: call.session.as_str().to_owned(),
    };
    // One lead per web session and number: a save retried after a timeout (its insert may have
    // landed) finds the same row instead of adding one.
    let save_key = callway_core::call_context::key_hash(&format!(
        "save:{}:{}",
        call.session.as_str(),
        lead.phone.as_e164()
    ));
    let saved = match state.leads.save_once(&lead, &save_key).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "lead not stored");
            state.limits.give_back(taken).await;
            return Err(ToolsError::Store(e));
        }
    };
    tracing::Span::current().record("lead_id", saved.id.to_string().as_str());
    // The business hears of it (once per lead: a repeated save queues nothing new). Not queued
    // means not acknowledged: the model gets an error and its retry finds the same lead.
    if let Some(outbox) = &state.business {
        let event = callway_core::outbound::lead_created(&saved, chrono::Utc::now());
        callway_core::outbound::enqueue(outbox, event)
            .await
            .map_err(ToolsError::Context)?;
    }
    tracing::info!("lead saved");
    Ok(SaveLeadOutput {
        lead_id: saved.id.to_string(),
        phone_masked: saved.phone.masked(),
    })
}
