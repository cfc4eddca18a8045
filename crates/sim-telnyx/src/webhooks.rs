//! Webhook events: the `{data, meta}` envelope, Ed25519 signing, ordered per-call delivery with
//! bounded retries on non-2xx or no answer, and fault injection.

use crate::ids;
use crate::recording::{WebhookFault, WebhookRecord};
use crate::state::{lock, CallInfo, Shared};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug)]
pub(crate) struct Event {
    pub event_type: String,
    pub id: String,
    pub occurred_at: String,
    pub payload: Value,
}

/// Emits a call's webhooks; delivery happens in a background task, in order.
#[derive(Clone)]
pub(crate) struct Hooks {
    shared: Arc<Shared>,
    info: Arc<CallInfo>,
    tx: mpsc::UnboundedSender<Event>,
}

impl Hooks {
    /// Starts the delivery task of a call.
    pub fn start(shared: Arc<Shared>, info: Arc<CallInfo>) -> Hooks {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(deliver_all(shared.clone(), info.clone(), rx));
        shared.track_task(task.abort_handle());
        Hooks { shared, info, tx }
    }

    /// Queues an event. `extra` (an object) is merged into the common call payload.
    pub fn emit(&self, event_type: &str, extra: Value) {
        let i = &self.info;
        let mut payload = json!({
            "call_control_id": i.call_control_id,
            "call_leg_id": i.call_leg_id,
            "call_session_id": i.call_session_id,
            "client_state": self.shared.client_state(&i.call_control_id),
            "connection_id": i.connection_id,
            "from": i.from,
            "to": i.to,
        });
        if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            p.extend(extra);
        }
        let ev = Event {
            event_type: event_type.to_owned(),
            id: ids::uuid(),
            occurred_at: ids::now_iso(),
            payload,
        };
        // The receiver only goes away at shutdown.
        let _ = self.tx.send(ev);
    }
}

async fn deliver_all(
    shared: Arc<Shared>,
    info: Arc<CallInfo>,
    mut rx: mpsc::UnboundedReceiver<Event>,
) {
    let mut held: Option<Event> = None;
    while let Some(ev) = rx.recv().await {
        let faults = lock(&shared.faults).clone();
        if held.is_none() && faults.out_of_order && faults.applies_to(&ev.event_type) {
            held = Some(ev);
            continue;
        }
        deliver(&shared, &info, &ev, false).await;
        if let Some(h) = held.take() {
            deliver(&shared, &info, &h, true).await;
        }
    }
    if let Some(h) = held.take() {
        deliver(&shared, &info, &h, true).await;
    }
}

/// The URL and retry delays for an event: the call's routing as it is now (an inbound call's
/// answer may have changed it), else the Call Control App's URL and the default delays.
fn route_for(shared: &Shared, info: &CallInfo, event_type: &str) -> (String, Option<Vec<u64>>) {
    let calls = lock(&shared.calls);
    let routing = calls.get(&info.call_control_id).map(|c| &c.routing);
    let url = routing
        .and_then(|r| r.webhook_urls.get(event_type).or(r.webhook_url.as_ref()))
        .cloned()
        .unwrap_or_else(|| shared.cfg.webhook_url.clone());
    let retries = routing.and_then(|r| r.retry_policies.get(event_type).cloned());
    (url, retries)
}

/// Delivers one event: fault copies first, then the genuine delivery with retries, then a
/// duplicate if asked.
async fn deliver(shared: &Shared, info: &CallInfo, ev: &Event, reordered: bool) {
    let faults = lock(&shared.faults).clone();
    let faulty = faults.applies_to(&ev.event_type);
    let (url, retry_policy) = route_for(shared, info, &ev.event_type);
    if faulty && faults.forged_copy {
        post(
            shared,
            info,
            ev,
            &url,
            1,
            Some(WebhookFault::Forged),
            Duration::ZERO,
            reordered,
        )
        .await;
    }
    if let (true, Some(age)) = (faulty, faults.stale_copy_age) {
        post(
            shared,
            info,
            ev,
            &url,
            1,
            Some(WebhookFault::Stale),
            age,
            reordered,
        )
        .await;
    }
    let delays: Vec<Duration> = match retry_policy {
        Some(ms) => ms.iter().map(|m| Duration::from_millis(*m)).collect(),
        None => shared.cfg.timing.webhook_retry_delays.clone(),
    };
    let mut attempt = 1;
    loop {
        let ok = post(
            shared,
            info,
            ev,
            &url,
            attempt,
            None,
            Duration::ZERO,
            reordered,
        )
        .await;
        let Some(delay) = delays.get(attempt as usize - 1).filter(|_| !ok) else {
            break;
        };
        tokio::time::sleep(*delay).await;
        attempt += 1;
    }
    if faulty && faults.duplicate {
        post(
            shared,
            info,
            ev,
            &url,
            1,
            Some(WebhookFault::Duplicate),
            Duration::ZERO,
            reordered,
        )
        .await;
    }
}

/// The exact body sent: `{"data":{…,"record_type":"event"},"meta":{"attempt","delivered_to"}}`.
pub(crate) fn envelope(ev: &Event, attempt: u32, url: &str) -> String {
    json!({
        "data": {
            "event_type": ev.event_type,
            "id": ev.id,
            "occurred_at": ev.occurred_at,
            "payload": ev.payload,
            "record_type": "event",
        },
        "meta": {"attempt": attempt, "delivered_to": url},
    })
    .to_string()
}

#[allow(clippy::too_many_arguments)]
async fn post(
    shared: &Shared,
    info: &CallInfo,
    ev: &Event,
    url: &str,
    attempt: u32,
    fault: Option<WebhookFault>,
    age: Duration,
    reordered: bool,
) -> bool {
    let body = envelope(ev, attempt, url);
    let timestamp = ids::unix_now() - age.as_secs() as i64;
    let signer = if fault == Some(WebhookFault::Forged) {
        &shared.forger
    } else {
        &shared.signer
    };
    let signature = signer.sign(timestamp, body.as_bytes());
    // When it was sent (the receiver may take a while to answer).
    let sent_ms = shared.recorder.now_ms();
    let result = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "telnyx-webhooks")
        .header("telnyx-signature-ed25519", &signature)
        .header("telnyx-timestamp", timestamp.to_string())
        .timeout(shared.cfg.timing.webhook_timeout)
        .body(body.clone())
        .send()
        .await;
    let (status, error) = match result {
        Ok(resp) => (Some(resp.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let rec = WebhookRecord {
        at_ms: sent_ms,
        call_control_id: info.call_control_id.clone(),
        event_type: ev.event_type.clone(),
        id: ev.id.clone(),
        attempt,
        url: url.to_owned(),
        timestamp,
        signature,
        body,
        status,
        error,
        fault,
        reordered,
    };
    let ok = rec.acknowledged();
    shared.recorder.with(|r| r.webhooks.push(rec));
    ok
}
