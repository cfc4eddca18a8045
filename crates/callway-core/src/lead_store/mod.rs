//! Where leads live: Supabase (PostgREST) in production, an embedded file-backed store for the
//! keyless sandbox. Both speak the same row shape ([`LeadRow`]), which is the `leads` table.

mod embedded;
mod row;
mod supabase;

pub use embedded::EmbeddedLeadStore;
pub use row::LeadRow;
pub use supabase::{SupabaseConfig, SupabaseLeadStore};

use crate::lead::{CallbackStatus, Lead, LeadId, NewLead};
use crate::phone::PhoneE164;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("lead store did not answer in time")]
    Timeout,
    #[error("lead store refused our credentials (HTTP {0})")]
    Unauthorized(u16),
    /// The store refused the data (constraint, unknown column...). `code` is the SQLSTATE or
    /// PostgREST code; the row itself (which PostgREST echoes in `details`) is never kept.
    #[error("lead store rejected the request: HTTP {status}, code {code}")]
    Rejected { status: u16, code: String },
    #[error("lead store unavailable (HTTP {0})")]
    Unavailable(u16),
    #[error("lead store transport error: {0}")]
    Transport(String),
    #[error("lead store returned data we cannot read: {0}")]
    Corrupt(String),
}

/// Builds the store the settings ask for: Supabase when `SUPABASE_URL`/`SUPABASE_REST_URL` is set,
/// otherwise the embedded store, but only when the sandbox is allowed.
pub fn from_settings(
    settings: &crate::Settings,
    allow_embedded: bool,
) -> Result<LeadStore, crate::config::ConfigError> {
    use crate::config::ConfigError;
    match settings.supabase_rest_url() {
        Some(rest_url) => {
            let service_key = settings
                .supabase_service_key
                .clone()
                .ok_or(ConfigError::Missing("SUPABASE_SERVICE_KEY"))?;
            SupabaseLeadStore::new(SupabaseConfig {
                rest_url,
                service_key,
                timeout: std::time::Duration::from_millis(settings.supabase_timeout_ms),
            })
            .map(LeadStore::Supabase)
            .map_err(|reason| ConfigError::Invalid {
                name: "SUPABASE_URL",
                reason,
            })
        }
        None if allow_embedded => {
            let dir = std::path::Path::new(&settings.callway_data_dir);
            EmbeddedLeadStore::open(dir)
                .map(LeadStore::Embedded)
                .map_err(|e| ConfigError::Invalid {
                    name: "CALLWAY_DATA_DIR",
                    reason: e.to_string(),
                })
        }
        None => Err(ConfigError::Missing("SUPABASE_URL")),
    }
}

/// The lead store used by a service.
#[derive(Clone)]
pub enum LeadStore {
    Supabase(SupabaseLeadStore),
    Embedded(EmbeddedLeadStore),
}

