//! `POST /api/telnyx/webhooks`: verify on the raw bytes, then handle the event *before*
//! answering, and answer 2xx only once its effects are stored.
//!
//! De-duplication has two marks per event id: `busy` (held by one delivery while it works,
//! compare-and-delete released, short-lived so a crashed handler does not block the retries)
//! and `done` (written only after every effect is stored). A delivery that fails anywhere
//! releases `busy` and answers 503, so Telnyx sends the event again and the retry does the
//! work; a delivery that finds `done` answers 200 without acting. A `busy` or `done` write that
//! timed out and lands late cannot refuse the real work: `busy` carries this delivery's
//! identity and expires, and `done` is only ever written after the work.

use crate::error::WebhookError;
use crate::events::Envelope;
use crate::WebhookState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::call_context::{keys, random_id, Claimed};
use std::time::Duration;

/// How long a handled event id is remembered (Telnyx retries within minutes).
const DONE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest a delivery may hold an event: about the handler's own bounds (a few store calls of
/// 2 s, one Telnyx command of 5 s), so a mark left by a crashed or stalled delivery locks the
/// event out of Telnyx's redeliveries for seconds, not half a minute.
const BUSY_TTL: Duration = Duration::from_secs(15);

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tracing::instrument(name = "webhook.receive", skip_all, fields(event, event_id, call_ref))]
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<WebhookState>,
) -> Result<HttpResponse, WebhookError> {
    state
        .key
        .verify(
            header(&req, "telnyx-signature-ed25519"),
            header(&req, "telnyx-timestamp"),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| {
            tracing::warn!(reason = %e, "webhook refused");
            let e = WebhookError::Signature(e);
            callway_core::metrics::get().webhook_received(Some(e.code()));
            e
        })?;
    callway_core::metrics::get().webhook_received(None);
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            // Signed but unreadable: a 4xx would only make Telnyx retry the same bytes. The
            // error is described without the value serde would quote (it may be a number).
            tracing::warn!(
                error = %callway_core::json_error::describe(&e),
                "signed webhook with an unreadable body: acknowledged and dropped"
            );
            return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ignored"})));
        }
    };
    let span = tracing::Span::current();
    span.record("event", envelope.data.event_type.as_str());
    span.record("event_id", envelope.data.id.as_str());

    // The work runs in its own task: if Telnyx gives up waiting and closes the connection,
    // actix drops this handler, but the task still finishes — it releases the `busy` mark and
    // writes `done` — so the redelivery finds the event handled instead of locked.
    let state = state.into_inner();
    let work = async move { handle_once(&state, &envelope.data).await };
    let finished = tokio::spawn(tracing::Instrument::instrument(work, span))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "webhook handler task failed");
            Err(WebhookError::Context(
                callway_core::call_context::ContextError::Unavailable("handler task failed".into()),
            ))
        });
    match finished {
        Ok(status) => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": status }))),
        Err(e) => {
            if !matches!(e, WebhookError::InProgress) {
                tracing::error!(error = %e, "webhook not handled: Telnyx will send it again");
            }
            Err(e)
        }
    }
}

/// De-duplicates and handles one event: `done` → nothing to do; `busy` held by another
/// delivery → 409; otherwise handle, write `done` once stored, release `busy`.
async fn handle_once(
    state: &WebhookState,
    data: &crate::events::EventData,
) -> Result<&'static str, WebhookError> {
    let c = &state.contexts;
    let done_key = keys::webhook_done(&data.id);
    if c.get_value(&done_key).await?.is_some() {
        tracing::info!("duplicate webhook ignored");
        return Ok("duplicate");
    }
    let busy_key = keys::webhook_busy(&data.id);
    let delivery = random_id("wh_");
    match c.acquire(&busy_key, &delivery, BUSY_TTL).await {
        Ok(Claimed::Other) => {
            tracing::info!("the same event is being handled by another delivery");
            return Err(WebhookError::InProgress);
        }
        Ok(_) => {}
        Err(e) => {
            // The claim may still land when a stalled Redis wakes: take it back (compare-and-
            // delete, sent after it) so redeliveries are not locked out until it expires.
            let _ = c.release(&busy_key, &delivery).await;
            return Err(e.into());
        }
    }
    let finished = match crate::handle::handle(state, data).await {
        Ok(status) => c
            .set_value(&done_key, "1".into(), DONE_TTL)
            .await
            .map(|()| status)
            .map_err(WebhookError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = c.release(&busy_key, &delivery).await {
        tracing::warn!(error = %e, "event lock not released (it expires by itself)");
    }
    finished
}
