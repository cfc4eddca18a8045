//! The keyless sandbox's lead store: an append-only JSON-lines journal under `CALLWAY_DATA_DIR`,
//! replayed at start, so leads survive restarts without any database. One process owns the file.

use super::{LeadRow, StoreError};
use crate::lead::{CallbackStatus, LeadId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Entry {
    Put {
        row: Box<LeadRow>,
    },
    /// Older journals may hold delete markers; new ones are compacted instead.
    Delete {
        ids: Vec<LeadId>,
    },
    /// A call record (the `call_attempts` table), keyed by call ref.
    Call {
        record: Box<crate::call_record::CallRecord>,
    },
}

#[derive(Clone)]
pub struct EmbeddedLeadStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    rows: BTreeMap<String, LeadRow>,
    calls: BTreeMap<String, crate::call_record::CallRecord>,
}

impl EmbeddedLeadStore {
    /// Opens (or creates) `<dir>/leads.jsonl` and replays it. A torn last line (crash mid-write)
    /// is skipped; any other unreadable line is an error, not silent data loss.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Transport(e.to_string()))?;
        let path = dir.join("leads.jsonl");
        let mut rows = BTreeMap::new();
        let mut calls = BTreeMap::new();
        if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| StoreError::Transport(e.to_string()))?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            for (i, line) in lines.iter().enumerate() {
                match serde_json::from_str::<Entry>(line) {
                    Ok(Entry::Put { row }) => {
                        rows.insert(row.id.to_string(), *row);
                    }
                    Ok(Entry::Delete { ids }) => {
                        for id in ids {
                            rows.remove(&id.to_string());
                        }
                    }
                    Ok(Entry::Call { record }) => {
                        calls.insert(record.call_ref.clone(), *record);
                    }
                    Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
                    Err(e) => {
                        return Err(StoreError::Corrupt(format!(
                            "{} line {}: {e}",
                            path.display(),
                            i + 1
                        )))
                    }
                }
            }
        }
        // A call record whose lead is gone was erased with it (a torn erasure cannot resurrect it).
        calls.retain(|_, c: &mut crate::call_record::CallRecord| {
            rows.contains_key(&c.lead_id.to_string())
        });
        let inner = Inner { path, rows, calls };
        if inner.path.exists() {
            Self::compact(&inner)?;
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Journals `row`, then keeps it (every write of a lead goes through here).
    fn put(inner: &mut Inner, row: LeadRow) -> Result<(), StoreError> {
        Self::append(
            inner,
            &Entry::Put {
                row: Box::new(row.clone()),
            },
        )?;
        inner.rows.insert(row.id.to_string(), row);
        Ok(())
    }

    /// Journals a call record, then keeps it.
    fn put_call(
        inner: &mut Inner,
        record: crate::call_record::CallRecord,
    ) -> Result<(), StoreError> {
        Self::append(
            inner,
            &Entry::Call {
                record: Box::new(record.clone()),
            },
        )?;
        inner.calls.insert(record.call_ref.clone(), record);
        Ok(())
    }

    fn append(inner: &Inner, entry: &Entry) -> Result<(), StoreError> {
        let mut line =
            serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&inner.path)
            .map_err(|e| StoreError::Transport(e.to_string()))?;
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| StoreError::Transport(e.to_string()))
    }

    /// Rewrites the journal with the live rows only (temp file + rename, so a crash keeps one
    /// complete version).
    fn compact(inner: &Inner) -> Result<(), StoreError> {
        let tmp = inner.path.with_extension("jsonl.tmp");
        let mut out = String::new();
        for row in inner.rows.values() {
            out.push_str(
                &serde_json::to_string(&Entry::Put {
                    row: Box::new(row.clone()),
                })
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            out.push('\n');
        }
        for record in inner.calls.values() {
            out.push_str(
                &serde_json::to_string(&Entry::Call {
                    record: Box::new(record.clone()),
                })
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            out.push('\n');
        }
        let io = |e: std::io::Error| StoreError::Transport(e.to_string());
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(out.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &inner.path).map_err(io)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| StoreError::Transport("embedded store lock poisoned".into()))?;
        f(&mut guard)
    }

    pub(super) async fn insert(&self, row: LeadRow) -> Result<LeadRow, StoreError> {
        self.with(|inner| {
            Self::put(inner, row.clone())?;
            Ok(row)
        })
    }

    pub(super) async fn save_once(&self, row: LeadRow) -> Result<LeadRow, StoreError> {
        self.with(|inner| {
            let existing = inner
                .rows
                .values()
                .find(|r| r.save_key.is_some() && r.save_key == row.save_key)
                .cloned();
            let row = match existing {
                Some(old) => LeadRow {
                    first_name: row.first_name,
                    last_name: row.last_name,
                    phone_raw: row.phone_raw,
                    consent_at: row.consent_at,
                    consent_version: row.consent_version,
                    ..old
                },
                None => row,
            };
            Self::put(inner, row.clone())?;
            Ok(row)
        })
    }

    pub(super) async fn claim_callback(
        &self,
        id: LeadId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.with(|inner| {
            let Some(mut row) = inner.rows.get(&id.to_string()).cloned() else {
                return Ok(false);
            };
            if row.callback_requested_at.is_some() {
                return Ok(false);
            }
            row.callback_requested_at = Some(now);
            row.callback_status = CallbackStatus::Dialing;
            row.callback_attempts = 1;
            Self::put(inner, row)?;
            Ok(true)
        })
    }

    pub(super) async fn claim_retry(
        &self,
        id: LeadId,
        attempt: u8,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        self.with(|inner| {
            let Some(mut row) = inner.rows.get(&id.to_string()).cloned() else {
                return Ok(false);
            };
            let missed = matches!(
                row.callback_status,
                CallbackStatus::NoAnswer | CallbackStatus::Busy | CallbackStatus::Voicemail
            );
            if !missed || row.callback_attempts != attempt.saturating_sub(1) {
                return Ok(false);
            }
            row.callback_requested_at = Some(now);
            row.callback_status = CallbackStatus::Dialing;
            row.callback_attempts = attempt;
            Self::put(inner, row)?;
            Ok(true)
        })
    }

    pub(super) async fn release_callback(&self, id: LeadId) -> Result<(), StoreError> {
        self.with(|inner| {
            let Some(mut row) = inner.rows.get(&id.to_string()).cloned() else {
                return Ok(());
            };
            row.callback_requested_at = None;
            row.callback_status = CallbackStatus::Failed;
            Self::put(inner, row)?;
            Ok(())
        })
    }

    pub(super) async fn latest_by_phone(
        &self,
        e164: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Option<LeadRow> {
        self.with(|inner| {
            Ok(inner
                .rows
                .values()
                .filter(|r| r.phone_e164 == e164 && r.created_at >= since)
                .max_by_key(|r| r.created_at)
                .cloned())
        })
        .ok()
        .flatten()
    }

    pub(super) async fn any(&self, pred: impl Fn(&LeadRow) -> bool) -> bool {
        self.with(|inner| Ok(inner.rows.values().any(&pred)))
            .unwrap_or(false)
    }

    pub(super) async fn get(&self, id: LeadId) -> Option<LeadRow> {
        self.with(|inner| Ok(inner.rows.get(&id.to_string()).cloned()))
            .ok()
            .flatten()
    }

    pub(super) async fn update_callback(
        &self,
        id: LeadId,
        status: CallbackStatus,
        summary: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.with(|inner| {
            let Some(mut row) = inner.rows.get(&id.to_string()).cloned() else {
                return Ok(false);
            };
            row.callback_status = status;
            if let Some(s) = summary {
                row.summary = Some(s.to_owned());
            }
            Self::put(inner, row)?;
            Ok(true)
        })
    }

    pub(super) async fn delete_where(
        &self,
        pred: impl Fn(&LeadRow) -> bool,
    ) -> Result<u64, StoreError> {
        self.with(|inner| {
            let ids: Vec<LeadId> = inner
                .rows
                .values()
                .filter(|r| pred(r))
                .map(|r| r.id)
                .collect();
            if ids.is_empty() {
                return Ok(0);
            }
            for id in &ids {
                inner.rows.remove(&id.to_string());
            }
            // Like `on delete cascade`: the leads' call records go with them.
            inner.calls.retain(|_, c| !ids.contains(&c.lead_id));
            // Erasure must not leave the deleted rows in older journal lines: rewrite it.
            Self::compact(inner)?;
            Ok(ids.len() as u64)
        })
    }

    /// Inserts a call record unless one with that call ref exists (then nothing changes).
    pub(super) async fn record_call(
        &self,
        record: crate::call_record::CallRecord,
    ) -> Result<(), StoreError> {
        self.with(|inner| {
            if inner.calls.contains_key(&record.call_ref)
                || !inner.rows.contains_key(&record.lead_id.to_string())
            {
                return Ok(());
            }
            Self::put_call(inner, record)?;
            Ok(())
        })
    }

    pub(super) async fn update_call(
        &self,
        call_ref: &str,
        update: crate::call_record::CallUpdate,
    ) -> Result<bool, StoreError> {
        self.with(|inner| {
            let Some(mut record) = inner.calls.get(call_ref).cloned() else {
                return Ok(false);
            };
            update.apply(&mut record);
            Self::put_call(inner, record)?;
            Ok(true)
        })
    }

    pub(super) async fn call_records(
        &self,
        lead: LeadId,
    ) -> Result<Vec<crate::call_record::CallRecord>, StoreError> {
        self.with(|inner| {
            let mut v: Vec<_> = inner
                .calls
                .values()
                .filter(|c| c.lead_id == lead)
                .cloned()
                .collect();
            v.sort_by_key(|c| c.dialled_at);
            Ok(v)
        })
    }

    pub(super) async fn count(&self) -> u64 {
        self.with(|inner| Ok(inner.rows.len() as u64)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{Consent, NewLead, PersonName};
    use crate::lead_store::LeadStore;
    use crate::phone::{PhoneE164, PhonePolicy};

    fn new_lead(phone: &str) -> NewLead {
        NewLead {
            first_name: PersonName::parse("Marie").unwrap(),
            last_name: PersonName::parse("Curie").unwrap(),
            phone: PhoneE164::parse(phone, &PhonePolicy::default()).unwrap(),
            consent: Consent {
                at: chrono::Utc::now(),
                wording_version: "v1".into(),
            },
            source: "voice_agent".into(),
            web_session_id: "ws_test".into(),
        }
    }

    #[tokio::test]
    async fn leads_survive_a_restart_and_erasure_leaves_no_trace_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
        let kept = store.insert(&new_lead("06 12 34 56 78")).await.unwrap();
        let erased = store.insert(&new_lead("07 81 23 45 67")).await.unwrap();
        store
            .update_callback(kept.id, CallbackStatus::Dialing, Some("résumé"))
            .await
            .unwrap();

        let reopened = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
        let got = reopened.get(kept.id).await.unwrap().unwrap();
        assert_eq!(got.summary.as_deref(), Some("résumé"));
        assert_eq!(got.callback_status, CallbackStatus::Dialing);
        assert_eq!(reopened.count().await.unwrap(), 2);

        assert_eq!(reopened.delete_by_phone(&erased.phone).await.unwrap(), 1);
        let journal = std::fs::read_to_string(dir.path().join("leads.jsonl")).unwrap();
        assert!(
            !journal.contains("+33781234567"),
            "erased number still on disk"
        );
        assert!(journal.contains("+33612345678"));
        assert_eq!(reopened.purge_before(chrono::Utc::now()).await.unwrap(), 1);
        assert_eq!(reopened.count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped_but_a_corrupt_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
        store.insert(&new_lead("06 12 34 56 78")).await.unwrap();
        let path = dir.path().join("leads.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"op\":\"put\",\"row\":{\"id\"");
        std::fs::write(&path, &text).unwrap();
        assert!(EmbeddedLeadStore::open(dir.path()).is_ok());
        std::fs::write(&path, format!("garbage\n{text}\n")).unwrap();
        assert!(matches!(
            EmbeddedLeadStore::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
