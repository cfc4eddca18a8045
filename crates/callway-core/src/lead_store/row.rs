//! The `leads` row as PostgREST returns it (and as the embedded store keeps it).

use super::StoreError;
use crate::lead::{CallbackStatus, Consent, Lead, LeadId, NewLead, PersonName};
use crate::phone::PhoneE164;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct LeadRow {
    pub id: LeadId,
    pub first_name: String,
    pub last_name: String,
    pub phone_raw: String,
    pub phone_e164: String,
    pub created_at: DateTime<Utc>,
    pub source: String,
    pub summary: Option<String>,
    pub consent_at: DateTime<Utc>,
    pub consent_version: String,
    pub callback_status: CallbackStatus,
    pub web_session_id: String,
    /// Idempotency key of the save (see the `save_key` migration).
    #[serde(default)]
    pub save_key: Option<String>,
    /// Set when the callback was claimed, just before the dial.
    #[serde(default)]
    pub callback_requested_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub callback_attempts: u8,
}

impl std::fmt::Debug for LeadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeadRow({})", self.id)
    }
}

impl LeadRow {
    pub fn from_new(id: LeadId, lead: &NewLead, now: DateTime<Utc>) -> Self {
        Self {
            id,
            first_name: lead.first_name.as_str().to_owned(),
            last_name: lead.last_name.as_str().to_owned(),
            phone_raw: lead.phone.raw().to_owned(),
            phone_e164: lead.phone.as_e164().to_owned(),
            created_at: now,
            source: lead.source.clone(),
            summary: None,
            consent_at: lead.consent.at,
            consent_version: lead.consent.wording_version.clone(),
            callback_status: CallbackStatus::Pending,
            web_session_id: lead.web_session_id.clone(),
            save_key: None,
            callback_requested_at: None,
            callback_attempts: 0,
        }
    }

    /// Re-validates what the store gave back: a row we cannot trust is an error, not a lead.
    pub fn into_lead(self) -> Result<Lead, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("lead {}: {what}", self.id));
        Ok(Lead {
            id: self.id,
            first_name: PersonName::parse(&self.first_name).map_err(|_| corrupt("first_name"))?,
            last_name: PersonName::parse(&self.last_name).map_err(|_| corrupt("last_name"))?,
            phone: PhoneE164::from_stored(&self.phone_e164, &self.phone_raw)
                .map_err(|_| corrupt("phone_e164"))?,
            consent: Consent {
                at: self.consent_at,
                wording_version: self.consent_version.clone(),
            },
            source: self.source.clone(),
            web_session_id: self.web_session_id.clone(),
            created_at: self.created_at,
            summary: self.summary.clone(),
            callback_status: self.callback_status,
            callback_requested_at: self.callback_requested_at,
            callback_attempts: self.callback_attempts,
        })
    }
}
