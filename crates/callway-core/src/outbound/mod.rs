//! Telling the business: a signed webhook (Standard Webhooks) to a configured URL when a lead is
//! created and when its call ends, with what we know. Events go through a durable outbox
//! ([`queue::Outbox`]) that any instance delivers from (webhook-svc runs the worker); nothing is
//! queued when no URL is set, except in the sandbox, where the worker writes each payload to
//! `<CALLWAY_DATA_DIR>/business-webhooks.jsonl` so a developer can see it.

pub mod queue;
pub mod signing;

pub use queue::{AfterFailure, Message, MessageState, Outbox, OutboxConfig};
pub use signing::SigningSecret;

use crate::call_context::key_hash;
use crate::call_record::CallRecord;
use crate::lead::Lead;
use serde_json::{json, Value};

/// Where business webhooks go.
#[derive(Debug, Clone)]
pub enum Target {
    Http {
        url: String,
        secret: SigningSecret,
    },
    /// The sandbox without a URL: one JSON line per event in this file.
    LocalLog(std::path::PathBuf),
}

impl Target {
    /// From `CALLWAY_BUSINESS_WEBHOOK_URL` / `_SECRET`; `None` when nothing is to be sent.
    pub fn from_settings(
        settings: &crate::Settings,
    ) -> Result<Option<Self>, crate::config::ConfigError> {
        use crate::config::ConfigError;
        match &settings.callway_business_webhook_url {
            Some(url) => {
                let ok = url.starts_with("https://")
                    || (url.starts_with("http://") && settings.callway_sandbox)
                    || url.starts_with("http://127.0.0.1")
                    || url.starts_with("http://localhost");
                if !ok {
                    return Err(ConfigError::Invalid {
                        name: "CALLWAY_BUSINESS_WEBHOOK_URL",
                        reason: "must be an https:// URL".into(),
                    });
                }
                let secret = settings
                    .callway_business_webhook_secret
                    .as_ref()
                    .ok_or(ConfigError::Missing("CALLWAY_BUSINESS_WEBHOOK_SECRET"))?;
                let secret = SigningSecret::parse(secret.expose()).map_err(|reason| {
                    ConfigError::Invalid {
                        name: "CALLWAY_BUSINESS_WEBHOOK_SECRET",
                        reason,
                    }
                })?;
                Ok(Some(Target::Http {
                    url: url.clone(),
                    secret,
                }))
            }
            None if settings.callway_sandbox => Ok(Some(Target::LocalLog(
                std::path::Path::new(&settings.callway_data_dir).join("business-webhooks.jsonl"),
            ))),
            None => Ok(None),
        }
    }
}

/// The outbox events are queued in, when business webhooks are configured (or the sandbox).
pub fn outbox_from_settings(
    settings: &crate::Settings,
    store: crate::call_context::ContextStore,
) -> Result<Option<Outbox>, crate::config::ConfigError> {
    Ok(Target::from_settings(settings)?.map(|_| Outbox::new(store, OutboxConfig::default())))
}

/// The queue of missed callbacks to try again (webhook-svc schedules, tools-svc dials).
pub fn retry_queue(store: crate::call_context::ContextStore) -> Outbox {
    // A failing retry job (store or Telnyx down) is tried again a few times, then dropped to
    // the dead letters; the callback's own attempt count is in PostgreSQL.
    let cfg = OutboxConfig {
        backoff: [30u64, 120, 600]
            .into_iter()
            .map(std::time::Duration::from_secs)
            .collect(),
        lease: std::time::Duration::from_secs(300),
    };
    Outbox::named(crate::call_context::keys::Queue::Retry, store, cfg)
}

/// A missed callback's next attempt, as the retry queue carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryJob {
    pub lead_id: crate::lead::LeadId,
    pub attempt: u8,
}

impl RetryJob {
    /// Stable per lead and attempt: scheduling it twice (a redelivered hang-up) is one job.
    pub fn id(&self) -> String {
        format!(
            "retry_{}",
            key_hash(&format!("{}:{}", self.lead_id, self.attempt))
        )
    }
}

/// Queues `event`; queuing the same event again does nothing.
pub async fn enqueue(
    outbox: &Outbox,
    event: BusinessEvent,
) -> Result<(), crate::call_context::ContextError> {
    let now = chrono::Utc::now().timestamp_millis();
    if outbox.enqueue(&event.id, event.body, now).await? {
        tracing::info!(msg_id = %event.id, "business webhook queued");
    }
    Ok(())
}

/// An event for the business: its message id (stable: the same event is the same message) and
/// its JSON body, in the Standard Webhooks shape `{type, timestamp, data}`.
#[derive(Debug, Clone)]
pub struct BusinessEvent {
    pub id: String,
    pub body: String,
}

fn lead_json(lead: &Lead) -> Value {
    json!({
        "id": lead.id.to_string(),
        "first_name": lead.first_name.as_str(),
        "last_name": lead.last_name.as_str(),
        "phone": lead.phone.as_e164(),
        "created_at": lead.created_at,
        "source": lead.source,
        "consent": {"at": lead.consent.at, "wording_version": lead.consent.wording_version},
        "web_summary": lead.summary,
        "callback_status": lead.callback_status.as_str(),
    })
}

/// `lead.created`: the visitor left their details.
pub fn lead_created(lead: &Lead, now: chrono::DateTime<chrono::Utc>) -> BusinessEvent {
    BusinessEvent {
        id: format!("msg_{}", key_hash(&format!("lead.created:{}", lead.id))),
        body: json!({
            "type": "lead.created",
            "timestamp": now,
            "data": {"lead": lead_json(lead)},
        })
        .to_string(),
    }
}

/// `call.ended`: a call attempt is over, with its record (outcome, transcript, qualification).
pub fn call_ended(
    lead: &Lead,
    record: &CallRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> BusinessEvent {
    BusinessEvent {
        id: format!(
            "msg_{}",
            key_hash(&format!("call.ended:{}", record.call_ref))
        ),
        body: json!({
            "type": "call.ended",
            "timestamp": now,
            "data": {"lead": lead_json(lead), "call": record},
        })
        .to_string(),
    }
}
