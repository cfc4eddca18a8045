//! `GET /v1/realtime` WebSocket sessions (hyper 1 + fastwebsockets).

use crate::client_secrets::{check_ephemeral, expired_body, EphemeralCheck};
use crate::engine::{Engine, Output};
use crate::errors::{self, error_event, FieldError};
use crate::http::{bearer, error_response, has_beta_header, Resp};
use crate::recording::{SessionRecord, TransportKind};
use crate::session_config::{is_known_model, SessionConfig, SessionType};
use crate::state::Shared;
use bytes::Bytes;
use fastwebsockets::{upgrade, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const PATH: &str = "/v1/realtime";

/// How the socket's session starts.
enum Start {
    Session(Box<SessionConfig>),
    /// Refuse after the upgrade with this error event, then close.
    Refuse(FieldError, u16),
}

pub(crate) fn query_params(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.replace("%2E", ".").replace("%2e", "."))
        })
        .collect()
}

pub(crate) fn subprotocols(req: &Request<Incoming>) -> Vec<String> {
    req.headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(',').map(|s| s.trim().to_string()))
        .collect()
}

pub(crate) fn upgrade(mut req: Request<Incoming>, shared: &Arc<Shared>) -> Resp {
    let params = query_params(&req);
    // A `call_id` attaches a sideband to a WebRTC call: its own rules (standard key only, the
    // call must be live), checked before anything else. `model` is ignored then (the call has
    // one already).
    if let Some((_, call_id)) = params.iter().find(|(k, _)| k == "call_id") {
        let call_id = call_id.clone();
        return crate::sideband::upgrade(req, shared, &call_id);
    }
    let protos = subprotocols(&req);
    let key = bearer(&req).or_else(|| {
        protos.iter().find_map(|p| {
            p.strip_prefix("openai-insecure-api-key.")
                .map(str::to_string)
        })
    });
    let unauthorized = |shared: &Shared, body: Value| {
        error_response(shared, &Method::GET, PATH, StatusCode::UNAUTHORIZED, body)
    };
    let from_secret = match key.as_deref() {
        Some(k) if k == shared.api_key => None,
        Some(k) if k.starts_with("ek_") => match check_ephemeral(shared, k) {
            EphemeralCheck::Valid(s) => Some(*s),
            EphemeralCheck::Expired => return unauthorized(shared, expired_body()),
            EphemeralCheck::Unknown => {
                return unauthorized(shared, errors::invalid_api_key(Some(k)))
            }
        },
        other => return unauthorized(shared, errors::invalid_api_key(other)),
    };
    if !upgrade::is_upgrade_request(&req) {
        let body = errors::rest_error(
            "This endpoint expects a WebSocket upgrade request.",
            "invalid_request_error",
            None,
            None,
        );
        return error_response(shared, &Method::GET, PATH, StatusCode::BAD_REQUEST, body);
    }
    let beta = has_beta_header(&req) || protos.iter().any(|p| p.starts_with("openai-beta."));
    let selectors: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k == "model" || k == "call_id" || k == "intent")
        .collect();
    let start = if beta {
        Start::Refuse(errors::beta_disabled(), 4000)
    } else if selectors.len() > 1 {
        Start::Refuse(
            FieldError::new(
                "invalid_request_error",
                "Specify exactly one of 'model', 'call_id' or 'intent'.",
                None,
            ),
            1008,
        )
    } else {
        match (
            selectors.first().map(|(k, v)| (k.as_str(), v.as_str())),
            from_secret,
        ) {
            (Some(("model", m)), _) if !is_known_model(m) => {
                Start::Refuse(errors::invalid_model(m, Some("model")), 1008)
            }
            (Some(("model", m)), Some(mut s)) => {
                s.model = m.to_string();
                Start::Session(Box::new(s))
            }
            (Some(("model", m)), None) => {
                let mut s = SessionConfig::new_default(SessionType::Realtime);
                s.model = m.to_string();
                Start::Session(Box::new(s))
            }
            (Some(("intent", "transcription")), s) => {
                Start::Session(Box::new(s.unwrap_or_else(|| {
                    SessionConfig::new_default(SessionType::Transcription)
                })))
            }
            (Some(("intent", other)), _) => Start::Refuse(
                crate::validate::invalid_value("intent", other, &["transcription"]),
                1008,
            ),
            (_, Some(s)) => Start::Session(Box::new(s)),
            (_, None) => Start::Refuse(crate::validate::missing("model"), 1008),
        }
    };
    let (resp, fut) = match upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => {
            let body = errors::rest_error(
                &format!("Bad WebSocket upgrade: {e}"),
                "invalid_request_error",
                None,
                None,
            );
            return error_response(shared, &Method::GET, PATH, StatusCode::BAD_REQUEST, body);
        }
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Ok(ws) = fut.await {
            if let Err(e) = run(ws, start, shared).await {
                tracing::debug!("websocket session ended: {e}");
            }
        }
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

pub(crate) enum Incoming_ {
    Text(String),
    /// The client closed with this code (1006 when the connection just ended).
    Close(u16),
}

pub(crate) type Upgraded = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;
pub(crate) type WsWrite = fastwebsockets::WebSocketWrite<tokio::io::WriteHalf<Upgraded>>;

