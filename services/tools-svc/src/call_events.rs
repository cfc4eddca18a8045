//! `GET /api/calls/{call_id}/events`: the phone leg's timeline for the page that asked for the
//! call (ringing, answered, what each side said, hang-up). Only the owning web session may read it.

use crate::error::ToolsError;
use crate::session::web_session;
use crate::ToolsState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::call_context::CallRef;
use serde::Serialize;

#[derive(Serialize)]
struct Timeline {
    events: Vec<callway_core::call_context::TimelineEvent>,
    ended: bool,
}

pub async fn call_events(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<ToolsState>,
) -> Result<HttpResponse, ToolsError> {
    let session = web_session(&req, &state.tokens)?;
    let deps = state.calls.as_ref().ok_or(ToolsError::CallsUnavailable)?;
    let call_ref = CallRef::parse(&path.into_inner()).ok_or(ToolsError::CallNotFound)?;
    let owner = deps
        .contexts
        .owner(&call_ref)
        .await
        .map_err(ToolsError::Context)?;
    if owner.as_deref() != Some(session.as_str()) {
        return Err(ToolsError::CallNotFound);
    }
    let events = deps
        .contexts
        .timeline(&call_ref)
        .await
        .map_err(ToolsError::Context)?;
    let ended = events
        .iter()
        .any(|e| e.kind == callway_core::call_context::TimelineKind::Ended);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Timeline { events, ended }))
}
