//! Supabase lead store over PostgREST with the `postgrest` crate.
//!
//! The crate returns `Ok` for 4xx/5xx and has no timeout of its own: every call here checks the
//! status, maps PostgREST's `{code,message,details,hint}` body to [`StoreError`] without keeping
//! `details` (it echoes the whole failing row, names and phone included), and runs under a
//! per-request timeout plus an outer `tokio::time::timeout`.

use super::{LeadRow, StoreError};
use crate::lead::{CallbackStatus, LeadId};
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use postgrest::Postgrest;
use serde::Deserialize;
use std::time::Duration;

const TABLE: &str = "leads";
const CALLS: &str = "call_attempts";

#[derive(Debug, Clone)]
pub struct SupabaseConfig {
    /// PostgREST base, e.g. `https://<ref>.supabase.co/rest/v1`.
    pub rest_url: String,
    /// `sb_secret_…` (sent in `apikey` only) or a legacy service_role JWT (sent in `apikey` and
    /// `Authorization: Bearer`).
    pub service_key: Secret,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct SupabaseLeadStore {
    client: Postgrest,
    timeout: Duration,
}

#[derive(Deserialize)]
struct PgrstError {
    #[serde(default)]
    code: Option<String>,
}

impl SupabaseLeadStore {
    pub fn new(cfg: SupabaseConfig) -> Result<Self, String> {
        let key = cfg.service_key.expose();
        // insert_header panics on an invalid header value: refuse such a key up front.
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("SUPABASE_SERVICE_KEY must be a non-empty printable ASCII string".into());
        }
        if !(cfg.rest_url.starts_with("http://") || cfg.rest_url.starts_with("https://")) {
            return Err("the Supabase REST URL must start with http:// or https://".into());
        }
        let mut client = Postgrest::new(cfg.rest_url.trim_end_matches('/'))
            .schema("public")
            .insert_header("apikey", key);
        if !key.starts_with("sb_") {
            client = client.insert_header("Authorization", format!("Bearer {key}"));
        }
        Ok(Self {
            client,
            timeout: cfg.timeout,
        })
    }

