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
use crate::ws::{close_code, split_and_read, Incoming_, Reader, Upgraded};
use bytes::Bytes;
use fastwebsockets::{upgrade, Frame, OpCode, Payload, WebSocketError};
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
    if !upgrade::is_upgrade_request(&req) {
        let body = rest_error(
            "This endpoint expects a WebSocket upgrade request.",
            "invalid_request_error",
            None,
            None,
        );
        return refuse(StatusCode::BAD_REQUEST, body);
    }
    let (resp, fut) = match upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => {
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
        match fut.await {
            Ok(ws) => {
                if let Err(e) = run(ws, call.clone(), out, record.clone(), shared).await {
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

async fn run(
    ws: fastwebsockets::WebSocket<Upgraded>,
    call: Arc<LiveCall>,
    mut out: mpsc::Receiver<SidebandOut>,
    record: SidebandHandle,
    shared: Arc<Shared>,
) -> Result<(), WebSocketError> {
    let (reader, mut tx) = split_and_read(ws);
    let Reader {
        incoming: mut in_rx,
        obligated: mut obligated_rx,
        task: reader,
    } = reader;
    let mut sent = 0usize;
    let mut shutdown = shared.shutdown.clone();
    let result = loop {
        tokio::select! {
            o = out.recv() => match o {
                Some(SidebandOut::Event { ty, text }) => {
                    tx.write_frame(Frame::text(Payload::Owned(text.as_bytes().to_vec()))).await?;
                    record.update(|r| r.server_event_types.push(ty.to_string()));
                    sent += 1;
                    if shared.sideband_fail_after_events.is_some_and(|n| sent >= n) {
                        record.ended(SidebandEndKind::Dropped);
                        break Ok(()); // no close frame
                    }
                }
                Some(SidebandOut::Close { code, reason }) => {
                    tx.write_frame(Frame::close(code, reason.as_bytes())).await?;
                    break Ok(());
                }
                // Forgotten by the call (drop knob, stalled reader): end without a close frame.
                None => break Ok(()),
            },
            msg = in_rx.recv() => match msg {
                Some(Incoming_::Text(t)) => call.client_event(&record, t),
                Some(Incoming_::Close(code)) => {
                    record.ended(SidebandEndKind::ClientClosed(code));
                    call.detach(&record);
                    // The reader queued the close echo before reporting the close.
                    while let Ok((op, payload)) = obligated_rx.try_recv() {
                        let _ = tx.write_frame(Frame::new(true, op, None, Payload::Owned(payload))).await;
                    }
                    break Ok(());
                }
                None => break Ok(()),
            },
            ob = obligated_rx.recv() => {
                if let Some((op, payload)) = ob {
                    if op == OpCode::Close {
                        record.ended(SidebandEndKind::ClientClosed(close_code(&payload)));
                        call.detach(&record);
                    }
                    tx.write_frame(Frame::new(true, op, None, Payload::Owned(payload))).await?;
                    if op == OpCode::Close { break Ok(()); }
                }
            }
            _ = shutdown.changed() => {
                record.ended(SidebandEndKind::ServerClosed(1001));
                let _ = tx.write_frame(Frame::close(1001, b"server shutting down")).await;
                break Ok(());
            }
        }
    };
    reader.abort();
    result
}