impl LeadStore {
    pub fn kind(&self) -> &'static str {
        match self {
            LeadStore::Supabase(_) => "supabase",
            LeadStore::Embedded(_) => "embedded",
        }
    }

    pub async fn insert(&self, lead: &NewLead) -> Result<Lead, StoreError> {
        let row = LeadRow::from_new(LeadId::new(), lead, Utc::now());
        match self {
            LeadStore::Supabase(s) => s.insert(&row).await,
            LeadStore::Embedded(s) => s.insert(row).await,
        }?
        .into_lead()
    }

    /// Saves `lead` at most once per `save_key` (the server derives it from the web session and
    /// the number): a save retried after a timeout whose insert did land returns that lead,
    /// updated with the retry's names and consent, instead of adding a second one. Its id,
    /// creation time and callback state are never touched by a repeat.
    pub async fn save_once(&self, lead: &NewLead, save_key: &str) -> Result<Lead, StoreError> {
        let mut row = LeadRow::from_new(LeadId::new(), lead, Utc::now());
        row.save_key = Some(save_key.to_owned());
        match self {
            LeadStore::Supabase(s) => s.save_once(&row).await,
            LeadStore::Embedded(s) => s.save_once(row).await,
        }?
        .into_lead()
    }

    /// Claims the lead's one callback, durably, just before the dial: true for the first
    /// caller (`callback_requested_at` was null), false for any other.
    pub async fn claim_callback(&self, id: LeadId) -> Result<bool, StoreError> {
        let now = Utc::now();
        match self {
            LeadStore::Supabase(s) => s.claim_callback(id, now).await,
            LeadStore::Embedded(s) => s.claim_callback(id, now).await,
        }
    }

    /// Claims attempt `attempt` (≥ 2) of a missed callback, durably: true only if the lead's
    /// last attempt was `attempt - 1` and it was missed (no answer, busy, voicemail). Two
    /// workers firing the same retry: one dials.
    pub async fn claim_retry(&self, id: LeadId, attempt: u8) -> Result<bool, StoreError> {
        let now = Utc::now();
        match self {
            LeadStore::Supabase(s) => s.claim_retry(id, attempt, now).await,
            LeadStore::Embedded(s) => s.claim_retry(id, attempt, now).await,
        }
    }

    /// Telnyx certainly did not place the call: the lead is `failed` and may be claimed again.
    pub async fn release_callback(&self, id: LeadId) -> Result<(), StoreError> {
        match self {
            LeadStore::Supabase(s) => s.release_callback(id).await,
            LeadStore::Embedded(s) => s.release_callback(id).await,
        }
    }

    /// Whether any lead with this number had a callback claimed since `since` (the cooldown,
    /// durable: it holds when the Redis cooldown keys are gone).
    pub async fn callback_since(
        &self,
        phone: &PhoneE164,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.callback_since(phone.as_e164(), since).await,
            LeadStore::Embedded(s) => Ok(s
                .any(|r| {
                    r.phone_e164 == phone.as_e164()
                        && r.callback_requested_at.is_some_and(|t| t >= since)
                })
                .await),
        }
    }

    pub async fn get(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let row = match self {
            LeadStore::Supabase(s) => s.get(id).await?,
            LeadStore::Embedded(s) => s.get(id).await,
        };
        row.map(LeadRow::into_lead).transpose()
    }

    /// Records the callback's progress, and the conversation summary when given.
    pub async fn update_callback(
        &self,
        id: LeadId,
        status: CallbackStatus,
        summary: Option<&str>,
    ) -> Result<bool, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.update_callback(id, status, summary).await,
            LeadStore::Embedded(s) => s.update_callback(id, status, summary).await,
        }
    }

    /// The most recent lead with this number created since `since` (an incoming call's caller).
    pub async fn latest_by_phone(
        &self,
        phone: &PhoneE164,
        since: DateTime<Utc>,
    ) -> Result<Option<Lead>, StoreError> {
        let row = match self {
            LeadStore::Supabase(s) => s.latest_by_phone(phone.as_e164(), since).await?,
            LeadStore::Embedded(s) => s.latest_by_phone(phone.as_e164(), since).await,
        };
        row.map(LeadRow::into_lead).transpose()
    }

    /// Records a call attempt at its dial (idempotent per call ref: a repeat keeps the first).
    pub async fn record_call(
        &self,
        record: &crate::call_record::CallRecord,
    ) -> Result<(), StoreError> {
        match self {
            LeadStore::Supabase(s) => s.record_call(record).await,
            LeadStore::Embedded(s) => s.record_call(record.clone()).await,
        }
    }

    /// Sets what an event learnt about a call; false when no record has that call ref.
    pub async fn update_call(
        &self,
        call_ref: &str,
        update: crate::call_record::CallUpdate,
    ) -> Result<bool, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.update_call(call_ref, &update).await,
            LeadStore::Embedded(s) => s.update_call(call_ref, update).await,
        }
    }

    /// A lead's call records, oldest first.
    pub async fn call_records(
        &self,
        lead: LeadId,
    ) -> Result<Vec<crate::call_record::CallRecord>, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.call_records(lead).await,
            LeadStore::Embedded(s) => s.call_records(lead).await,
        }
    }

    /// RGPD erasure: deletes every lead with this number. Returns how many were deleted.
    pub async fn delete_by_phone(&self, phone: &PhoneE164) -> Result<u64, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.delete_by_phone(phone.as_e164()).await,
            LeadStore::Embedded(s) => s.delete_where(|r| r.phone_e164 == phone.as_e164()).await,
        }
    }

    /// Retention: deletes leads created before `cutoff`.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.purge_before(cutoff).await,
            LeadStore::Embedded(s) => s.delete_where(|r| r.created_at < cutoff).await,
        }
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        match self {
            LeadStore::Supabase(s) => s.count().await,
            LeadStore::Embedded(s) => Ok(s.count().await),
        }
    }

    /// Cheap reachability check for `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            LeadStore::Supabase(s) => s.count().await.map(|_| ()),
            LeadStore::Embedded(_) => Ok(()),
        }
    }
}
