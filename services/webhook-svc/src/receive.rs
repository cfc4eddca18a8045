//! `POST /api/telnyx/webhooks`: verify on the raw bytes, de-duplicate on `data.id`, answer 2xx at
//! once, act in the background.

use crate::events::Envelope;
use crate::signature::SignatureError;
use crate::WebhookState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::api_error::ApiErrorBody;
use std::time::Duration;

/// How long a seen `data.id` is remembered (Telnyx retries within minutes).
const DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tracing::instrument(name = "webhook.receive", skip_all, fields(event, event_id, call_ref))]
pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<WebhookState>,
) -> HttpResponse {
    let verified = state.key.verify(
        header(&req, "telnyx-signature-ed25519"),
        header(&req, "telnyx-timestamp"),
        &body,
        chrono::Utc::now().timestamp(),
    );
    if let Err(e) = verified {
        tracing::warn!(reason = %e, "webhook refused");
        let code = match e {
            SignatureError::MissingHeader => "signature_missing",
            SignatureError::Stale => "timestamp_out_of_window",
            SignatureError::Malformed | SignatureError::Forged => "signature_invalid",
        };
        return HttpResponse::Unauthorized()
            .json(ApiErrorBody::new(code, "Signature du webhook refusée."));
    }
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            // Signed but unreadable: a 4xx would only make Telnyx retry the same bytes. The
            // error is described without the value serde would quote (it may be a number).
            tracing::warn!(
                error = %callway_core::json_error::describe(&e),
                "signed webhook with an unreadable body: acknowledged and dropped"
            );
            return HttpResponse::Ok().json(serde_json::json!({"status": "ignored"}));
        }
    };
    let span = tracing::Span::current();
    span.record("event", envelope.data.event_type.as_str());
    span.record("event_id", envelope.data.id.as_str());
    let dedup_key = format!("callway:webhook:{}", envelope.data.id);
    let first = match state.contexts.claim(&dedup_key, DEDUP_TTL).await {
        Ok(first) => first,
        Err(e) => {
            // Without de-duplication we cannot promise "once": let Telnyx retry later.
            tracing::error!(error = %e, "de-duplication store unavailable");
            return HttpResponse::ServiceUnavailable()
                .json(ApiErrorBody::new("unavailable", "Service indisponible."));
        }
    };
    if !first {
        tracing::info!("duplicate webhook ignored");
        return HttpResponse::Ok().json(serde_json::json!({"status": "duplicate"}));
    }
    // The context is read before the 2xx: if the store is down, the claim is given back and
    // Telnyx retries later, instead of a 200 for an event nobody acted on.
    let prepared = match crate::handle::prepare(&state, &envelope.data).await {
        Ok(Some(p)) => p,
        Ok(None) => return HttpResponse::Ok().json(serde_json::json!({"status": "ignored"})),
        Err(e) => {
            tracing::error!(error = %e, "call context unavailable: Telnyx will retry");
            let _ = state.contexts.delete_key(&dedup_key).await;
            return HttpResponse::ServiceUnavailable()
                .json(ApiErrorBody::new("unavailable", "Service indisponible."));
        }
    };
    let state = state.into_inner();
    let parent = tracing::Span::current();
    let task = async move { crate::handle::handle(&state, prepared, envelope.data).await };
    tokio::spawn(tracing::Instrument::instrument(task, parent));
    HttpResponse::Ok().json(serde_json::json!({"status": "accepted"}))
}