    async fn run(&self, req: postgrest::Builder) -> Result<(u16, bytes_like::Body), StoreError> {
        let send = async {
            let resp = req
                .build()
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        StoreError::Timeout
                    } else {
                        StoreError::Transport(strip_url(&e.to_string()))
                    }
                })?;
            let status = resp.status().as_u16();
            let range = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    StoreError::Timeout
                } else {
                    StoreError::Transport(strip_url(&e.to_string()))
                }
            })?;
            Ok::<_, StoreError>((
                status,
                bytes_like::Body {
                    bytes: body.to_vec(),
                    range,
                },
            ))
        };
        let (status, body) = tokio::time::timeout(self.timeout + Duration::from_millis(200), send)
            .await
            .map_err(|_| StoreError::Timeout)??;
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        let code = serde_json::from_slice::<PgrstError>(&body.bytes)
            .ok()
            .and_then(|e| e.code)
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(status, code = %code, "PostgREST error");
        Err(match status {
            401 | 403 => StoreError::Unauthorized(status),
            500..=599 => StoreError::Unavailable(status),
            _ => StoreError::Rejected { status, code },
        })
    }

    fn rows(body: &bytes_like::Body) -> Result<Vec<LeadRow>, StoreError> {
        serde_json::from_slice(&body.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub(super) async fn insert(&self, row: &LeadRow) -> Result<LeadRow, StoreError> {
        let json = serde_json::to_string(row).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (_, body) = self.run(self.client.from(TABLE).insert(json)).await?;
        Self::rows(&body)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("insert returned no row".into()))
    }

    /// `POST /leads?on_conflict=save_key` with `resolution=merge-duplicates`: only the columns
    /// a save sets are sent, so a repeat keeps the row's id, creation time and callback state.
    pub(super) async fn save_once(&self, row: &LeadRow) -> Result<LeadRow, StoreError> {
        let body = serde_json::json!({
            "first_name": row.first_name,
            "last_name": row.last_name,
            "phone_raw": row.phone_raw,
            "phone_e164": row.phone_e164,
            "source": row.source,
            "consent_at": row.consent_at,
            "consent_version": row.consent_version,
            "web_session_id": row.web_session_id,
            "save_key": row.save_key,
        });
        let req = self
            .client
            .from(TABLE)
            .upsert(body.to_string())
            .on_conflict("save_key");
        let (_, body) = self.run(req).await?;
        Self::rows(&body)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("upsert returned no row".into()))
    }

    pub(super) async fn latest_by_phone(
        &self,
        e164: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<LeadRow>, StoreError> {
        let req = self
            .client
            .from(TABLE)
            .select("*")
            .eq("phone_e164", e164)
            .gte(
                "created_at",
                since.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            )
            .order("created_at.desc")
            .limit(1);
        let (_, body) = self.run(req).await?;
        Ok(Self::rows(&body)?.into_iter().next())
    }

    pub(super) async fn claim_callback(
        &self,
        id: LeadId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let patch = serde_json::json!({
            "callback_status": CallbackStatus::Dialing,
            "callback_requested_at": now,
            "callback_attempts": 1,
        });
        let req = self
            .client
            .from(TABLE)
            .eq("id", id.to_string())
            .is("callback_requested_at", "null")
            .update(patch.to_string());
        let (_, body) = self.run(req).await?;
        Ok(!Self::rows(&body)?.is_empty())
    }

    pub(super) async fn claim_retry(
        &self,
        id: LeadId,
        attempt: u8,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let patch = serde_json::json!({
            "callback_status": CallbackStatus::Dialing,
            "callback_requested_at": now,
            "callback_attempts": attempt,
        });
        let req = self
            .client
            .from(TABLE)
            .eq("id", id.to_string())
            .eq("callback_attempts", (attempt.saturating_sub(1)).to_string())
            .in_("callback_status", ["no_answer", "busy", "voicemail"])
            .update(patch.to_string());
        let (_, body) = self.run(req).await?;
        Ok(!Self::rows(&body)?.is_empty())
    }

    pub(super) async fn release_callback(&self, id: LeadId) -> Result<(), StoreError> {
        let patch = serde_json::json!({
            "callback_status": CallbackStatus::Failed,
            "callback_requested_at": null,
        });
        let req = self
            .client
            .from(TABLE)
            .eq("id", id.to_string())
            .update(patch.to_string());
        self.run(req).await.map(|_| ())
    }

    pub(super) async fn callback_since(
        &self,
        e164: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let req = self
            .client
            .from(TABLE)
            .select("id")
            .eq("phone_e164", e164)
            // `Z`, not `+00:00`: a `+` in a query string reads as a space.
            .gte(
                "callback_requested_at",
                since.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            )
            .limit(1);
        let (_, body) = self.run(req).await?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&body.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(!rows.is_empty())
    }

    /// `POST /call_attempts`; a record with that call ref already there (a retry) is kept.
    pub(super) async fn record_call(
        &self,
        record: &crate::call_record::CallRecord,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match self.run(self.client.from(CALLS).insert(json)).await {
            Ok(_) => Ok(()),
            Err(StoreError::Rejected { code, .. }) if code == "23505" => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn update_call(
        &self,
        call_ref: &str,
        update: &crate::call_record::CallUpdate,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(update).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let req = self
            .client
            .from(CALLS)
            .eq("call_ref", call_ref)
            .update(json);
        let (_, body) = self.run(req).await?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&body.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(!rows.is_empty())
    }

    pub(super) async fn call_records(
        &self,
        lead: LeadId,
    ) -> Result<Vec<crate::call_record::CallRecord>, StoreError> {
        let req = self
            .client
            .from(CALLS)
            .select("*")
            .eq("lead_id", lead.to_string())
            .order("dialled_at.asc");
        let (_, body) = self.run(req).await?;
        serde_json::from_slice(&body.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub(super) async fn get(&self, id: LeadId) -> Result<Option<LeadRow>, StoreError> {
        let req = self.client.from(TABLE).select("*").eq("id", id.to_string());
        let (_, body) = self.run(req).await?;
        Ok(Self::rows(&body)?.into_iter().next())
    }

    pub(super) async fn update_callback(
        &self,
        id: LeadId,
        status: CallbackStatus,
        summary: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut patch = serde_json::json!({ "callback_status": status });
        if let Some(s) = summary {
            patch["summary"] = serde_json::Value::String(s.to_owned());
        }
        let req = self
            .client
            .from(TABLE)
            .eq("id", id.to_string())
            .update(patch.to_string());
        let (_, body) = self.run(req).await?;
        Ok(!Self::rows(&body)?.is_empty())
    }

    pub(super) async fn delete_by_phone(&self, e164: &str) -> Result<u64, StoreError> {
        let req = self.client.from(TABLE).eq("phone_e164", e164).delete();
        let (_, body) = self.run(req).await?;
        Ok(Self::rows(&body)?.len() as u64)
    }

    /// Calls `purge_leads_before` (see the migration). PostgREST answers a scalar function with the
    /// bare value; compatible servers may wrap it as `[{"purge_leads_before": n}]`: accept both.
    pub(super) async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let params = serde_json::json!({ "cutoff": cutoff.to_rfc3339() }).to_string();
        let (_, body) = self
            .run(self.client.rpc("purge_leads_before", params))
            .await?;
        let value: serde_json::Value =
            serde_json::from_slice(&body.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = match &value {
            serde_json::Value::Array(rows) => rows
                .first()
                .and_then(|r| r.get("purge_leads_before"))
                .and_then(serde_json::Value::as_u64),
            v => v.as_u64(),
        };
        n.ok_or_else(|| StoreError::Corrupt("purge_leads_before returned no count".into()))
    }

    pub(super) async fn count(&self) -> Result<u64, StoreError> {
        let req = self.client.from(TABLE).select("id").limit(1).exact_count();
        let (_, body) = self.run(req).await?;
        // Content-Range: `0-0/42` or `*/0`.
        body.range
            .as_deref()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("no count in Content-Range".into()))
    }
}

/// reqwest errors print the URL, which may carry filter values (a phone number): drop it.
fn strip_url(msg: &str) -> String {
    match msg.find(" for url (") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

mod bytes_like {
    pub struct Body {
        pub bytes: Vec<u8>,
        pub range: Option<String>,
    }
}