/// The read half of a socket, in a task: text frames and the client's close arrive on the
/// first channel; frames the protocol obliges us to send (pong, close echo) on the second.
pub(crate) struct Reader {
    pub incoming: mpsc::Receiver<Incoming_>,
    pub obligated: mpsc::Receiver<(OpCode, Vec<u8>)>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Splits a socket and starts reading it.
pub(crate) fn split_and_read(ws: fastwebsockets::WebSocket<Upgraded>) -> (Reader, WsWrite) {
    let (rx, tx) = ws.split(tokio::io::split);
    let (in_tx, in_rx) = mpsc::channel::<Incoming_>(256);
    let (obligated_tx, obligated_rx) = mpsc::channel::<(OpCode, Vec<u8>)>(16);
    let task = tokio::spawn(async move {
        let mut rx = FragmentCollectorRead::new(rx);
        loop {
            let ob = obligated_tx.clone();
            let mut send = move |f: Frame<'_>| {
                let ob = ob.clone();
                let owned = (f.opcode, f.payload.to_vec());
                async move {
                    ob.send(owned)
                        .await
                        .map_err(|e| WebSocketError::IoError(std::io::Error::other(e.to_string())))
                }
            };
            match rx.read_frame(&mut send).await {
                Ok(frame) => match frame.opcode {
                    OpCode::Text | OpCode::Binary => {
                        let text = String::from_utf8_lossy(&frame.payload).into_owned();
                        if in_tx.send(Incoming_::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    OpCode::Close => {
                        let p = &frame.payload[..];
                        // 1005: a close frame without a status code (RFC 6455 §7.1.5).
                        let code = if p.len() >= 2 {
                            u16::from_be_bytes([p[0], p[1]])
                        } else {
                            1005
                        };
                        let _ = in_tx.send(Incoming_::Close(code)).await;
                        return;
                    }
                    _ => {}
                },
                Err(_) => {
                    // 1006: the connection ended without a close frame.
                    let _ = in_tx.send(Incoming_::Close(1006)).await;
                    return;
                }
            }
        }
    });
    (
        Reader {
            incoming: in_rx,
            obligated: obligated_rx,
            task,
        },
        tx,
    )
}

/// The close code inside a close frame's payload (1005 when it has none).
pub(crate) fn close_code(payload: &[u8]) -> u16 {
    if payload.len() >= 2 {
        u16::from_be_bytes([payload[0], payload[1]])
    } else {
        1005
    }
}

async fn run(
    ws: fastwebsockets::WebSocket<Upgraded>,
    start: Start,
    shared: Arc<Shared>,
) -> Result<(), WebSocketError> {
    let (reader, mut tx) = split_and_read(ws);
    let Reader {
        incoming: mut in_rx,
        obligated: mut obligated_rx,
        task: reader,
    } = reader;

    let session = match start {
        Start::Refuse(err, code) => {
            let ev = error_event(&err, None);
            tx.write_frame(Frame::text(Payload::Owned(ev.to_string().into_bytes())))
                .await?;
            tx.write_frame(Frame::close(code, err.message.as_bytes()))
                .await?;
            reader.abort();
            return Ok(());
        }
        Start::Session(s) => *s,
    };
    let record = shared.recorder.add_session(SessionRecord::new(
        &session.id,
        TransportKind::WebSocket,
        None,
        session.to_json(),
    ));
    let client_record = record.clone();
    let mut engine = Engine::new(
        session,
        TransportKind::WebSocket,
        24_000,
        shared.ws_scenario(),
        shared.opts,
        record,
    );
    let started = Instant::now();
    let drop_at = shared
        .ws_fail_after
        .map(|d| tokio::time::Instant::now() + d);
    let mut sent_events = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = shared.shutdown.clone();
    let result = loop {
        for out in engine.take_output() {
            match out {
                Output::Event(ev) => {
                    tx.write_frame(Frame::text(Payload::Owned(ev.to_string().into_bytes())))
                        .await?;
                    sent_events += 1;
                    if shared
                        .ws_fail_after_events
                        .is_some_and(|n| sent_events >= n)
                    {
                        reader.abort();
                        return Ok(()); // dropped without a close frame
                    }
                }
                Output::Close { code, reason } => {
                    tx.write_frame(Frame::close(code, reason.as_bytes()))
                        .await?;
                    // RFC 6455 §7.1.1: the server closes TCP once the client's Close arrived.
                    // Dropping the socket at once, with the client's frames still unread,
                    // would send a reset that can destroy our Close before the client reads it.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(m) = in_rx.recv().await {
                            if let Incoming_::Close(code) = m {
                                client_record.update(|r| r.client_closed_with = Some(code));
                                break;
                            }
                        }
                    })
                    .await;
                    reader.abort();
                    return Ok(());
                }
                Output::Audio(_) | Output::ClearAudio => {}
            }
        }
        let drop_sleep = async {
            match drop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = in_rx.recv() => match msg {
                Some(Incoming_::Text(t)) => engine.handle_client_text(&t, started.elapsed()),
                Some(Incoming_::Close(code)) => {
                    client_record.update(|r| r.client_closed_with = Some(code));
                    break Ok(());
                }
                None => break Ok(()),
            },
            ob = obligated_rx.recv() => {
                if let Some((op, payload)) = ob {
                    if op == OpCode::Close {
                        // The echo of the client's close races the Close event: record it here too.
                        let code = close_code(&payload);
                        client_record.update(|r| r.client_closed_with = Some(code));
                    }
                    let frame = Frame::new(true, op, None, Payload::Owned(payload));
                    tx.write_frame(frame).await?;
                    if op == OpCode::Close { break Ok(()); }
                }
            }
            _ = tick.tick() => engine.tick(started.elapsed()),
            _ = drop_sleep => break Ok(()),
            _ = shutdown.changed() => {
                let _ = tx.write_frame(Frame::close(1001, b"server shutting down")).await;
                break Ok(());
            }
        }
    };
    reader.abort();
    result
}
