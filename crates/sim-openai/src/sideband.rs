//! `GET /v1/realtime?call_id=rtc_…`: a server's sideband WebSocket on a live WebRTC call. It
//! gets every server event of the call (the data channel's, never audio) and may send any
//! client event; both go through the call's one engine. Standard key only; refusals come
//! before the upgrade.

use crate::config::SidebandRefusal;
use crate::errors::{self, rest_error};
use crate::http::{bearer, error_response, Resp};
use crate::live_call::{LiveCall, SidebandOut};
use crate::recording::{SidebandEndKind, SidebandHandle, SidebandRecord};
use crate::state::{lock, Shared};
use crate::ws::{client_close_code, MAX_MESSAGE};
use bytes::Bytes;
use callway_ws::{Event, ServerConn, UpgradeError, WriteError};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use std::sync::Arc;
use tokio::sync::mpsc;

const PATH: &str = "/v1/realtime";

/// The 404 OpenAI answers for an unknown or ended call (body as reported on the OpenAI
/// developer forum, "Ephemeral keys trigger Realtime sideband 404 errors", including the
/// empty `param`).
fn not_found() -> serde_json::Value {
    rest_error(
        "No session found for the provided call_id",
        "invalid_request_error",
        Some(""),
        Some("call_id_not_found"),
    )
}

pub(crate) fn upgrade(mut req: Request<Incoming>, shared: &Arc<Shared>, call_id: &str) -> Resp {
    let refuse =
        |status: StatusCode, body| error_response(shared, &Method::GET, PATH, status, body);
    let protos = crate::ws::subprotocols(&req);
    let key = bearer(&req).or_else(|| {
        protos.iter().find_map(|p| {
            p.strip_prefix("openai-insecure-api-key.")
                .map(str::to_string)
        })
    });
    if key.as_deref() != Some(shared.api_key.as_str()) {
        // `ek_` secrets included: they belong in browsers, a sideband is the server's.
        return refuse(
            StatusCode::UNAUTHORIZED,
            errors::invalid_api_key(key.as_deref()),
        );
    }
    match lock(&shared.sideband_refusal).take() {
        Some(SidebandRefusal::Unauthorized) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                errors::invalid_api_key(key.as_deref()),
            )
        }
        Some(SidebandRefusal::NotFound) => return refuse(StatusCode::NOT_FOUND, not_found()),
        None => {}
    }
    let call = lock(&shared.calls).get(call_id).cloned();
    let Some(call) = call else {
        return refuse(StatusCode::NOT_FOUND, not_found());
    };
    if !callway_ws::server::is_upgrade_request(&req) {
        let body = rest_error(
            "This endpoint expects a WebSocket upgrade request.",
            "invalid_request_error",
            None,
            None,
        );
        return refuse(StatusCode::BAD_REQUEST, body);
    }
    let (resp, pending) = match callway_ws::accept(&mut req) {
        Ok(x) => x,
        Err(UpgradeError::Invalid(e) | UpgradeError::Incomplete(e)) => {
            let body = rest_error(
                &format!("Bad WebSocket upgrade: {e}"),
                "invalid_request_error",
                None,
                None,
            );
            return refuse(StatusCode::BAD_REQUEST, body);
        }
    };
    // Registered now, before the 101 goes out: events from here on are queued for it, and a
    // hang-up that races the handshake still reaches it with a close frame.
    let attached = call.attach(|| {
        shared.recorder.add_sideband(SidebandRecord {
            call_id: call.call_id.clone(),
            session_id: call.session_id.clone(),
            attached: shared.recorder.moment(),
            client_events: vec![],
            server_event_types: vec![],
            ended: None,
        })
    });
    let Some((record, out)) = attached else {
        // Ended between the look-up and now.
        return refuse(StatusCode::NOT_FOUND, not_found());
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        match pending.ready(MAX_MESSAGE).await {
            Ok(conn) => {
                if let Err(e) = run(conn, call.clone(), out, record.clone(), shared).await {
                    tracing::debug!("sideband ended: {e}");
                    record.ended(SidebandEndKind::ClientClosed(1006));
                }
            }
            Err(_) => record.ended(SidebandEndKind::ClientClosed(1006)),
        }
        call.detach(&record);
    });
    let (parts, _) = resp.into_parts();
    let mut resp = Resp::from_parts(parts, Full::new(Bytes::new()));
    if protos.iter().any(|p| p == "realtime") {
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("realtime"),
        );
    }
    resp
}

/// One task owns the socket: the call's events out, the server's client events in.
async fn run(
    mut conn: ServerConn,
    call: Arc<LiveCall>,
    mut out: mpsc::Receiver<SidebandOut>,
    record: SidebandHandle,
    shared: Arc<Shared>,
) -> Result<(), WriteError> {
    let mut sent = 0usize;
    let mut shutdown = shared.shutdown.clone();
    loop {
        conn.flush().await?;
        tokio::select! {
            o = out.recv() => match o {
                Some(SidebandOut::Event { ty, text }) => {
                    conn.queue_text(text.as_bytes())?;
                    record.update(|r| r.server_event_types.push(ty.to_string()));
                    sent += 1;
                    if shared.sideband_fail_after_events.is_some_and(|n| sent >= n) {
                        record.ended(SidebandEndKind::Dropped);
                        // This event goes; then the socket is dropped, no close frame.
                        return conn.flush().await;
                    }
                }
                Some(SidebandOut::Close { code, reason }) => {
                    conn.close_with_reason(code, &reason).await;
                    return Ok(());
                }
                // Forgotten by the call (drop knob, stalled reader): end without a close frame.
                None => return Ok(()),
            },
            () = conn.readable() => {
                while let Some(ev) = conn.next_event() {
                    match ev {
                        Event::Text(t) => call.client_event(&record, t.to_owned()),
                        Event::Binary(b) => {
                            call.client_event(&record, String::from_utf8_lossy(b).into_owned())
                        }
                        Event::Closed { code, by_peer, .. } => {
                            let code = client_close_code(code, by_peer);
                            record.ended(SidebandEndKind::ClientClosed(code));
                            call.detach(&record);
                            // Our answer to the client's Close (queued by `next_event`).
                            let _ = conn.flush().await;
                            return Ok(());
                        }
                    }
                }
            }
            _ = shutdown.changed() => {
                record.ended(SidebandEndKind::ServerClosed(1001));
                conn.close_with_reason(1001, "server shutting down").await;
                return Ok(());
            }
        }
    }
}
